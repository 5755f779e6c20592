//! GGUF import: the container (versions 2 and 3), dequantisation of F32, F16, BF16, Q8_0, Q4_0
//! and Q4_1 tensors, and the conversion of a llama-architecture file into a Hugging Face
//! checkpoint folder (transformers' names, the query/key row order transformers uses, a config,
//! and a tokenizer.json rebuilt from the GGUF tokenizer metadata).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use tch::Tensor;

use crate::checkpoint::{GenerationDefaults, write_checkpoint_files, write_into_folder};
use crate::config::{ArchConfig, LlamaConfig, ModelConfig, RopeScaling};
use crate::error::{Error, Result, io_error, malformed};
use crate::tokenizer::Tokenizer;

mod validate;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::Uint(v) => Some(v),
            GgufValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::Float(v) => Some(v),
            GgufValue::Uint(v) => Some(v as f64),
            GgufValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// GGML tensor types hone dequantises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Bf16,
}

impl GgmlType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// Elements per block and bytes per block.
    fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q8_0 => (32, 34),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GgufTensor {
    pub name: String,
    /// GGML order: `dims[0]` varies fastest (the reverse of the row-major shape).
    pub dims: Vec<u64>,
    pub kind: GgmlType,
    offset: u64,
}

impl GgufTensor {
    /// The row-major shape (`[out, in]` for a weight matrix).
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }

    /// Elements, `None` when the dimensions overflow.
    fn numel(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| usize::try_from(n).ok())
    }
}

