//! Scalar heads on a transformer backbone: the reward model (one score from the hidden state of
//! the last real token; transformers' `*ForSequenceClassification` layout with `score.weight`)
//! and the value head PPO needs (one value per position).

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{
    GenerationDefaults, read_weights, save_folder_atomically, write_checkpoint_files,
};
use crate::config::{ArchConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::model::{CausalLm, WeightSource};
use crate::tokenizer::Tokenizer;

/// transformers' name of the reward head.
pub const SCORE: &str = "score.weight";

/// A backbone without its LM head (tied for Llama, so no separate head weight is needed).
fn headless_config(config: &ModelConfig) -> ModelConfig {
    let mut config = config.clone();
    if let ArchConfig::Llama(c) = &mut config.arch {
        c.tie_word_embeddings = true;
    }
    config
}

fn class_name(config: &ModelConfig) -> &'static str {
    match config.arch {
        ArchConfig::Llama(_) => "LlamaForSequenceClassification",
        ArchConfig::Gpt2(_) => "GPT2ForSequenceClassification",
    }
}

/// Backbone + `score` (`[1, H]`, no bias) on the last real token of each left-padded row.
#[derive(Debug)]
pub struct RewardModel {
    pub backbone: CausalLm,
    pub score: Tensor,
}

impl RewardModel {
    /// A new reward model on the weights of a causal-LM checkpoint (its LM head is dropped);
    /// the score head starts at normal(0, 1/sqrt(H+1)), as TRL's reward trainer leaves it.
    pub fn from_causal_lm(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config = ModelConfig::load(dir)?;
        let mut tensors = read_weights(dir)?;
        tensors.remove("lm_head.weight");
        tensors.remove(SCORE);
        let h = config.hidden_size();
        let score = (Tensor::randn([1, h], (Kind::Float, Device::Cpu)) / ((h + 1) as f64).sqrt())
            .to_device(device)
            .to_kind(kind);
        let name = dir.display().to_string();
        let backbone = CausalLm::from_weights(
            headless_config(&config),
            WeightSource::new(tensors, &name, device, kind),
        )?;
        Ok(Self { backbone, score })
    }

    /// A reward model saved by [`Self::save`] (or by transformers' sequence classification).
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let config = ModelConfig::load(dir)?;
        let mut tensors = read_weights(dir)?;
        let name = dir.display().to_string();
        let h = config.hidden_size();
        let score = tensors.remove(SCORE).ok_or_else(|| Error::Tensor {
            source_name: name.clone(),
            tensor: SCORE.into(),
            message: format!("missing (expected shape [1, {h}]): not a reward model checkpoint"),
        })?;
        if score.size() != [1, h] {
            return Err(Error::Tensor {
                source_name: name,
                tensor: SCORE.into(),
                message: format!("has shape {:?}, expected [1, {h}]", score.size()),
            });
        }
        let backbone = CausalLm::from_weights(
            headless_config(&config),
            WeightSource::new(tensors, &name, device, kind),
        )?;
        Ok(Self {
            backbone,
            score: score.to_device(device).to_kind(kind),
        })
    }

    /// Rewards `[B]` (f32) of left-padded sequences.
    pub fn rewards(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self
            .backbone
            .forward_hidden(input_ids, attention_mask, None)?;
        let last = hidden.f_select(1, hidden.size()[1] - 1)?;
        Ok(last
            .f_linear::<Tensor>(&self.score, None)?
            .f_squeeze_dim(-1)?
            .f_to_kind(Kind::Float)?)
    }

    /// The score head at every position of `hidden` `[B, T, H]`: values `[B, T]` (f32), when
    /// the model serves as PPO's critic (TRL's value model is a reward model read per token).
    pub fn values_of_hidden(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden
            .f_linear::<Tensor>(&self.score, None)?
            .f_squeeze_dim(-1)?
            .f_to_kind(Kind::Float)?)
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = self.backbone.named_parameters();
        out.push((SCORE.to_owned(), self.score.shallow_clone()));
        out
    }

    /// Replaces every parameter (for training views), by name.
    pub fn set_parameters(
        &mut self,
        mut tensors: HashMap<String, Tensor>,
        source: &str,
    ) -> Result<()> {
        self.score = tensors.remove(SCORE).ok_or_else(|| Error::Tensor {
            source_name: source.to_owned(),
            tensor: SCORE.into(),
            message: "missing".into(),
        })?;
        self.backbone.set_parameters(tensors, source)
    }

    /// The config written for transformers' sequence classification (one label).
    pub fn hf_config(&self) -> ModelConfig {
        let mut config = self.backbone.config().clone();
        config
            .raw
            .insert("architectures".into(), json!([class_name(&config)]));
        config.raw.insert("num_labels".into(), json!(1));
        config
            .raw
            .insert("id2label".into(), json!({"0": "LABEL_0"}));
        config.raw.insert("label2id".into(), json!({"LABEL_0": 0}));
        config
    }

    /// Writes the checkpoint files into the existing folder `dir`.
    pub fn write(&self, dir: &Path, tokenizer: Option<&Tokenizer>) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = tch::no_grad(|| {
            self.named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.detach()))
                .collect()
        });
        let config = self.hf_config();
        write_checkpoint_files(
            dir,
            &config,
            &tensors,
            &GenerationDefaults::from_config(&config),
            tokenizer,
        )
    }

    /// Saves atomically at `dest`, in the sequence-classification layout.
    pub fn save(&self, dest: &Path, tokenizer: Option<&Tokenizer>) -> Result<()> {
        save_folder_atomically(dest, |dir| self.write(dir, tokenizer))
    }
}

/// A value head for PPO: `values = hidden @ w^T + b` at every position.
#[derive(Debug)]
pub struct ValueHead {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl ValueHead {
    pub const WEIGHT: &'static str = "value_head.weight";
    pub const BIAS: &'static str = "value_head.bias";

    /// Weight normal(0, 1/sqrt(H+1)), bias 0.
    pub fn new(hidden: i64, device: Device, kind: Kind) -> Self {
        Self {
            weight: (Tensor::randn([1, hidden], (Kind::Float, Device::Cpu))
                / ((hidden + 1) as f64).sqrt())
            .to_device(device)
            .to_kind(kind),
            bias: Tensor::zeros([1], (kind, device)),
        }
    }

    /// Values `[B, T]` (f32) of hidden states `[B, T, H]`.
    pub fn values(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden
            .f_linear(&self.weight, Some(&self.bias))?
            .f_squeeze_dim(-1)?
            .f_to_kind(Kind::Float)?)
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            (Self::WEIGHT.to_owned(), self.weight.shallow_clone()),
            (Self::BIAS.to_owned(), self.bias.shallow_clone()),
        ]
    }
}
