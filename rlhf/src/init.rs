//! Small random checkpoints for tests and demos (`hone init`): a Llama or GPT-2 config,
//! weights initialised as transformers initialises them (normal(0, 0.02) matrices, unit norms,
//! zero biases), and a byte-level tokenizer (256 byte tokens, ChatML specials, no merges) that
//! encodes any text.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{GenerationDefaults, write_checkpoint_files, write_into_folder};
use crate::config::{ArchConfig, Gpt2Config, LlamaConfig, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::model::{CausalLm, WeightSource};
use crate::tokenizer::Tokenizer;

/// ChatML, as SmolLM2 and Qwen use it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Special tokens of the byte tokenizer, after the 256 byte tokens.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitSpec {
    /// "llama" or "gpt2".
    pub arch: String,
    pub layers: i64,
    pub hidden: i64,
    pub heads: i64,
    /// Llama only (default: `heads`).
    pub kv_heads: Option<i64>,
    /// MLP width (default: Llama 8/3·hidden rounded up to 16, GPT-2 4·hidden).
    pub intermediate: Option<i64>,
    pub max_positions: i64,
    /// Llama only: share the embedding with the LM head.
    pub tie_embeddings: bool,
    pub rope_theta: f64,
    pub seed: u64,
}

impl Default for InitSpec {
    fn default() -> Self {
        Self {
            arch: "llama".into(),
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: None,
            intermediate: None,
            max_positions: 512,
            tie_embeddings: true,
            rope_theta: 10000.0,
            seed: 0,
        }
    }
}

/// The byte-level tokenizer: one token per byte (GPT-2's byte-to-unicode alphabet), then
/// [`SPECIAL_TOKENS`].
pub fn byte_tokenizer() -> Result<Tokenizer> {
    let mut vocab = Map::new();
    for (id, ch) in gpt2_byte_alphabet().into_iter().enumerate() {
        vocab.insert(ch.to_string(), json!(id));
    }
    let mut added = Vec::new();
    for (i, token) in SPECIAL_TOKENS.iter().enumerate() {
        let id = 256 + i;
        vocab.insert((*token).to_owned(), json!(id));
        added.push(
            json!({"id": id, "content": token, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true}),
        );
    }
    let tokenizer_json = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []},
    });
    let mut config = Map::new();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("bos_token".into(), json!(SPECIAL_TOKENS[1]));
    config.insert("eos_token".into(), json!(SPECIAL_TOKENS[2]));
    config.insert("pad_token".into(), json!(SPECIAL_TOKENS[0]));
    config.insert("unk_token".into(), json!(SPECIAL_TOKENS[0]));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    let text = tokenizer_json.to_string();
    Tokenizer::from_json(
        Path::new("byte tokenizer"),
        &text,
        config,
        Some(CHATML_TEMPLATE.to_owned()),
    )
}

/// GPT-2's reversible map from bytes to printable characters.
fn gpt2_byte_alphabet() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

fn check(name: &'static str, value: i64, ok: bool, expected: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Parameter {
            name,
            value: value.to_string(),
            expected: expected.to_owned(),
        })
    }
}

/// The model config `spec` describes, for a vocabulary of `vocab` tokens.
pub fn model_config(spec: &InitSpec, vocab: i64) -> Result<ModelConfig> {
    check("layers", spec.layers, spec.layers >= 1, "at least 1")?;
    check("heads", spec.heads, spec.heads >= 1, "at least 1")?;
    check(
        "hidden",
        spec.hidden,
        spec.hidden >= 2 && spec.hidden % spec.heads == 0 && (spec.hidden / spec.heads) % 2 == 0,
        "a multiple of heads with an even head dimension",
    )?;
    check(
        "max_positions",
        spec.max_positions,
        spec.max_positions >= 1,
        "at least 1",
    )?;
    let (pad, bos, eos) = (256, 257, 258);
    let arch = match spec.arch.as_str() {
        "llama" => {
            let kv = spec.kv_heads.unwrap_or(spec.heads);
            check(
                "kv_heads",
                kv,
                kv >= 1 && spec.heads % kv == 0,
                "a divisor of heads",
            )?;
            let intermediate = spec
                .intermediate
                .unwrap_or_else(|| (spec.hidden * 8 / 3 + 15) / 16 * 16);
            check(
                "intermediate",
                intermediate,
                intermediate >= 1,
                "at least 1",
            )?;
            ArchConfig::Llama(LlamaConfig {
                vocab_size: vocab,
                hidden_size: spec.hidden,
                intermediate_size: intermediate,
                num_hidden_layers: spec.layers,
                num_attention_heads: spec.heads,
                num_key_value_heads: kv,
                head_dim: spec.hidden / spec.heads,
                rms_norm_eps: 1e-5,
                rope_theta: spec.rope_theta,
                rope_scaling: RopeScaling::None,
                max_position_embeddings: spec.max_positions,
                tie_word_embeddings: spec.tie_embeddings,
                attention_bias: false,
                mlp_bias: false,
            })
        }
        "gpt2" => {
            let inner = spec.intermediate.unwrap_or(4 * spec.hidden);
            check("intermediate", inner, inner >= 1, "at least 1")?;
            ArchConfig::Gpt2(Gpt2Config {
                vocab_size: vocab,
                n_positions: spec.max_positions,
                n_embd: spec.hidden,
                n_layer: spec.layers,
                n_head: spec.heads,
                n_inner: inner,
                layer_norm_epsilon: 1e-5,
            })
        }
        other => {
            return Err(Error::Parameter {
                name: "arch",
                value: other.to_owned(),
                expected: "llama or gpt2".into(),
            });
        }
    };
    Ok(ModelConfig::new(arch, Some(bos), vec![eos], Some(pad)))
}

