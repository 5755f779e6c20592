//! A llama-architecture GGUF file as a Hugging Face checkpoint: the config, the tensors under
//! transformers' names and row order, and the tokenizer rebuilt from the metadata.

use std::path::Path;

use serde_json::{Map, Value, json};
use tch::Tensor;

use super::{GgufFile, GgufValue, validate};
use crate::checkpoint::{GenerationDefaults, write_checkpoint_files, write_into_folder};
use crate::config::{ArchConfig, LlamaConfig, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

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
}
