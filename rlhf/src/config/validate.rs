//! Checks of an architecture config against what hone can run, before a weight is read or a
//! buffer allocated: positive sizes that divide as attention needs them to, finite positive
//! epsilons and rotary bases, and bounds that keep a corrupt config from asking for more memory
//! than any real model needs. Shared by config.json and GGUF import (which names the fields by
//! its own keys).

use super::{Gpt2Config, LlamaConfig, RopeScaling};

/// At most this many transformer layers (the largest public models have under 200).
pub const MAX_LAYERS: i64 = 1 << 16;
/// At most this wide a hidden state, MLP or attention projection (real models stay under 2^17).
pub const MAX_WIDTH: i64 = 1 << 20;
/// At most this many vocabulary entries (real tokenizers have under 2^18).
pub const MAX_VOCAB: i64 = 1 << 24;
/// At most this many positions of context.
pub const MAX_POSITIONS: i64 = 1 << 24;
/// At most this many parameters implied by a config (2^40, about 1.1e12).
pub const MAX_PARAMETERS: u128 = 1 << 40;

/// A config value hone rejects: the field (as its source names it) and why.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub field: &'static str,
    pub message: String,
}

/// Maps a Hugging Face config field to the name its source uses (a GGUF key, or itself).
pub(crate) type FieldNames = fn(&'static str) -> &'static str;

/// Hugging Face's names, for config.json.
pub(crate) fn same_name(field: &'static str) -> &'static str {
    field
}

struct Checker {
    name: FieldNames,
}

impl Checker {
    fn invalid(&self, field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            field: (self.name)(field),
            message: message.into(),
        }
    }

    /// `1 ..= max`.
    fn size(&self, field: &'static str, value: i64, max: i64) -> Result<(), Invalid> {
        if value < 1 {
            return Err(self.invalid(field, format!("{value} must be a positive integer")));
        }
        if value > max {
            return Err(self.invalid(
                field,
                format!("{value} exceeds hone's limit of {max} (a corrupt or unsupported config)"),
            ));
        }
        Ok(())
    }

    /// Finite and `> 0`.
    fn positive(&self, field: &'static str, value: f64) -> Result<(), Invalid> {
        if !(value.is_finite() && value > 0.0) {
            return Err(self.invalid(field, format!("{value} must be a finite positive number")));
        }
        Ok(())
    }

    fn parameters(
        &self,
        total: u128,
        field: &'static str,
        sizes: &[(&'static str, i64)],
    ) -> Result<(), Invalid> {
        if total <= MAX_PARAMETERS {
            return Ok(());
        }
        let sizes: Vec<String> = sizes
            .iter()
            .map(|(f, v)| format!("{} = {v}", (self.name)(f)))
            .collect();
        Err(self.invalid(
            field,
            format!(
                "{} imply {total} parameters, more than hone's limit of {MAX_PARAMETERS}",
                sizes.join(", ")
            ),
        ))
    }
}

/// The parameters of a Llama config (weights and norms; biases when configured).
pub fn llama_parameters(c: &LlamaConfig) -> u128 {
    let (embedding, layers) = llama_parts(c);
    embedding.saturating_add(layers)
}

/// A product of sizes, saturating (an unchecked config may hold any i64).
fn product(sizes: &[i64]) -> u128 {
    sizes
        .iter()
        .fold(1u128, |acc, &v| acc.saturating_mul(v.max(0) as u128))
}

fn sum(terms: &[u128]) -> u128 {
    terms.iter().fold(0u128, |acc, &t| acc.saturating_add(t))
}

/// The parameters of the embedding, LM head and final norm, and those of all layers.
fn llama_parts(c: &LlamaConfig) -> (u128, u128) {
    let (h, ff, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    let (heads, kv_heads, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
    let mut layer = sum(&[
        product(&[2, h]),
        product(&[2, h, heads, d]),
        product(&[2, h, kv_heads, d]),
        product(&[3, h, ff]),
    ]);
    if c.attention_bias {
        layer = sum(&[
            layer,
            product(&[heads, d]),
            product(&[2, kv_heads, d]),
            product(&[h]),
        ]);
    }
    if c.mlp_bias {
        layer = sum(&[layer, product(&[2, ff]), product(&[h])]);
    }
    let lm_heads = if c.tie_word_embeddings { 1 } else { 2 };
    (
        sum(&[product(&[lm_heads, v, h]), product(&[h])]),
        product(&[c.num_hidden_layers]).saturating_mul(layer),
    )
}

/// The parameters of a GPT-2 config.
pub fn gpt2_parameters(c: &Gpt2Config) -> u128 {
    let (embedding, layers) = gpt2_parts(c);
    embedding.saturating_add(layers)
}

/// The parameters of the token and position embeddings and final norm, and those of all layers.
fn gpt2_parts(c: &Gpt2Config) -> (u128, u128) {
    let (e, inner) = (c.n_embd, c.n_inner);
    // Two layer norms, attention (qkv and output, with biases), MLP (with biases).
    let layer = sum(&[
        product(&[4, e]),
        product(&[3, e, e]),
        product(&[3, e]),
        product(&[e, e]),
        product(&[e]),
        product(&[2, e, inner]),
        product(&[inner]),
        product(&[e]),
    ]);
    (
        sum(&[
            product(&[c.vocab_size, e]),
            product(&[c.n_positions, e]),
            product(&[2, e]),
        ]),
        product(&[c.n_layer]).saturating_mul(layer),
    )
}

/// Everything a Llama config must satisfy for hone to build and run the model.
pub(crate) fn check_llama(c: &LlamaConfig, name: FieldNames) -> Result<(), Invalid> {
    let k = Checker { name };
    k.size("vocab_size", c.vocab_size, MAX_VOCAB)?;
    k.size("hidden_size", c.hidden_size, MAX_WIDTH)?;
    k.size("intermediate_size", c.intermediate_size, MAX_WIDTH)?;
    k.size("num_hidden_layers", c.num_hidden_layers, MAX_LAYERS)?;
    k.size("num_attention_heads", c.num_attention_heads, MAX_WIDTH)?;
    k.size("num_key_value_heads", c.num_key_value_heads, MAX_WIDTH)?;
    k.size("head_dim", c.head_dim, MAX_WIDTH)?;
    k.size(
        "max_position_embeddings",
        c.max_position_embeddings,
        MAX_POSITIONS,
    )?;
    if c.num_attention_heads % c.num_key_value_heads != 0 {
        return Err(k.invalid(
            "num_key_value_heads",
            format!(
                "{} does not divide {} = {}",
                c.num_key_value_heads,
                name("num_attention_heads"),
                c.num_attention_heads
            ),
        ));
    }
    if c.head_dim % 2 != 0 {
        return Err(k.invalid(
            "head_dim",
            format!(
                "{} is odd; rotary embeddings need an even head dimension",
                c.head_dim
            ),
        ));
    }
    if c.num_attention_heads * c.head_dim > MAX_WIDTH {
        return Err(k.invalid(
            "num_attention_heads",
            format!(
                "{} heads of {} = {} exceed hone's limit of {MAX_WIDTH} query features",
                c.num_attention_heads,
                name("head_dim"),
                c.head_dim
            ),
        ));
    }
    k.positive("rms_norm_eps", c.rms_norm_eps)?;
    k.positive("rope_theta", c.rope_theta)?;
    match c.rope_scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => k.positive("rope_scaling", factor)?,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            for value in [
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            ] {
                k.positive("rope_scaling", value)?;
            }
        }
    }
    // Blame the embedding's size or the layer count, whichever holds more of the parameters.
    let (embedding, layers) = llama_parts(c);
    k.parameters(
        embedding.saturating_add(layers),
        if embedding >= layers {
            "vocab_size"
        } else {
            "num_hidden_layers"
        },
        &[
            ("vocab_size", c.vocab_size),
            ("hidden_size", c.hidden_size),
            ("intermediate_size", c.intermediate_size),
            ("num_hidden_layers", c.num_hidden_layers),
            ("num_attention_heads", c.num_attention_heads),
            ("head_dim", c.head_dim),
        ],
    )
}

/// Everything a GPT-2 config must satisfy for hone to build and run the model.
pub(crate) fn check_gpt2(c: &Gpt2Config) -> Result<(), Invalid> {
    let k = Checker { name: same_name };
    k.size("vocab_size", c.vocab_size, MAX_VOCAB)?;
    k.size("n_positions", c.n_positions, MAX_POSITIONS)?;
    k.size("n_embd", c.n_embd, MAX_WIDTH)?;
    k.size("n_layer", c.n_layer, MAX_LAYERS)?;
    k.size("n_head", c.n_head, MAX_WIDTH)?;
    k.size("n_inner", c.n_inner, MAX_WIDTH)?;
    if c.n_embd % c.n_head != 0 {
        return Err(k.invalid(
            "n_head",
            format!("{} does not divide n_embd = {}", c.n_head, c.n_embd),
        ));
    }
    k.positive("layer_norm_epsilon", c.layer_norm_epsilon)?;
    let (embedding, layers) = gpt2_parts(c);
    k.parameters(
        embedding.saturating_add(layers),
        if embedding >= layers {
            "vocab_size"
        } else {
            "n_layer"
        },
        &[
            ("vocab_size", c.vocab_size),
            ("n_positions", c.n_positions),
            ("n_embd", c.n_embd),
            ("n_inner", c.n_inner),
            ("n_layer", c.n_layer),
        ],
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use crate::config::ModelConfig;

    /// A small valid Llama config.json; `extra` fields are written over it.
    fn llama(extra: &str) -> crate::Result<ModelConfig> {
        parse(&format!(
            r#"{{"model_type": "llama", "vocab_size": 64, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2 {extra}}}"#
        ))
    }

    fn gpt2(extra: &str) -> crate::Result<ModelConfig> {
        parse(&format!(
            r#"{{"model_type": "gpt2", "vocab_size": 64, "n_positions": 32, "n_embd": 16,
            "n_layer": 2, "n_head": 4 {extra}}}"#
        ))
    }

    fn parse(text: &str) -> crate::Result<ModelConfig> {
        let map = match serde_json::from_str(text).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        };
        ModelConfig::from_json(Path::new("config.json"), map)
    }

    /// The error of a config that must be rejected, checked to name `field` and `words`.
    fn rejected(result: crate::Result<ModelConfig>, field: &str, words: &[&str]) {
        let err = match result {
            Ok(config) => panic!("accepted a config with a bad `{field}`: {:?}", config.arch),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&format!("field `{field}`")), "{err}");
        for word in words {
            assert!(err.contains(word), "expected {word:?} in: {err}");
        }
    }

    #[test]
    fn llama_eps_and_rope_theta_must_be_finite_and_positive() {
        llama("").unwrap();
        llama(r#", "rms_norm_eps": 1e-5, "rope_theta": 5e5"#).unwrap();
        rejected(
            llama(r#", "rms_norm_eps": -1"#),
            "rms_norm_eps",
            &["-1", "positive"],
        );
        rejected(
            llama(r#", "rms_norm_eps": 0"#),
            "rms_norm_eps",
            &["positive"],
        );
        rejected(
            llama(r#", "rope_theta": -5"#),
            "rope_theta",
            &["-5", "positive"],
        );
        rejected(llama(r#", "rope_theta": 0"#), "rope_theta", &["positive"]);
    }

    #[test]
    fn llama_sizes_beyond_any_real_model_are_rejected_before_loading() {
        rejected(
            llama(r#", "num_hidden_layers": 1000000000"#),
            "num_hidden_layers",
            &["1000000000", "limit of 65536"],
        );
        rejected(
            llama(r#", "hidden_size": 1099511627776"#),
            "hidden_size",
            &["1099511627776", "limit"],
        );
        rejected(
            llama(r#", "vocab_size": 1073741824"#),
            "vocab_size",
            &["limit"],
        );
        rejected(
            llama(r#", "max_position_embeddings": 1099511627776"#),
            "max_position_embeddings",
            &["limit"],
        );
        rejected(
            llama(r#", "head_dim": 1048576"#),
            "num_attention_heads",
            &["4 heads of head_dim = 1048576"],
        );
        // Each size within its bound, the whole far beyond any model: 2^20-wide MLPs in 1000
        // layers, or a 2^24 x 2^20 embedding.
        rejected(
            llama(
                r#", "hidden_size": 65536, "intermediate_size": 1048576,
                "num_hidden_layers": 1000"#,
            ),
            "num_hidden_layers",
            &[
                "parameters",
                "limit of 1099511627776",
                "intermediate_size = 1048576",
            ],
        );
        rejected(
            llama(r#", "vocab_size": 16777216, "hidden_size": 1048576"#),
            "vocab_size",
            &["parameters"],
        );
    }

    #[test]
    fn llama_heads_must_divide() {
        rejected(
            llama(r#", "num_key_value_heads": 3"#),
            "num_key_value_heads",
            &["3 does not divide num_attention_heads = 4"],
        );
        rejected(
            llama(r#", "num_attention_heads": 0"#),
            "num_attention_heads",
            &["positive"],
        );
        rejected(
            llama(r#", "num_key_value_heads": 0"#),
            "num_key_value_heads",
            &["positive"],
        );
        rejected(
            llama(r#", "num_hidden_layers": 0"#),
            "num_hidden_layers",
            &["positive"],
        );
        rejected(llama(r#", "hidden_size": 0"#), "hidden_size", &["positive"]);
    }

    #[test]
    fn gpt2_config_json_is_checked_like_llama() {
        gpt2("").unwrap();
        rejected(
            gpt2(r#", "layer_norm_epsilon": -1"#),
            "layer_norm_epsilon",
            &["-1", "positive"],
        );
        rejected(
            gpt2(r#", "n_layer": 1000000000"#),
            "n_layer",
            &["1000000000", "limit"],
        );
        rejected(
            gpt2(r#", "n_positions": 1073741824"#),
            "n_positions",
            &["limit"],
        );
        rejected(
            gpt2(r#", "n_embd": 4611686018427387904"#),
            "n_embd",
            &["limit"],
        );
        rejected(
            gpt2(r#", "n_embd": 65536, "n_inner": 1048576, "n_layer": 1000"#),
            "n_layer",
            &["parameters"],
        );
        rejected(gpt2(r#", "n_head": 3"#), "n_head", &["does not divide"]);
    }
}