pub struct GgufFile {
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensor>,
    data: Vec<u8>,
    path: std::path::PathBuf,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(malformed(
                self.path,
                format!("truncated: needs {n} bytes at offset {}", self.pos),
            ));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            malformed(
                self.path,
                format!("string at offset {} is not UTF-8", self.pos),
            )
        })
    }

    fn value(&mut self, kind: u32, depth: usize) -> Result<GgufValue> {
        Ok(match kind {
            0 => GgufValue::Uint(u64::from(self.array::<1>()?[0])),
            1 => GgufValue::Int(i64::from(i8::from_le_bytes(self.array()?))),
            2 => GgufValue::Uint(u64::from(u16::from_le_bytes(self.array()?))),
            3 => GgufValue::Int(i64::from(i16::from_le_bytes(self.array()?))),
            4 => GgufValue::Uint(u64::from(self.u32()?)),
            5 => GgufValue::Int(i64::from(i32::from_le_bytes(self.array()?))),
            6 => GgufValue::Float(f64::from(f32::from_le_bytes(self.array()?))),
            7 => GgufValue::Bool(self.array::<1>()?[0] != 0),
            8 => GgufValue::Str(self.string()?),
            9 if depth < 4 => {
                let inner = self.u32()?;
                let count = self.u64()?;
                // Each element takes at least one byte: a count beyond the file is corrupt.
                if count > (self.bytes.len() - self.pos) as u64 {
                    return Err(malformed(
                        self.path,
                        format!("array of {count} elements exceeds the file"),
                    ));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(inner, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::Uint(self.u64()?),
            11 => GgufValue::Int(i64::from_le_bytes(self.array()?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.array()?)),
            other => {
                return Err(malformed(
                    self.path,
                    format!("unknown metadata value type {other} at offset {}", self.pos),
                ));
            }
        })
    }
}

impl GgufFile {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        Self::parse(bytes, path)
    }

    /// Parses the bytes of a GGUF file; `path` names it in errors. The header and the tensor
    /// table are checked whole (see [`validate::check_layout`]) before the file is returned.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        let mut r = Reader {
            bytes: &bytes,
            pos: 0,
            path,
        };
        if r.take(4)? != b"GGUF" {
            return Err(malformed(path, "not a GGUF file (no GGUF magic)"));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(malformed(
                path,
                format!("GGUF version {version} (supported: 2, 3)"),
            ));
        }
        let tensor_count = r.u64()?;
        let kv_count = r.u64()?;
        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = r.string()?;
            let kind = r.u32()?;
            let value = r.value(kind, 0)?;
            if metadata.contains_key(&key) {
                return Err(malformed(
                    path,
                    format!("metadata key `{key}` appears twice"),
                ));
            }
            metadata.insert(key, value);
        }
        let mut tensors = Vec::new();
        for _ in 0..tensor_count {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims > 4 {
                return Err(malformed(
                    path,
                    format!("tensor `{name}` has {n_dims} dimensions"),
                ));
            }
            let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
            let type_id = r.u32()?;
            let kind = GgmlType::from_id(type_id).ok_or_else(|| Error::Tensor {
                source_name: path.display().to_string(),
                tensor: name.clone(),
                message: format!(
                    "GGML type {type_id} is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)"
                ),
            })?;
            let offset = r.u64()?;
            tensors.push(GgufTensor {
                name,
                dims,
                kind,
                offset,
            });
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two() && *a <= 1 << 16)
                .ok_or_else(|| Error::Field {
                    path: path.to_owned(),
                    field: "general.alignment".into(),
                    message: format!("{v:?} is not a power of two up to 65536"),
                })?,
        };
        let start = (r.pos as u64).div_ceil(alignment) * alignment;
        let mut data = bytes;
        data.drain(..(start as usize).min(data.len()));
        validate::check_layout(path, &tensors, alignment, data.len())?;
        Ok(Self {
            version,
            metadata,
            tensors,
            data,
            path: path.to_owned(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    fn field_error(&self, key: &str, message: impl ToString) -> Error {
        Error::Field {
            path: self.path.clone(),
            field: key.to_owned(),
            message: message.to_string(),
        }
    }

    fn require_u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .ok_or_else(|| self.field_error(key, "missing"))?
            .as_u64()
            .ok_or_else(|| self.field_error(key, "expected an unsigned integer"))
    }

    /// An integer metadata value that fits an i64 (sizes are checked against the config's
    /// bounds afterwards), or `None` when absent.
    fn opt_size(&self, key: &str) -> Result<Option<i64>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let v = value.as_u64().ok_or_else(|| {
            self.field_error(key, format!("expected an unsigned integer, got {value:?}"))
        })?;
        i64::try_from(v)
            .map(Some)
            .map_err(|_| self.field_error(key, format!("{v} is too large")))
    }

    fn size(&self, key: &str) -> Result<i64> {
        self.opt_size(key)?
            .ok_or_else(|| self.field_error(key, "missing"))
    }

    /// A number (float or integer) metadata value, or `None` when absent.
    fn opt_number(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.field_error(key, format!("expected a number, got {value:?}"))),
        }
    }

    /// The tensor dequantised to f32, in its row-major shape.
    pub fn dequantize(&self, tensor: &GgufTensor) -> Result<Tensor> {
        let len = validate::data_bytes(&self.path, tensor)?;
        let numel = tensor.numel().unwrap_or(0);
        let tensor_error = |message: String| Error::Tensor {
            source_name: self.path.display().to_string(),
            tensor: tensor.name.clone(),
            message,
        };
        let start = usize::try_from(tensor.offset).unwrap_or(usize::MAX);
        let bytes = start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .ok_or_else(|| tensor_error(format!("data [{start}, +{len}) lies beyond the file")))?;
        let values = dequantize_blocks(tensor.kind, bytes, numel);
        Ok(Tensor::from_slice(&values).f_view(tensor.shape().as_slice())?)
    }
}

fn f16(bytes: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f32()
}