/// Random weights for `config` under transformers' names, seeded.
pub fn random_model(config: &ModelConfig, seed: u64, device: Device) -> Result<CausalLm> {
    // Sizes are checked before the weights are drawn (`hone init --layers 1000000000`).
    config.arch.check().map_err(|e| Error::Field {
        path: "hone init (config)".into(),
        field: e.field.to_owned(),
        message: e.message,
    })?;
    tch::manual_seed(seed as i64);
    let names_and_shapes = parameter_shapes(config);
    let mut tensors = HashMap::new();
    for (name, shape) in names_and_shapes {
        let value = if shape.len() == 1 {
            if name.ends_with(".bias") {
                Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu))
            } else {
                Tensor::ones(shape.as_slice(), (Kind::Float, Device::Cpu))
            }
        } else {
            Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * 0.02
        };
        tensors.insert(name, value);
    }
    CausalLm::from_weights(
        config.clone(),
        WeightSource::new(tensors, "random init", device, Kind::Float),
    )
}

/// Every parameter name and shape the architecture of `config` takes (loading checks them).
fn parameter_shapes(config: &ModelConfig) -> Vec<(String, Vec<i64>)> {
    let mut probe = ShapeProbe::default();
    match &config.arch {
        ArchConfig::Llama(c) => {
            let (h, v, i) = (c.hidden_size, c.vocab_size, c.intermediate_size);
            let (q, kv) = (
                c.num_attention_heads * c.head_dim,
                c.num_key_value_heads * c.head_dim,
            );
            probe.add("model.embed_tokens.weight", &[v, h]);
            for l in 0..c.num_hidden_layers {
                let p = format!("model.layers.{l}");
                probe.add(&format!("{p}.input_layernorm.weight"), &[h]);
                probe.add(&format!("{p}.self_attn.q_proj.weight"), &[q, h]);
                probe.add(&format!("{p}.self_attn.k_proj.weight"), &[kv, h]);
                probe.add(&format!("{p}.self_attn.v_proj.weight"), &[kv, h]);
                probe.add(&format!("{p}.self_attn.o_proj.weight"), &[h, q]);
                probe.add(&format!("{p}.post_attention_layernorm.weight"), &[h]);
                probe.add(&format!("{p}.mlp.gate_proj.weight"), &[i, h]);
                probe.add(&format!("{p}.mlp.up_proj.weight"), &[i, h]);
                probe.add(&format!("{p}.mlp.down_proj.weight"), &[h, i]);
            }
            probe.add("model.norm.weight", &[h]);
            if !c.tie_word_embeddings {
                probe.add("lm_head.weight", &[v, h]);
            }
        }
        ArchConfig::Gpt2(c) => {
            let e = c.n_embd;
            probe.add("transformer.wte.weight", &[c.vocab_size, e]);
            probe.add("transformer.wpe.weight", &[c.n_positions, e]);
            for l in 0..c.n_layer {
                let p = format!("transformer.h.{l}");
                for (name, w, b) in [
                    ("ln_1", vec![e], e),
                    ("attn.c_attn", vec![e, 3 * e], 3 * e),
                    ("attn.c_proj", vec![e, e], e),
                    ("ln_2", vec![e], e),
                    ("mlp.c_fc", vec![e, c.n_inner], c.n_inner),
                    ("mlp.c_proj", vec![c.n_inner, e], e),
                ] {
                    probe.add(&format!("{p}.{name}.weight"), &w);
                    probe.add(&format!("{p}.{name}.bias"), &[b]);
                }
            }
            probe.add("transformer.ln_f.weight", &[e]);
            probe.add("transformer.ln_f.bias", &[e]);
        }
    }
    probe.0
}

#[derive(Default)]
struct ShapeProbe(Vec<(String, Vec<i64>)>);

impl ShapeProbe {
    fn add(&mut self, name: &str, shape: &[i64]) {
        self.0.push((name.to_owned(), shape.to_vec()));
    }
}

/// `hone init`: a random checkpoint with the byte tokenizer in the folder `out` (see
/// [`write_into_folder`] for `force`).
pub fn create_random_checkpoint(spec: &InitSpec, out: &Path, force: bool) -> Result<ModelConfig> {
    let tokenizer = byte_tokenizer()?;
    let config = model_config(spec, tokenizer.vocab_size() as i64)?;
    let model = random_model(&config, spec.seed, Device::Cpu)?;
    let tensors = model.named_parameters();
    let mut generation = GenerationDefaults::from_config(&config);
    generation
        .raw
        .insert("do_sample".into(), Value::Bool(false));
    write_into_folder(out, force, |dir| {
        write_checkpoint_files(dir, &config, &tensors, &generation, Some(&tokenizer))
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokenizer_round_trips_any_text() {
        let tok = byte_tokenizer().unwrap();
        assert_eq!(tok.vocab_size(), 259);
        let text = "héllo, wörld 日本 🙂\n\tend";
        let ids = tok.encode(text, false).unwrap();
        assert_eq!(ids.len(), text.len(), "one token per byte");
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        let chat = tok.encode_chat("hi").unwrap();
        assert_eq!(chat[0], 257, "<|im_start|> is one token");
        assert_eq!(tok.special_token_id("eos_token"), Some(258));
    }

    #[test]
    fn bad_specs_are_named() {
        let spec = InitSpec {
            hidden: 30,
            heads: 4,
            ..InitSpec::default()
        };
        let err = model_config(&spec, 259).unwrap_err().to_string();
        assert!(err.contains("hidden = 30"), "{err}");
        let spec = InitSpec {
            arch: "bert".into(),
            ..InitSpec::default()
        };
        assert!(
            model_config(&spec, 259)
                .unwrap_err()
                .to_string()
                .contains("bert")
        );
    }
}
