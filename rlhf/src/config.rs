//! Model configs read from (and written to) Hugging Face `config.json`, for the two
//! architectures hone implements: the Llama family and GPT-2.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result, io_error, malformed};

mod validate;

pub(crate) use validate::{Invalid, check_gpt2, check_llama};
pub use validate::{
    MAX_LAYERS, MAX_PARAMETERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, gpt2_parameters,
    llama_parameters,
};

/// Rotary-embedding frequency scaling (`rope_scaling` / `rope_parameters` in config.json).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor` (transformers' "linear").
    Linear {
        factor: f64,
    },
    /// Llama 3.1's wavelength-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: i64,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: i64,
    pub n_positions: i64,
    pub n_embd: i64,
    pub n_layer: i64,
    pub n_head: i64,
    pub n_inner: i64,
    pub layer_norm_epsilon: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArchConfig {
    Llama(LlamaConfig),
    Gpt2(Gpt2Config),
}

/// A parsed config.json: the architecture's hyper-parameters, the special token ids, and the
/// whole JSON object (so that fields hone does not use survive a load and save).
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub arch: ArchConfig,
    pub bos_token_id: Option<i64>,
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
    pub raw: Map<String, Value>,
}

/// Typed access to the fields of a JSON object, with errors naming the file and the field.
pub(crate) struct Fields<'a> {
    pub path: &'a Path,
    pub map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn error(&self, field: &str, message: impl ToString) -> Error {
        Error::Field {
            path: self.path.to_owned(),
            field: field.to_owned(),
            message: message.to_string(),
        }
    }

    fn present(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected an integer, got {v}"))),
        }
    }

    /// A positive integer.
    pub fn dim(&self, key: &str) -> Result<i64> {
        match self.opt_i64(key)? {
            None => Err(self.error(key, "missing")),
            Some(v) if v >= 1 => Ok(v),
            Some(v) => Err(self.error(key, format!("expected a positive integer, got {v}"))),
        }
    }

    pub fn opt_dim(&self, key: &str) -> Result<Option<i64>> {
        match self.opt_i64(key)? {
            None => Ok(None),
            Some(_) => self.dim(key).map(Some),
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.error(key, format!("expected a finite number, got {v}"))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(key, format!("expected true or false, got {v}"))),
        }
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected a string, got {v}"))),
        }
    }

    /// An id, a list of ids, or nothing (eos_token_id may be any of these).
    pub fn token_ids(&self, key: &str) -> Result<Vec<i64>> {
        match self.present(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_i64()
                        .filter(|&id| id >= 0)
                        .ok_or_else(|| self.error(key, format!("expected token ids, got {v}")))
                })
                .collect(),
            Some(v) => match v.as_i64() {
                Some(id) if id >= 0 => Ok(vec![id]),
                _ => Err(self.error(key, format!("expected a token id, got {v}"))),
            },
        }
    }
}

