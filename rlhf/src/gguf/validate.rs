//! Checks of a GGUF file before anything is dequantised or converted, as llama.cpp's loader
//! makes them: the tensor table (unique names, element counts that fit, whole quantisation
//! blocks per row, data offsets aligned, in order and inside the file) and, for a llama model,
//! the config (GGUF keys named in errors) and every tensor's presence, shape and type.

use std::collections::HashSet;
use std::path::Path;

use super::{GgmlType, GgufFile, GgufTensor};
use crate::config::{Invalid, LlamaConfig, check_llama};
use crate::error::{Error, Result, malformed};

/// The GGUF key of a Hugging Face llama config field.
pub(super) fn gguf_key(field: &'static str) -> &'static str {
    match field {
        "vocab_size" => "llama.vocab_size",
        "hidden_size" => "llama.embedding_length",
        "intermediate_size" => "llama.feed_forward_length",
        "num_hidden_layers" => "llama.block_count",
        "num_attention_heads" => "llama.attention.head_count",
        "num_key_value_heads" => "llama.attention.head_count_kv",
        "head_dim" => "llama.attention.key_length",
        "rms_norm_eps" => "llama.attention.layer_norm_rms_epsilon",
        "rope_theta" => "llama.rope.freq_base",
        "rope_scaling" => "llama.rope.scaling.factor",
        "max_position_embeddings" => "llama.context_length",
        other => other,
    }
}

/// The config read from a GGUF file against what hone can run, errors naming GGUF keys.
pub(super) fn check_config(file: &GgufFile, config: &LlamaConfig) -> Result<()> {
    check_llama(config, gguf_key)
        .map_err(|Invalid { field, message }| file.field_error(field, message))
}

fn tensor_error(path: &Path, tensor: &str, message: impl ToString) -> Error {
    Error::Tensor {
        source_name: path.display().to_string(),
        tensor: tensor.to_owned(),
        message: message.to_string(),
    }
}

/// Bytes of a tensor's data: its dimensions must multiply without overflow and each row (the
/// fastest dimension) hold whole quantisation blocks.
pub(super) fn data_bytes(path: &Path, tensor: &GgufTensor) -> Result<usize> {
    let error = |message: String| tensor_error(path, &tensor.name, message);
    let numel = tensor
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            error(format!(
                "dimensions {:?} overflow an element count",
                tensor.dims
            ))
        })?;
    let (block, block_bytes) = tensor.kind.block();
    let row = tensor.dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block as u64) {
        return Err(error(format!(
            "rows of {row} elements: not a whole number of {block}-element blocks of {:?}",
            tensor.kind
        )));
    }
    (numel / block).checked_mul(block_bytes).ok_or_else(|| {
        error(format!(
            "dimensions {:?} overflow a byte count",
            tensor.dims
        ))
    })
}

/// The tensor table against the data section of `data_len` bytes: names unique, offsets
/// multiples of `alignment`, each tensor starting where the previous one ends (padded to the
/// alignment, as llama.cpp requires) and ending inside the file.
pub(super) fn check_layout(
    path: &Path,
    tensors: &[GgufTensor],
    alignment: u64,
    data_len: usize,
) -> Result<()> {
    let mut names = HashSet::with_capacity(tensors.len());
    let mut expected = 0u64;
    let mut previous: Option<(&GgufTensor, usize)> = None;
    for tensor in tensors {
        let error = |message: String| tensor_error(path, &tensor.name, message);
        if !names.insert(tensor.name.as_str()) {
            return Err(error(
                "appears twice in the tensor table (duplicate name)".into(),
            ));
        }
        let bytes = data_bytes(path, tensor)?;
        if !tensor.offset.is_multiple_of(alignment) {
            return Err(error(format!(
                "data offset {} is not a multiple of general.alignment = {alignment}",
                tensor.offset
            )));
        }
        if tensor.offset != expected {
            let after = match previous {
                None => "the first tensor starts the data section".to_owned(),
                Some((p, p_bytes)) => format!(
                    "the previous tensor `{}` ({:?}, dims {:?}) holds {p_bytes} bytes",
                    p.name, p.kind, p.dims
                ),
            };
            return Err(error(format!(
                "data offset {}, expected {expected}: {after} (a wrong type or shape, or a \
                 corrupt offset)",
                tensor.offset
            )));
        }
        let end = tensor
            .offset
            .checked_add(bytes as u64)
            .filter(|&end| end <= data_len as u64)
            .ok_or_else(|| {
                error(format!(
                    "data [{}, +{bytes}) lies beyond the file ({data_len} bytes of tensor data)",
                    tensor.offset
                ))
            })?;
        expected = end.div_ceil(alignment) * alignment;
        previous = Some((tensor, bytes));
    }
    Ok(())
}