/// GGML's reference dequantisation (ggml-quants.c) of whole blocks.
pub fn dequantize_blocks(kind: GgmlType, bytes: &[u8], numel: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(numel);
    match kind {
        GgmlType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        GgmlType::F16 => out.extend(bytes.chunks_exact(2).map(f16)),
        GgmlType::Bf16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)),
        ),
        GgmlType::Q8_0 => {
            for block in bytes.chunks_exact(34) {
                let d = f16(&block[..2]);
                out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for block in bytes.chunks_exact(18) {
                let d = f16(&block[..2]);
                let qs = &block[2..];
                out.extend(qs.iter().map(|&q| (f32::from(q & 0x0F) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for block in bytes.chunks_exact(20) {
                let d = f16(&block[..2]);
                let m = f16(&block[2..4]);
                let qs = &block[4..];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
    }
    out
}

/// Undoes llama.cpp's interleaving of the rotary halves in the query/key rows of each head.
pub fn unpermute_rows(weight: &Tensor, heads: i64) -> Result<Tensor> {
    let size = weight.size();
    let Some((&rows, rest)) = size.split_first() else {
        return Err(Error::Parameter {
            name: "query/key weight shape",
            value: format!("{size:?}"),
            expected: "at least one dimension".into(),
        });
    };
    if heads < 1 || heads.checked_mul(2).is_none_or(|n| rows % n != 0) {
        return Err(Error::Parameter {
            name: "query/key heads",
            value: heads.to_string(),
            expected: format!("a positive count whose double divides the {rows} rows"),
        });
    }
    let mut view = vec![heads, rows / heads / 2, 2];
    view.extend_from_slice(rest);
    Ok(weight
        .f_reshape(view.as_slice())?
        .f_transpose(1, 2)?
        .f_contiguous()?
        .f_reshape(size.as_slice())?)
}

/// transformers' name of a GGUF llama tensor (`None` for tensors hone recomputes).
fn hf_name(name: &str) -> Option<String> {
    Some(match name {
        "token_embd.weight" => "model.embed_tokens.weight".into(),
        "output_norm.weight" => "model.norm.weight".into(),
        "output.weight" => "lm_head.weight".into(),
        _ => {
            let rest = name.strip_prefix("blk.")?;
            let (layer, part) = rest.split_once('.')?;
            let layer: u64 = layer.parse().ok()?;
            let (module, suffix) = part.rsplit_once('.')?;
            let hf = match module {
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return None,
            };
            format!("model.layers.{layer}.{hf}.{suffix}")
        }
    })
}

/// The model config of a llama-architecture GGUF file.
pub fn llama_config(file: &GgufFile) -> Result<ModelConfig> {
    let arch = file
        .get("general.architecture")
        .and_then(GgufValue::as_str)
        .ok_or_else(|| file.field_error("general.architecture", "missing"))?;
    if arch != "llama" {
        return Err(file.field_error(
            "general.architecture",
            format!("\"{arch}\" is not supported (only llama)"),
        ));
    }
    let key = |k: &str| format!("llama.{k}");
    let hidden = file.size(&key("embedding_length"))?;
    let heads = file.size(&key("attention.head_count"))?;
    let kv_heads = file
        .opt_size(&key("attention.head_count_kv"))?
        .unwrap_or(heads);
    let tokens = match file.get("tokenizer.ggml.tokens") {
        None => None,
        Some(GgufValue::Array(t)) => Some(t.len() as i64),
        Some(_) => {
            return Err(file.field_error("tokenizer.ggml.tokens", "expected an array of strings"));
        }
    };
    let vocab = match (file.opt_size(&key("vocab_size"))?, tokens) {
        (Some(vocab), Some(tokens)) if vocab != tokens => {
            return Err(file.field_error(
                &key("vocab_size"),
                format!("{vocab}, but tokenizer.ggml.tokens holds {tokens} tokens"),
            ));
        }
        (Some(vocab), _) => vocab,
        (None, Some(tokens)) => tokens,
        (None, None) => {
            return Err(
                file.field_error(&key("vocab_size"), "missing, and no tokenizer.ggml.tokens")
            );
        }
    };
    let head_dim = match file.opt_size(&key("attention.key_length"))? {
        Some(d) => d,
        None if heads < 1 => {
            return Err(file.field_error(
                &key("attention.head_count"),
                format!("{heads} must be a positive integer"),
            ));
        }
        None if hidden % heads != 0 => {
            return Err(file.field_error(
                &key("attention.head_count"),
                format!("{heads} does not divide llama.embedding_length = {hidden}"),
            ));
        }
        None => hidden / heads,
    };
    if let Some(value_length) = file.opt_size(&key("attention.value_length"))?
        && value_length != head_dim
    {
        return Err(file.field_error(
            &key("attention.value_length"),
            format!("{value_length} differs from the key length {head_dim} (not supported)"),
        ));
    }
    let rope_scaling = match file
        .get(&key("rope.scaling.type"))
        .and_then(GgufValue::as_str)
    {
        None | Some("none") => RopeScaling::None,
        Some("linear") => RopeScaling::Linear {
            factor: file
                .opt_number(&key("rope.scaling.factor"))?
                .ok_or_else(|| file.field_error(&key("rope.scaling.factor"), "missing"))?,
        },
        Some(other) => {
            return Err(file.field_error(
                &key("rope.scaling.type"),
                format!("\"{other}\" is not supported (none, linear)"),
            ));
        }
    };
    if file.tensors.iter().any(|t| t.name == "rope_freqs.weight") {
        return Err(Error::Tensor {
            source_name: file.path.display().to_string(),
            tensor: "rope_freqs.weight".into(),
            message: "per-frequency rope factors (Llama 3.1 scaling in GGUF) are not supported"
                .into(),
        });
    }
    let token_id = |k: &str| {
        file.get(k)
            .and_then(GgufValue::as_u64)
            .and_then(|v| i64::try_from(v).ok())
    };
    let config = LlamaConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: file.size(&key("feed_forward_length"))?,
        num_hidden_layers: file.size(&key("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        rms_norm_eps: file
            .opt_number(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5),
        rope_theta: file.opt_number(&key("rope.freq_base"))?.unwrap_or(10000.0),
        rope_scaling,
        max_position_embeddings: file.size(&key("context_length"))?,
        tie_word_embeddings: !file.tensors.iter().any(|t| t.name == "output.weight"),
        attention_bias: file.tensors.iter().any(|t| t.name == "blk.0.attn_q.bias"),
        mlp_bias: false,
    };
    validate::check_config(file, &config)?;
    Ok(ModelConfig::new(
        ArchConfig::Llama(config),
        token_id("tokenizer.ggml.bos_token_id"),
        token_id("tokenizer.ggml.eos_token_id")
            .into_iter()
            .collect(),
        token_id("tokenizer.ggml.padding_token_id"),
    ))
}

/// Every tensor of a llama GGUF file under transformers' names, dequantised to f32, with the
/// query/key rows back in transformers' order.
pub fn llama_tensors(file: &GgufFile, config: &LlamaConfig) -> Result<Vec<(String, Tensor)>> {
    validate::check_config(file, config)?;
    validate::check_llama_tensors(file, config)?;
    let mut out = Vec::with_capacity(file.tensors.len());
    for tensor in &file.tensors {
        let Some(name) = hf_name(&tensor.name) else {
            return Err(Error::Tensor {
                source_name: file.path.display().to_string(),
                tensor: tensor.name.clone(),
                message: "not a llama tensor hone knows how to map".into(),
            });
        };
        let mut value = file.dequantize(tensor)?;
        if tensor.name.ends_with("attn_q.weight") || tensor.name.ends_with("attn_q.bias") {
            value = unpermute_rows(&value, config.num_attention_heads)?;
        } else if tensor.name.ends_with("attn_k.weight") || tensor.name.ends_with("attn_k.bias") {
            value = unpermute_rows(&value, config.num_key_value_heads)?;
        }
        out.push((name, value));
    }
    Ok(out)
}

fn strings(file: &GgufFile, key: &str) -> Result<Vec<String>> {
    match file.get(key) {
        Some(GgufValue::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| file.field_error(key, "expected an array of strings"))
            })
            .collect(),
        Some(_) => Err(file.field_error(key, "expected an array of strings")),
        None => Err(file.field_error(key, "missing")),
    }
}

/// The pre-tokenizer of llama.cpp's `tokenizer.ggml.pre` in tokenizers' JSON form.
fn pre_tokenizer(file: &GgufFile) -> Result<Value> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let pre = file
        .get("tokenizer.ggml.pre")
        .and_then(GgufValue::as_str)
        .unwrap_or("default");
    Ok(match pre {
        "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => byte_level(true),
        // llama.cpp: each digit alone, then GPT-2's expression.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true),
            ]})
        }
        "llama3" | "llama-v3" | "llama-bpe" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            byte_level(false),
        ]}),
        other => {
            return Err(file.field_error(
                "tokenizer.ggml.pre",
                format!("pre-tokenizer \"{other}\" is not supported (gpt2, smollm and its kin, llama-bpe)"),
            ));
        }
    })
}