/// Reads and parses a JSON object file.
pub(crate) fn read_json_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(malformed(
            path,
            format!("expected a JSON object, got {}", json_kind(&other)),
        )),
        Err(e) => Err(malformed(path, format!("invalid JSON: {e}"))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl ArchConfig {
    /// What a config must satisfy for hone to build and run the model (positive sizes within
    /// bounds, heads that divide, finite positive epsilons and rotary bases), in Hugging Face's
    /// field names.
    pub(crate) fn check(&self) -> std::result::Result<(), Invalid> {
        match self {
            ArchConfig::Llama(c) => check_llama(c, validate::same_name),
            ArchConfig::Gpt2(c) => check_gpt2(c),
        }
    }
}

impl ModelConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let raw = read_json_object(&path)?;
        Self::from_json(&path, raw)
    }

    /// Parses a config.json object; `path` names it in errors.
    pub fn from_json(path: &Path, raw: Map<String, Value>) -> Result<Self> {
        let fields = Fields { path, map: &raw };
        let model_type = fields.opt_str("model_type")?.ok_or_else(|| Error::Field {
            path: path.to_owned(),
            field: "model_type".into(),
            message: "missing (expected \"llama\" or \"gpt2\")".into(),
        })?;
        let invalid = |e: Invalid| fields.error(e.field, e.message);
        let arch = match model_type {
            // Mistral and Qwen2-without-bias share the Llama block; only llama is declared here.
            "llama" => {
                let config = parse_llama(&fields)?;
                check_llama(&config, validate::same_name).map_err(invalid)?;
                ArchConfig::Llama(config)
            }
            "gpt2" => {
                let config = parse_gpt2(&fields)?;
                check_gpt2(&config).map_err(invalid)?;
                ArchConfig::Gpt2(config)
            }
            other => {
                return Err(Error::Field {
                    path: path.to_owned(),
                    field: "model_type".into(),
                    message: format!("\"{other}\" is not supported (supported: llama, gpt2)"),
                });
            }
        };
        let config = Self {
            bos_token_id: fields.token_ids("bos_token_id")?.first().copied(),
            eos_token_ids: fields.token_ids("eos_token_id")?,
            pad_token_id: fields.token_ids("pad_token_id")?.first().copied(),
            arch,
            raw: raw.clone(),
        };
        Ok(config)
    }

    pub fn vocab_size(&self) -> i64 {
        match &self.arch {
            ArchConfig::Llama(c) => c.vocab_size,
            ArchConfig::Gpt2(c) => c.vocab_size,
        }
    }

    pub fn hidden_size(&self) -> i64 {
        match &self.arch {
            ArchConfig::Llama(c) => c.hidden_size,
            ArchConfig::Gpt2(c) => c.n_embd,
        }
    }

    pub fn num_layers(&self) -> i64 {
        match &self.arch {
            ArchConfig::Llama(c) => c.num_hidden_layers,
            ArchConfig::Gpt2(c) => c.n_layer,
        }
    }

    /// The longest sequence the position embeddings cover (GPT-2: a hard limit; Llama: the
    /// trained context, beyond which RoPE still runs).
    pub fn max_positions(&self) -> i64 {
        match &self.arch {
            ArchConfig::Llama(c) => c.max_position_embeddings,
            ArchConfig::Gpt2(c) => c.n_positions,
        }
    }

    pub fn tie_word_embeddings(&self) -> bool {
        match &self.arch {
            ArchConfig::Llama(c) => c.tie_word_embeddings,
            ArchConfig::Gpt2(_) => true,
        }
    }

    /// The config as transformers writes it: the fields read from disk, with hone's values of
    /// the fields it understands written over them.
    pub fn to_json(&self) -> Value {
        let mut map = self.raw.clone();
        let mut set = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        match &self.arch {
            ArchConfig::Llama(c) => {
                set("model_type", json!("llama"));
                if !self.raw.contains_key("architectures") {
                    set("architectures", json!(["LlamaForCausalLM"]));
                }
                set("vocab_size", json!(c.vocab_size));
                set("hidden_size", json!(c.hidden_size));
                set("intermediate_size", json!(c.intermediate_size));
                set("num_hidden_layers", json!(c.num_hidden_layers));
                set("num_attention_heads", json!(c.num_attention_heads));
                set("num_key_value_heads", json!(c.num_key_value_heads));
                set("head_dim", json!(c.head_dim));
                set("rms_norm_eps", json!(c.rms_norm_eps));
                set("max_position_embeddings", json!(c.max_position_embeddings));
                set("tie_word_embeddings", json!(c.tie_word_embeddings));
                set("attention_bias", json!(c.attention_bias));
                set("mlp_bias", json!(c.mlp_bias));
                set("hidden_act", json!("silu"));
                let mut rope = json!({ "rope_theta": c.rope_theta });
                match &c.rope_scaling {
                    RopeScaling::None => rope["rope_type"] = json!("default"),
                    RopeScaling::Linear { factor } => {
                        rope["rope_type"] = json!("linear");
                        rope["factor"] = json!(factor);
                    }
                    RopeScaling::Llama3 {
                        factor,
                        low_freq_factor,
                        high_freq_factor,
                        original_max_position_embeddings,
                    } => {
                        rope["rope_type"] = json!("llama3");
                        rope["factor"] = json!(factor);
                        rope["low_freq_factor"] = json!(low_freq_factor);
                        rope["high_freq_factor"] = json!(high_freq_factor);
                        rope["original_max_position_embeddings"] =
                            json!(*original_max_position_embeddings as i64);
                    }
                }
                map.remove("rope_theta");
                map.remove("rope_scaling");
                map.insert("rope_parameters".into(), rope);
            }
            ArchConfig::Gpt2(c) => {
                set("model_type", json!("gpt2"));
                if !self.raw.contains_key("architectures") {
                    set("architectures", json!(["GPT2LMHeadModel"]));
                }
                set("vocab_size", json!(c.vocab_size));
                set("n_positions", json!(c.n_positions));
                set("n_embd", json!(c.n_embd));
                set("n_layer", json!(c.n_layer));
                set("n_head", json!(c.n_head));
                set("n_inner", json!(c.n_inner));
                set("layer_norm_epsilon", json!(c.layer_norm_epsilon));
                set("activation_function", json!("gelu_new"));
            }
        }
        let ids = |ids: &[i64]| match ids {
            [] => Value::Null,
            [one] => json!(one),
            many => json!(many),
        };
        map.insert("bos_token_id".into(), ids(self.bos_token_id.as_slice()));
        map.insert("eos_token_id".into(), ids(&self.eos_token_ids));
        map.insert("pad_token_id".into(), ids(self.pad_token_id.as_slice()));
        Value::Object(map)
    }

    /// A config built in code (not read from a file) for `arch`.
    pub fn new(arch: ArchConfig, bos: Option<i64>, eos: Vec<i64>, pad: Option<i64>) -> Self {
        let mut config = Self {
            arch,
            bos_token_id: bos,
            eos_token_ids: eos,
            pad_token_id: pad,
            raw: Map::new(),
        };
        if let Value::Object(map) = config.to_json() {
            config.raw = map;
        }
        config
    }
}

