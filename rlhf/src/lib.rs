//! hone-rlhf: Llama-family and GPT-2 models in tch, Hugging Face checkpoints and GGUF import,
//! batched generation, SFT and reward models — the LLM core under hone's RLHF algorithms.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod fuzz;
pub mod generate;
pub mod gguf;
pub mod init;
pub mod memory;
pub mod model;
pub mod ppo;
pub mod remax;
pub mod reward;
pub mod rollout;
pub mod run;
pub mod safetensors;
pub mod sharpen;
pub mod tasks;
pub mod tokenizer;
pub mod train;

pub use checkpoint::{Checkpoint, GenerationDefaults, save_pretrained};
pub use config::{ArchConfig, Gpt2Config, LlamaConfig, ModelConfig, RopeScaling};
pub use error::{Error, Result};
pub use generate::{GenerateConfig, Generated, generate};
pub use model::{CausalLm, KvCache};
pub use tokenizer::{ChatMessage, Tokenizer, left_pad};