/// tokenizer.json and tokenizer_config.json rebuilt from a GGUF file's BPE tokenizer
/// (`tokenizer.ggml.model = gpt2`: byte-level BPE).
pub fn tokenizer(file: &GgufFile) -> Result<Tokenizer> {
    let model = file
        .get("tokenizer.ggml.model")
        .and_then(GgufValue::as_str)
        .ok_or_else(|| file.field_error("tokenizer.ggml.model", "missing"))?;
    if model != "gpt2" {
        return Err(file.field_error(
            "tokenizer.ggml.model",
            format!("\"{model}\" is not supported (only gpt2, byte-level BPE)"),
        ));
    }
    let tokens = strings(file, "tokenizer.ggml.tokens")?;
    let merges = strings(file, "tokenizer.ggml.merges")?;
    let types: Vec<u64> = match file.get("tokenizer.ggml.token_type") {
        Some(GgufValue::Array(items)) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.clone(), json!(id));
        // 3: control (special), 4: user-defined (added, not special).
        let kind = types.get(id).copied().unwrap_or(1);
        if kind == 3 || kind == 4 {
            added.push(
                json!({"id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": kind == 4, "special": kind == 3}),
            );
        }
    }
    let token_of = |key: &str| -> Option<String> {
        let id = file.get(key)?.as_u64()? as usize;
        tokens.get(id).cloned()
    };
    let bos = token_of("tokenizer.ggml.bos_token_id");
    let add_bos = matches!(
        file.get("tokenizer.ggml.add_bos_token"),
        Some(GgufValue::Bool(true))
    );
    let post_processor = match (&bos, add_bos) {
        (Some(bos), true) => {
            let id = file.require_u64("tokenizer.ggml.bos_token_id")?;
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos.as_str(): {"id": bos, "ids": [id], "tokens": [bos]}}})
        }
        _ => {
            json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})
        }
    };
    let tokenizer_json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(file)?,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges},
    });
    let mut config = Map::new();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    config.insert("add_bos_token".into(), json!(add_bos));
    for (name, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(token) = token_of(key) {
            config.insert(name.into(), json!(token));
        }
    }
    if let Some(n) = file.get("llama.context_length").and_then(GgufValue::as_u64) {
        config.insert("model_max_length".into(), json!(n));
    }
    let chat_template = file
        .get("tokenizer.chat_template")
        .and_then(GgufValue::as_str)
        .map(str::to_owned);
    let text = serde_json::to_string(&tokenizer_json)
        .map_err(|e| Error::Tokenizer(format!("serialising the rebuilt tokenizer: {e}")))?;
    Tokenizer::from_json(&file.path, &text, config, chat_template)
}