fn parse_llama(f: &Fields) -> Result<LlamaConfig> {
    if let Some(act) = f.opt_str("hidden_act")?
        && act != "silu"
    {
        return Err(f.error(
            "hidden_act",
            format!("\"{act}\" is not supported (only silu)"),
        ));
    }
    let hidden_size = f.dim("hidden_size")?;
    let num_attention_heads = f.dim("num_attention_heads")?;
    let num_key_value_heads = f
        .opt_dim("num_key_value_heads")?
        .unwrap_or(num_attention_heads);
    if num_attention_heads % num_key_value_heads != 0 {
        return Err(f.error(
            "num_key_value_heads",
            format!(
                "{num_key_value_heads} does not divide num_attention_heads = {num_attention_heads}"
            ),
        ));
    }
    let head_dim = match f.opt_dim("head_dim")? {
        Some(d) => d,
        None if hidden_size % num_attention_heads == 0 => hidden_size / num_attention_heads,
        None => {
            return Err(f.error(
                "num_attention_heads",
                format!("{num_attention_heads} does not divide hidden_size = {hidden_size}"),
            ));
        }
    };
    if head_dim % 2 != 0 {
        return Err(f.error(
            "head_dim",
            format!("{head_dim} is odd; rotary embeddings need an even head dimension"),
        ));
    }
    if let Some(tp) = f.opt_i64("pretraining_tp")?
        && tp != 1
    {
        return Err(f.error("pretraining_tp", format!("{tp} is not supported (only 1)")));
    }
    let (rope_theta, rope_scaling) = parse_rope(f)?;
    Ok(LlamaConfig {
        vocab_size: f.dim("vocab_size")?,
        hidden_size,
        intermediate_size: f.dim("intermediate_size")?,
        num_hidden_layers: f.dim("num_hidden_layers")?,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        rms_norm_eps: f.f64_or("rms_norm_eps", 1e-6)?,
        rope_theta,
        rope_scaling,
        max_position_embeddings: f.opt_dim("max_position_embeddings")?.unwrap_or(2048),
        tie_word_embeddings: f.bool_or("tie_word_embeddings", false)?,
        attention_bias: f.bool_or("attention_bias", false)?,
        mlp_bias: f.bool_or("mlp_bias", false)?,
    })
}

/// `rope_parameters` (transformers 5) or the older `rope_theta` + `rope_scaling`.
fn parse_rope(f: &Fields) -> Result<(f64, RopeScaling)> {
    let (object, field) = match (f.present("rope_parameters"), f.present("rope_scaling")) {
        (Some(p), _) => (Some(p), "rope_parameters"),
        (None, Some(s)) => (Some(s), "rope_scaling"),
        (None, None) => (None, ""),
    };
    let mut theta = f.f64_or("rope_theta", 10000.0)?;
    let Some(object) = object else {
        return Ok((theta, RopeScaling::None));
    };
    let Value::Object(map) = object else {
        return Err(f.error(field, format!("expected an object, got {object}")));
    };
    let path = PathBuf::from(format!("{} ({field})", f.path.display()));
    let inner = Fields { path: &path, map };
    theta = inner.f64_or("rope_theta", theta)?;
    if theta <= 0.0 {
        return Err(inner.error("rope_theta", format!("{theta} must be positive")));
    }
    let kind = inner
        .opt_str("rope_type")?
        .or(inner.opt_str("type")?)
        .unwrap_or("default");
    let factor = || -> Result<f64> {
        let factor = inner.f64_or("factor", f64::NAN)?;
        if factor.is_nan() {
            return Err(inner.error("factor", "missing"));
        }
        if factor < 1.0 {
            return Err(inner.error("factor", format!("{factor} must be >= 1")));
        }
        Ok(factor)
    };
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: factor()? },
        "llama3" => {
            let low = inner.f64_or("low_freq_factor", f64::NAN)?;
            let high = inner.f64_or("high_freq_factor", f64::NAN)?;
            let original = inner.f64_or("original_max_position_embeddings", f64::NAN)?;
            for (name, value) in [
                ("low_freq_factor", low),
                ("high_freq_factor", high),
                ("original_max_position_embeddings", original),
            ] {
                if value.is_nan() {
                    return Err(inner.error(name, "missing (needed by rope_type llama3)"));
                }
            }
            if high <= low {
                return Err(inner.error(
                    "high_freq_factor",
                    format!("{high} must exceed low_freq_factor = {low}"),
                ));
            }
            RopeScaling::Llama3 {
                factor: factor()?,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: original,
            }
        }
        other => {
            return Err(inner.error(
                "rope_type",
                format!("\"{other}\" is not supported (supported: default, linear, llama3)"),
            ));
        }
    };
    Ok((theta, scaling))
}