/// What a llama GGUF tensor should be: its row-major shape and whether it is a vector (a norm
/// or a bias, which llama.cpp never quantises).
struct Expected {
    shape: Vec<i64>,
    vector: bool,
    what: &'static str,
}

/// The expected shape of `name` in a llama model of `config` (`biases`: the file has attention
/// biases), or why the name does not belong.
fn expected(name: &str, c: &LlamaConfig, biases: bool) -> std::result::Result<Expected, String> {
    let (h, ff, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    let q = c.num_attention_heads * c.head_dim;
    let kv = c.num_key_value_heads * c.head_dim;
    let matrix = |shape: [i64; 2], what| {
        Ok(Expected {
            shape: shape.to_vec(),
            vector: false,
            what,
        })
    };
    let vector = |n: i64, what| {
        Ok(Expected {
            shape: vec![n],
            vector: true,
            what,
        })
    };
    match name {
        "token_embd.weight" => return matrix([v, h], "[vocab, hidden]"),
        "output.weight" => return matrix([v, h], "[vocab, hidden]"),
        "output_norm.weight" => return vector(h, "[hidden]"),
        _ => {}
    }
    let unknown = || "not a llama tensor hone knows how to map".to_owned();
    let rest = name.strip_prefix("blk.").ok_or_else(unknown)?;
    let (layer, part) = rest.split_once('.').ok_or_else(unknown)?;
    let layer: i64 = layer.parse().map_err(|_| unknown())?;
    if layer >= c.num_hidden_layers {
        return Err(format!(
            "layer {layer} is beyond llama.block_count = {}",
            c.num_hidden_layers
        ));
    }
    let no_bias = || {
        "an attention bias, but blk.0.attn_q.bias is absent (every layer has the four attention \
         biases or none does)"
            .to_owned()
    };
    match part {
        "attn_norm.weight" | "ffn_norm.weight" => vector(h, "[hidden]"),
        "attn_q.weight" => matrix([q, h], "[heads x head_dim, hidden]"),
        "attn_k.weight" | "attn_v.weight" => matrix([kv, h], "[kv_heads x head_dim, hidden]"),
        "attn_output.weight" => matrix([h, q], "[hidden, heads x head_dim]"),
        "ffn_gate.weight" | "ffn_up.weight" => matrix([ff, h], "[feed_forward, hidden]"),
        "ffn_down.weight" => matrix([h, ff], "[hidden, feed_forward]"),
        "attn_q.bias" if biases => vector(q, "[heads x head_dim]"),
        "attn_k.bias" | "attn_v.bias" if biases => vector(kv, "[kv_heads x head_dim]"),
        "attn_output.bias" if biases => vector(h, "[hidden]"),
        "attn_q.bias" | "attn_k.bias" | "attn_v.bias" | "attn_output.bias" => Err(no_bias()),
        _ => Err(unknown()),
    }
}

/// Every tensor of a llama file against `config`: each name known, each shape the one the
/// config implies, norms and biases unquantised, and every tensor the model needs present.
pub(super) fn check_llama_tensors(file: &GgufFile, config: &LlamaConfig) -> Result<()> {
    let path = &file.path;
    if file.tensors.is_empty() {
        return Err(malformed(
            path,
            "the file has no tensors (a llama model needs token_embd.weight, blk.N.*, \
             output_norm.weight)",
        ));
    }
    let biases = config.attention_bias;
    let mut present = HashSet::with_capacity(file.tensors.len());
    for tensor in &file.tensors {
        let error = |message: String| tensor_error(path, &tensor.name, message);
        let want = expected(&tensor.name, config, biases).map_err(error)?;
        let shape = tensor.shape();
        if shape != want.shape {
            return Err(error(format!(
                "has shape {shape:?}, the config implies {:?} {} (llama.vocab_size {}, \
                 llama.embedding_length {}, llama.feed_forward_length {}, \
                 llama.attention.head_count {} / head_count_kv {} of {})",
                want.shape,
                want.what,
                config.vocab_size,
                config.hidden_size,
                config.intermediate_size,
                config.num_attention_heads,
                config.num_key_value_heads,
                config.head_dim
            )));
        }
        let float = matches!(tensor.kind, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16);
        if want.vector && !float {
            return Err(error(format!(
                "has type {:?}; norm weights and biases must be F32, F16 or BF16 (llama.cpp \
                 never quantises them)",
                tensor.kind
            )));
        }
        present.insert(tensor.name.as_str());
    }
    let layer_parts: &[&str] = &[
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_output.bias",
    ];
    let layer_parts = if biases {
        layer_parts
    } else {
        &layer_parts[..9]
    };
    let layers = (0..config.num_hidden_layers)
        .flat_map(|i| layer_parts.iter().map(move |p| format!("blk.{i}.{p}")));
    let needed = ["token_embd.weight", "output_norm.weight"]
        .into_iter()
        .map(str::to_owned)
        .chain(layers);
    for name in needed {
        if !present.contains(name.as_str()) {
            let want = expected(&name, config, biases).map_err(|m| tensor_error(path, &name, m))?;
            return Err(tensor_error(
                path,
                &name,
                format!("missing (expected shape {:?} {})", want.shape, want.what),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tch::{Device, Kind, Tensor};

    use crate::checkpoint::Checkpoint;
    use crate::config::ModelConfig;
    use crate::gguf::{GgufFile, convert_to_hf, unpermute_rows};

    const F32: u32 = 0;
    const F16: u32 = 1;
    const Q8_0: u32 = 8;

    enum Meta {
        U32(u32),
        F32(f32),
        Str(&'static str),
        Strs(Vec<&'static str>),
    }

    struct Spec {
        name: String,
        /// Row-major (`[out, in]`); written reversed, as GGML orders dimensions.
        shape: Vec<u64>,
        kind: u32,
        /// The offset written in the table (default: where the data is laid out).
        offset: Option<u64>,
        /// The bytes laid out (default: what `shape` and `kind` need).
        stored: Option<usize>,
    }

    impl Spec {
        fn bytes(&self) -> usize {
            let numel = self.shape.iter().product::<u64>() as usize;
            self.stored.unwrap_or(match self.kind {
                F32 => numel * 4,
                F16 => numel * 2,
                Q8_0 => numel / 32 * 34,
                other => panic!("type {other}"),
            })
        }
    }

    /// A valid one-layer llama GGUF file in memory (hidden 32, 4 heads of 8, 2 key/value heads,
    /// MLP 64, four tokens, tied head), which each test corrupts in one way.
    struct Tiny {
        metadata: Vec<(String, Meta)>,
        tensors: Vec<Spec>,
        /// Bytes cut from the end of the file.
        truncate: usize,
    }

    impl Tiny {
        fn new() -> Self {
            let mut tiny = Self {
                metadata: Vec::new(),
                tensors: Vec::new(),
                truncate: 0,
            };
            tiny.set("general.architecture", Meta::Str("llama"));
            for (key, value) in [
                ("llama.embedding_length", 32),
                ("llama.feed_forward_length", 64),
                ("llama.block_count", 1),
                ("llama.attention.head_count", 4),
                ("llama.attention.head_count_kv", 2),
                ("llama.context_length", 64),
                ("tokenizer.ggml.eos_token_id", 3),
            ] {
                tiny.set(key, Meta::U32(value));
            }
            tiny.set("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5));
            tiny.set("llama.rope.freq_base", Meta::F32(10000.0));
            tiny.set("tokenizer.ggml.model", Meta::Str("gpt2"));
            tiny.set(
                "tokenizer.ggml.tokens",
                Meta::Strs(vec!["a", "b", "c", "d"]),
            );
            tiny.set("tokenizer.ggml.merges", Meta::Strs(Vec::new()));
            for (name, shape) in [
                ("token_embd.weight", &[4, 32][..]),
                ("blk.0.attn_norm.weight", &[32]),
                ("blk.0.attn_q.weight", &[32, 32]),
                ("blk.0.attn_k.weight", &[16, 32]),
                ("blk.0.attn_v.weight", &[16, 32]),
                ("blk.0.attn_output.weight", &[32, 32]),
                ("blk.0.ffn_norm.weight", &[32]),
                ("blk.0.ffn_gate.weight", &[64, 32]),
                ("blk.0.ffn_up.weight", &[64, 32]),
                ("blk.0.ffn_down.weight", &[32, 64]),
                ("output_norm.weight", &[32]),
            ] {
                tiny.tensors.push(Spec {
                    name: name.into(),
                    shape: shape.to_vec(),
                    kind: F32,
                    offset: None,
                    stored: None,
                });
            }
            tiny
        }

        fn set(&mut self, key: &str, value: Meta) {
            self.metadata.retain(|(k, _)| k != key);
            self.metadata.push((key.into(), value));
        }

        fn tensor(&mut self, name: &str) -> &mut Spec {
            self.tensors
                .iter_mut()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("no tensor {name}"))
        }

        fn bytes(&self) -> Vec<u8> {
            fn string(out: &mut Vec<u8>, s: &str) {
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s.as_bytes());
            }
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend((self.metadata.len() as u64).to_le_bytes());
            for (key, value) in &self.metadata {
                string(&mut out, key);
                match value {
                    Meta::U32(v) => {
                        out.extend(4u32.to_le_bytes());
                        out.extend(v.to_le_bytes());
                    }
                    Meta::F32(v) => {
                        out.extend(6u32.to_le_bytes());
                        out.extend(v.to_le_bytes());
                    }
                    Meta::Str(s) => {
                        out.extend(8u32.to_le_bytes());
                        string(&mut out, s);
                    }
                    Meta::Strs(items) => {
                        out.extend(9u32.to_le_bytes());
                        out.extend(8u32.to_le_bytes());
                        out.extend((items.len() as u64).to_le_bytes());
                        for s in items {
                            string(&mut out, s);
                        }
                    }
                }
            }
            let mut data = Vec::new();
            for tensor in &self.tensors {
                string(&mut out, &tensor.name);
                out.extend((tensor.shape.len() as u32).to_le_bytes());
                for d in tensor.shape.iter().rev() {
                    out.extend(d.to_le_bytes());
                }
                out.extend(tensor.kind.to_le_bytes());
                let at = data.len() as u64;
                out.extend(tensor.offset.unwrap_or(at).to_le_bytes());
                // Small f32 values (zeros for other types), then padding to 32 bytes.
                let n = tensor.bytes();
                if tensor.kind == F32 {
                    data.extend(
                        (0..n / 4).flat_map(|i| (((i as f32) * 0.37).sin() * 0.1).to_le_bytes()),
                    );
                } else {
                    data.resize(data.len() + n, 0);
                }
                data.resize(data.len().div_ceil(32) * 32, 0);
            }
            out.resize(out.len().div_ceil(32) * 32, 0);
            out.extend(data);
            out.truncate(out.len() - self.truncate);
            out
        }
    }

    fn work_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hone-gguf-check-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `hone convert gguf` on the file; the output folder it would write.
    fn convert(test: &str, tiny: &Tiny) -> (crate::Result<ModelConfig>, PathBuf) {
        let dir = work_dir(test);
        let file = dir.join("model.gguf");
        std::fs::write(&file, tiny.bytes()).unwrap();
        let out = dir.join("hf");
        (convert_to_hf(&file, &out, false), out)
    }

    /// Converting the file fails, with an error that names each of `words`, and writes nothing.
    fn rejected(test: &str, tiny: &Tiny, words: &[&str]) {
        let (result, out) = convert(test, tiny);
        let err = match result {
            Ok(_) => panic!("{test}: the corrupt file was converted"),
            Err(e) => e.to_string(),
        };
        for word in words {
            assert!(err.contains(word), "{test}: expected {word:?} in: {err}");
        }
        assert!(!out.exists(), "{test}: wrote {}", out.display());
        let _ = std::fs::remove_dir_all(out.parent().unwrap());
    }

    #[test]
    fn the_tiny_file_converts_and_loads() {
        let mut tiny = Tiny::new();
        // A quantised matrix is fine (rows of 32 elements are whole Q8_0 blocks).
        tiny.tensor("blk.0.ffn_up.weight").kind = Q8_0;
        let (config, out) = convert("valid", &tiny);
        let config = config.unwrap();
        assert_eq!((config.num_layers(), config.vocab_size()), (1, 4));
        let ckpt = Checkpoint::load(&out, Device::Cpu, Kind::Float).unwrap();
        let ids = Tensor::from_slice(&[0i64, 1, 2, 3]).view([1, 4]);
        let logits = ckpt.model.forward(&ids, &ids.ones_like()).unwrap();
        assert_eq!(logits.size(), [1, 4, 4]);
        let _ = std::fs::remove_dir_all(out.parent().unwrap());
    }

    #[test]
    fn zero_heads_are_an_error_not_a_division_by_zero() {
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.head_count", Meta::U32(0));
        rejected(
            "heads0",
            &tiny,
            &["`llama.attention.head_count`", "positive"],
        );
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.head_count_kv", Meta::U32(0));
        rejected(
            "kv0",
            &tiny,
            &["`llama.attention.head_count_kv`", "0 must be a positive"],
        );
        let w = Tensor::zeros([8, 4], (Kind::Float, Device::Cpu));
        let e = unpermute_rows(&w, 0).unwrap_err().to_string();
        assert!(e.contains("query/key heads = 0"), "{e}");
        assert!(unpermute_rows(&w, 3).is_err());
    }

    #[test]
    fn kv_heads_must_divide_heads_and_heads_the_hidden_size() {
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.head_count_kv", Meta::U32(3));
        rejected(
            "kv3",
            &tiny,
            &[
                "`llama.attention.head_count_kv`",
                "3 does not divide llama.attention.head_count = 4",
            ],
        );
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.head_count", Meta::U32(5));
        rejected(
            "heads5",
            &tiny,
            &[
                "`llama.attention.head_count`",
                "5 does not divide llama.embedding_length = 32",
            ],
        );
    }

    #[test]
    fn a_file_without_tensors_is_an_error() {
        let mut tiny = Tiny::new();
        tiny.tensors.clear();
        rejected("empty", &tiny, &["no tensors"]);
    }

    #[test]
    fn zero_layers_or_zero_hidden_size_are_errors() {
        let mut tiny = Tiny::new();
        tiny.set("llama.block_count", Meta::U32(0));
        rejected(
            "layers0",
            &tiny,
            &["`llama.block_count`", "0 must be a positive"],
        );
        let mut tiny = Tiny::new();
        tiny.set("llama.embedding_length", Meta::U32(0));
        rejected(
            "hidden0",
            &tiny,
            &["`llama.embedding_length`", "0 must be a positive"],
        );
    }

    #[test]
    fn a_huge_block_count_is_an_error_before_any_allocation() {
        let mut tiny = Tiny::new();
        tiny.set("llama.block_count", Meta::U32(u32::MAX));
        rejected(
            "layers-max",
            &tiny,
            &["`llama.block_count`", "4294967295", "limit of 65536"],
        );
    }

    #[test]
    fn vocab_size_tokens_and_embedding_rows_must_agree() {
        let mut tiny = Tiny::new();
        tiny.set("llama.vocab_size", Meta::U32(5));
        rejected(
            "vocab-key",
            &tiny,
            &[
                "`llama.vocab_size`",
                "5, but tokenizer.ggml.tokens holds 4 tokens",
            ],
        );
        let mut tiny = Tiny::new();
        tiny.tensor("token_embd.weight").shape = vec![5, 32];
        rejected(
            "vocab-rows",
            &tiny,
            &["`token_embd.weight`", "[5, 32]", "[4, 32]"],
        );
        let mut tiny = Tiny::new();
        tiny.tensors.push(Spec {
            name: "output.weight".into(),
            shape: vec![6, 32],
            kind: F32,
            offset: None,
            stored: None,
        });
        rejected(
            "vocab-head",
            &tiny,
            &["`output.weight`", "[6, 32]", "[4, 32]"],
        );
    }

    #[test]
    fn duplicate_tensor_names_are_an_error() {
        let mut tiny = Tiny::new();
        tiny.tensor("blk.0.ffn_up.weight").name = "blk.0.ffn_gate.weight".into();
        rejected("duplicate", &tiny, &["`blk.0.ffn_gate.weight`", "twice"]);
    }

    #[test]
    fn data_offsets_must_be_aligned_in_order_and_inside_the_file() {
        let mut tiny = Tiny::new();
        // The second tensor follows the 4x32 f32 embedding (512 bytes).
        tiny.tensor("blk.0.attn_norm.weight").offset = Some(512 + 4);
        rejected(
            "misaligned",
            &tiny,
            &[
                "`blk.0.attn_norm.weight`",
                "516 is not a multiple of general.alignment = 32",
            ],
        );
        let mut tiny = Tiny::new();
        tiny.tensor("blk.0.attn_norm.weight").offset = Some(0);
        rejected(
            "overlap",
            &tiny,
            &["`blk.0.attn_norm.weight`", "data offset 0, expected 512"],
        );
        let mut tiny = Tiny::new();
        tiny.truncate = 100;
        rejected(
            "truncated",
            &tiny,
            &["`output_norm.weight`", "beyond the file"],
        );
    }

    #[test]
    fn a_tensor_stored_in_another_type_than_declared_is_an_error() {
        // Declared F16, laid out as f32: the next tensor does not start where F16 data ends.
        let mut tiny = Tiny::new();
        let q = tiny.tensor("blk.0.attn_q.weight");
        q.kind = F16;
        q.stored = Some(32 * 32 * 4);
        rejected(
            "f16-as-f32",
            &tiny,
            &[
                "`blk.0.attn_k.weight`",
                "`blk.0.attn_q.weight` (F16",
                "2048 bytes",
            ],
        );
        // A quantised norm: llama.cpp never quantises vectors.
        let mut tiny = Tiny::new();
        tiny.tensor("output_norm.weight").kind = Q8_0;
        rejected(
            "q8-norm",
            &tiny,
            &["`output_norm.weight`", "Q8_0", "F32, F16 or BF16"],
        );
    }

    #[test]
    fn rope_theta_and_eps_must_be_finite_and_positive() {
        let mut tiny = Tiny::new();
        tiny.set("llama.rope.freq_base", Meta::F32(f32::NAN));
        rejected("theta-nan", &tiny, &["`llama.rope.freq_base`", "NaN"]);
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.layer_norm_rms_epsilon", Meta::F32(-1.0));
        rejected(
            "eps-negative",
            &tiny,
            &["`llama.attention.layer_norm_rms_epsilon`", "-1", "positive"],
        );
        let mut tiny = Tiny::new();
        tiny.set("llama.attention.layer_norm_rms_epsilon", Meta::Str("small"));
        rejected(
            "eps-string",
            &tiny,
            &["`llama.attention.layer_norm_rms_epsilon`", "number"],
        );
    }

    #[test]
    fn every_tensor_has_the_shape_the_config_implies() {
        let mut tiny = Tiny::new();
        tiny.tensors.retain(|t| t.name != "blk.0.ffn_down.weight");
        rejected(
            "missing",
            &tiny,
            &["`blk.0.ffn_down.weight`", "missing", "[32, 64]"],
        );
        let mut tiny = Tiny::new();
        tiny.tensor("blk.0.attn_q.weight").shape = vec![16, 32];
        rejected(
            "q-shape",
            &tiny,
            &["`blk.0.attn_q.weight`", "[16, 32]", "[32, 32]"],
        );
        let mut tiny = Tiny::new();
        tiny.tensors.push(Spec {
            name: "blk.1.attn_norm.weight".into(),
            shape: vec![32],
            kind: F32,
            offset: None,
            stored: None,
        });
        rejected(
            "layer1",
            &tiny,
            &["`blk.1.attn_norm.weight`", "beyond llama.block_count = 1"],
        );
    }

    #[test]
    fn overflowing_dimensions_are_an_error_on_reading() {
        let mut tiny = Tiny::new();
        tiny.tensors.push(Spec {
            name: "blk.0.huge".into(),
            shape: vec![1 << 32, 1 << 32, 1 << 32],
            kind: F32,
            offset: None,
            stored: Some(0),
        });
        let e = GgufFile::parse(tiny.bytes(), std::path::Path::new("tiny.gguf"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`blk.0.huge`") && e.contains("overflow"), "{e}");
    }
}