/// `hone convert gguf`: a llama GGUF file as a Hugging Face checkpoint folder at `out_dir`
/// (f32 weights), written atomically. Returns the config.
/// `hone convert gguf`: the GGUF file as a Hugging Face checkpoint in the folder `out_dir` (see
/// [`write_into_folder`] for `force`).
pub fn convert_to_hf(gguf: &Path, out_dir: &Path, force: bool) -> Result<ModelConfig> {
    let file = GgufFile::read(gguf)?;
    let config = llama_config(&file)?;
    let ArchConfig::Llama(llama) = &config.arch else {
        unreachable!("llama_config builds a llama config")
    };
    // Every check before the work: the tokenizer is rebuilt, then the tensors are validated
    // whole and only then dequantised.
    let tokenizer = tokenizer(&file)?;
    let tensors = llama_tensors(&file, llama)?;
    let generation = GenerationDefaults::from_config(&config);
    write_into_folder(out_dir, force, |dir| {
        write_checkpoint_files(dir, &config, &tensors, &generation, Some(&tokenizer))
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float64 dequantisation written from the block layouts, for the kernels above.
    fn reference(kind: GgmlType, bytes: &[u8]) -> Vec<f64> {
        let h = |b: &[u8]| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64();
        let mut out = Vec::new();
        match kind {
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let size = if kind == GgmlType::Q4_0 { 18 } else { 20 };
                for block in bytes.chunks(size) {
                    let d = h(&block[0..2]);
                    let (m, qs) = if kind == GgmlType::Q4_0 {
                        (None, &block[2..])
                    } else {
                        (Some(h(&block[2..4])), &block[4..])
                    };
                    for j in 0..32 {
                        let nibble = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 } as f64;
                        out.push(match m {
                            None => (nibble - 8.0) * d,
                            Some(m) => nibble * d + m,
                        });
                    }
                }
            }
            GgmlType::Q8_0 => {
                for block in bytes.chunks(34) {
                    let d = h(&block[0..2]);
                    out.extend(block[2..].iter().map(|&q| (q as i8) as f64 * d));
                }
            }
            _ => unreachable!(),
        }
        out
    }

    fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn quantised_blocks_match_the_reference() {
        for (kind, size) in [
            (GgmlType::Q4_0, 18),
            (GgmlType::Q4_1, 20),
            (GgmlType::Q8_0, 34),
        ] {
            let mut bytes = pseudo_random_bytes(size * 5, size as u64);
            for block in bytes.chunks_mut(size) {
                // Finite scales: f16 0.0123 and -0.5.
                block[0..2].copy_from_slice(&half::f16::from_f32(0.0123).to_bits().to_le_bytes());
                if kind == GgmlType::Q4_1 {
                    block[2..4].copy_from_slice(&half::f16::from_f32(-0.5).to_bits().to_le_bytes());
                }
            }
            let got = dequantize_blocks(kind, &bytes, 160);
            let want = reference(kind, &bytes);
            assert_eq!(got.len(), 160);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{kind:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp's permute: reshape(n, 2, rows/n/2, in).swapaxes(1, 2).
        let heads = 3;
        let w = Tensor::arange(12 * 5, (tch::Kind::Float, tch::Device::Cpu)).view([12, 5]);
        let permuted = w
            .reshape([heads, 2, 2, 5])
            .transpose(1, 2)
            .contiguous()
            .reshape([12, 5]);
        assert!(!permuted.equal(&w));
        assert!(unpermute_rows(&permuted, heads).unwrap().equal(&w));
    }

    #[test]
    fn tensor_names_map_to_transformers() {
        assert_eq!(
            hf_name("blk.12.attn_output.weight").unwrap(),
            "model.layers.12.self_attn.o_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_gate.weight").unwrap(),
            "model.layers.0.mlp.gate_proj.weight"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert!(hf_name("blk.x.attn_q.weight").is_none());
    }

    fn gguf_string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// A GGUF v3 file: string metadata, then 1-D tensors `(name, type id, elements)` whose data
    /// (zeros, `data_bytes` of it) follows the 32-byte-aligned header.
    fn gguf_bytes(
        version: u32,
        metadata: &[(&str, &str)],
        tensors: &[(&str, u32, u64)],
        data_bytes: usize,
    ) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(version.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            gguf_string(&mut out, key);
            out.extend(8u32.to_le_bytes());
            gguf_string(&mut out, value);
        }
        for (name, kind, numel) in tensors {
            gguf_string(&mut out, name);
            out.extend(1u32.to_le_bytes());
            out.extend(numel.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(0u64.to_le_bytes());
        }
        out.resize(out.len().div_ceil(32) * 32 + data_bytes, 0);
        out
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("hone-gguf-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.gguf");
        let read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            GgufFile::read(&path)
        };
        let err = |bytes: &[u8]| read(bytes).err().unwrap().to_string();

        let e = err(b"GGML\x03\0\0\0");
        assert!(e.contains("m.gguf") && e.contains("no GGUF magic"), "{e}");
        let e = err(&gguf_bytes(1, &[], &[], 0));
        assert!(e.contains("GGUF version 1"), "{e}");
        let whole = gguf_bytes(3, &[("general.architecture", "llama")], &[], 0);
        let e = err(&whole[..30]);
        assert!(e.contains("truncated"), "{e}");
        let e = err(&gguf_bytes(3, &[], &[("blk.0.attn_q.weight", 12, 256)], 0));
        assert!(
            e.contains("blk.0.attn_q.weight") && e.contains("GGML type 12 is not supported"),
            "{e}"
        );

        let file = read(&gguf_bytes(3, &[("general.architecture", "gpt2")], &[], 0)).unwrap();
        let e = llama_config(&file).err().unwrap().to_string();
        assert!(
            e.contains("general.architecture") && e.contains("\"gpt2\" is not supported"),
            "{e}"
        );
        let file = read(&gguf_bytes(3, &[("general.architecture", "llama")], &[], 0)).unwrap();
        let e = llama_config(&file).err().unwrap().to_string();
        assert!(
            e.contains("llama.embedding_length") && e.contains("missing"),
            "{e}"
        );

        // 64 Q8_0 elements need two 34-byte blocks; the file holds one (found on reading the
        // tensor table, before any tensor is dequantised).
        let e = err(&gguf_bytes(3, &[], &[("output.weight", 8, 64)], 34));
        assert!(
            e.contains("output.weight") && e.contains("beyond the file"),
            "{e}"
        );
        let e = err(&gguf_bytes(3, &[], &[("output.weight", 8, 40)], 68));
        assert!(e.contains("not a whole number of 32-element blocks"), "{e}");
        let file = read(&gguf_bytes(3, &[], &[("output.weight", 8, 64)], 68)).unwrap();
        assert_eq!(file.dequantize(&file.tensors[0]).unwrap().size(), [64]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