fn parse_gpt2(f: &Fields) -> Result<Gpt2Config> {
    if let Some(act) = f.opt_str("activation_function")?
        && act != "gelu_new"
    {
        return Err(f.error(
            "activation_function",
            format!("\"{act}\" is not supported (only gelu_new)"),
        ));
    }
    let n_embd = f.dim("n_embd")?;
    let n_head = f.dim("n_head")?;
    if n_embd % n_head != 0 {
        return Err(f.error(
            "n_head",
            format!("{n_head} does not divide n_embd = {n_embd}"),
        ));
    }
    if !f.bool_or("scale_attn_weights", true)? {
        return Err(f.error("scale_attn_weights", "false is not supported"));
    }
    if f.bool_or("scale_attn_by_inverse_layer_idx", false)? {
        return Err(f.error("scale_attn_by_inverse_layer_idx", "true is not supported"));
    }
    if f.bool_or("reorder_and_upcast_attn", false)? {
        return Err(f.error("reorder_and_upcast_attn", "true is not supported"));
    }
    Ok(Gpt2Config {
        vocab_size: f.dim("vocab_size")?,
        n_positions: f.dim("n_positions")?,
        n_embd,
        n_layer: f.dim("n_layer")?,
        n_head,
        n_inner: f.opt_dim("n_inner")?.unwrap_or(n_embd.saturating_mul(4)),
        layer_norm_epsilon: f.f64_or("layer_norm_epsilon", 1e-5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelConfig> {
        let Value::Object(map) = serde_json::from_str(text).unwrap() else {
            panic!("not an object")
        };
        ModelConfig::from_json(Path::new("config.json"), map)
    }

    const BASE: &str = r#"{"model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "eos_token_id": [2, 3]"#;

    #[test]
    fn reads_legacy_and_new_rope_fields() {
        let legacy = parse(&format!(
            "{BASE}, \"rope_theta\": 5e5, \"rope_scaling\": {{\"type\": \"linear\", \"factor\": 2.0}}}}"
        ))
        .unwrap();
        let ArchConfig::Llama(c) = &legacy.arch else {
            panic!()
        };
        assert_eq!(c.rope_theta, 5e5);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 2.0 });
        assert_eq!(c.head_dim, 8);
        assert_eq!(legacy.eos_token_ids, [2, 3]);
        // Written in transformers 5's form, read back to the same config.
        let Value::Object(map) = legacy.to_json() else {
            panic!()
        };
        let again = ModelConfig::from_json(Path::new("x"), map).unwrap();
        assert_eq!(again.arch, legacy.arch);
        assert_eq!(again.eos_token_ids, [2, 3]);
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse(r#"{"model_type": "llama", "vocab_size": 64}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json: field `hidden_size`: missing"),
            "{err}"
        );
        let err = parse(&format!(
            "{BASE}, \"rope_scaling\": {{\"rope_type\": \"yarn\", \"factor\": 2}}}}"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("rope_type") && err.contains("yarn"), "{err}");
        let err = parse(&format!("{BASE}, \"num_key_value_heads\": 3}}"));
        assert!(err.is_err());
        let err = parse(r#"{"model_type": "bert"}"#).unwrap_err().to_string();
        assert!(err.contains("\"bert\" is not supported"), "{err}");
        let err = parse(&format!("{BASE}, \"hidden_size\": \"wide\"}}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`hidden_size`") && err.contains("wide"),
            "{err}"
        );
    }
}
