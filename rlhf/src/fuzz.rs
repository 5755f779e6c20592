//! Fuzzing entry points of the LLM stack (see `hone_trainer::fuzz` for the contract and the
//! two drivers): model files (GGUF, safetensors, config.json, tokenizer.json), the run file of
//! `hone rlhf` and its prompt datasets. Each runs what a user's file goes through, and on
//! success what comes next: a model that loads also generates two tokens. Each returns whether
//! the file went all the way through.

use std::path::Path;

use serde_json::Map;
use tch::{Device, Kind, Tensor};

use hone_trainer::fuzz::{scratch_dir, scratch_file};

use crate::checkpoint::load_model;
use crate::gguf::{GgufFile, llama_config, llama_tensors};
use crate::run::{Prompts, RunConfig};
use crate::{ArchConfig, CausalLm, GenerateConfig, ModelConfig, Tokenizer, generate};

/// The weights and tokenizer of the tiny llama that the seeds describe (made by
/// `fuzz/make_gguf_seed.py`, converted by `hone convert gguf`).
const TINY_WEIGHTS: &[u8] = include_bytes!("../../fuzz/corpus/safetensors/tiny-llama.safetensors");
const TINY_CONFIG: &[u8] = include_bytes!("../../fuzz/corpus/model_config/tiny-llama.json");
const TINY_TOKENIZER: &[u8] = include_bytes!("../../fuzz/corpus/tokenizer/tiny-llama.json");

/// A GGUF file, read and converted as `hone convert gguf` does (in memory).
pub fn gguf(bytes: &[u8]) -> bool {
    let Ok(file) = GgufFile::parse(bytes.to_vec(), Path::new("fuzz.gguf")) else {
        return false;
    };
    let weights = match llama_config(&file) {
        Ok(ModelConfig {
            arch: ArchConfig::Llama(llama),
            ..
        }) => llama_tensors(&file, &llama).is_ok(),
        _ => false,
    };
    let tokenizer = crate::gguf::tokenizer(&file).is_ok_and(|t| use_tokenizer(&t));
    weights && tokenizer
}

/// A `model.safetensors`, read, then loaded as the tiny model's weights and run.
pub fn safetensors(bytes: &[u8]) -> bool {
    crate::safetensors::parse(Path::new("fuzz.safetensors"), bytes).is_ok()
        && load_and_run(&checkpoint_with("safetensors", "model.safetensors", bytes))
}

/// A `config.json`, loaded with the tiny model's weights and run.
pub fn model_config(bytes: &[u8]) -> bool {
    load_and_run(&checkpoint_with("model_config", "config.json", bytes))
}

/// A `tokenizer.json`, loaded, then used to encode, decode and apply the chat template.
pub fn tokenizer(bytes: &[u8]) -> bool {
    let dir = scratch_dir("tokenizer");
    std::fs::write(dir.join("tokenizer.json"), bytes).expect("scratch is writable");
    Tokenizer::load(&dir).is_ok_and(|t| use_tokenizer(&t))
}

/// A run file of `hone rlhf`, resolved over the defaults and validated. Accepted: resolved (the
/// seeds name checkpoints of runs that do not exist here, which validation refuses).
pub fn run_config(bytes: &[u8]) -> bool {
    let path = scratch_file("run_config", "run.toml", bytes);
    let resolved = hone_trainer::config::resolve(&RunConfig::default(), Some(&path), &[]);
    if let Ok(config) = &resolved {
        let _ = config.validate();
    }
    resolved.is_ok()
}

/// A prompt dataset (JSONL), read with the tiny tokenizer for a 32-position model.
pub fn dataset(bytes: &[u8]) -> bool {
    let path = scratch_file("dataset", "prompts.jsonl", bytes);
    let tokenizer = Tokenizer::from_json(
        Path::new("tiny-llama.json"),
        std::str::from_utf8(TINY_TOKENIZER).expect("the seed is UTF-8"),
        Map::new(),
        None,
    )
    .expect("the seed tokenizer loads");
    Prompts::load(&path, &tokenizer, false, 32, 4, false, 0).is_ok()
}

/// The tiny checkpoint in the scratch folder of `entry`, its file `name` replaced by `bytes`.
fn checkpoint_with(entry: &str, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = scratch_dir(entry);
    for (file, seed) in [
        ("model.safetensors", TINY_WEIGHTS),
        ("config.json", TINY_CONFIG),
        ("tokenizer.json", TINY_TOKENIZER),
    ] {
        let contents = if file == name { bytes } else { seed };
        std::fs::write(dir.join(file), contents).expect("scratch is writable");
    }
    dir
}

/// Loads the checkpoint in `dir` as `hone generate` does and generates two tokens greedily.
fn load_and_run(dir: &Path) -> bool {
    let Ok(config) = ModelConfig::load(dir) else {
        return false;
    };
    let eos = config.eos_token_ids.clone();
    load_model(dir, config, Device::Cpu, Kind::Float).is_ok_and(|model| run(&model, &eos))
}

fn run(model: &CausalLm, eos: &[i64]) -> bool {
    let ids = Tensor::from_slice(&[1i64, 2, 3]).unsqueeze(0);
    let mask = ids.ones_like();
    let config = GenerateConfig {
        max_new_tokens: 2,
        ..GenerateConfig::default()
    };
    generate(model, &ids, &mask, eos, 0, &config).is_ok()
}

fn use_tokenizer(tokenizer: &Tokenizer) -> bool {
    let round_trip = tokenizer
        .encode("abc ab", true)
        .is_ok_and(|ids| tokenizer.decode(&ids, false).is_ok());
    let chat = !tokenizer.has_chat_template() || tokenizer.encode_chat("abc").is_ok();
    round_trip && chat
}
