//! Tokenizers: `tokenizer.json` through the `tokenizers` crate, special tokens and the chat
//! template from `tokenizer_config.json` (or transformers 5's `chat_template.jinja`), rendered
//! with minijinja as transformers renders it with jinja2.

use std::path::Path;

use serde_json::{Map, Value};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::write_json;
use crate::config::read_json_object;
use crate::error::{Error, Result, malformed};

pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub const CHAT_TEMPLATE: &str = "chat_template.jinja";

/// One chat turn.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    config: Map<String, Value>,
    chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.vocab_size())
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

/// A special token of tokenizer_config.json: a string or `{"content": ...}`.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

impl Tokenizer {
    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` and
    /// `chat_template.jinja` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(TOKENIZER);
        let text = std::fs::read_to_string(&path).map_err(crate::error::io_error(&path))?;
        let config_path = dir.join(TOKENIZER_CONFIG);
        let config = if config_path.is_file() {
            read_json_object(&config_path)?
        } else {
            Map::new()
        };
        let template_path = dir.join(CHAT_TEMPLATE);
        let chat_template = if template_path.is_file() {
            Some(
                std::fs::read_to_string(&template_path)
                    .map_err(crate::error::io_error(&template_path))?,
            )
        } else {
            match config.get("chat_template") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                // A list of named templates: the "default" one.
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t["name"] == "default")
                    .and_then(|t| t["template"].as_str())
                    .map(str::to_owned),
                Some(other) => {
                    return Err(malformed(
                        &config_path,
                        format!("chat_template is neither a string nor a list: {other}"),
                    ));
                }
            }
        };
        Self::from_json(&path, &text, config, chat_template)
    }

    /// A tokenizer from the text of a tokenizer.json (`path` names it in errors).
    pub fn from_json(
        path: &Path,
        text: &str,
        config: Map<String, Value>,
        chat_template: Option<String>,
    ) -> Result<Self> {
        // Parsed as a JSON value first: tokenizers 0.22.2 panics (decoders/mod.rs:90,
        // `expect("Helper")`) when the text ends or breaks inside `decoder`, and a value can no
        // longer fail there.
        let value: Value = serde_json::from_str(text)
            .map_err(|e| malformed(path, format!("invalid JSON: {e}")))?;
        let inner: tokenizers::Tokenizer = serde_json::from_value(value)
            .map_err(|e| malformed(path, format!("not a valid tokenizer: {e}")))?;
        Ok(Self {
            inner,
            config,
            chat_template,
        })
    }

    /// Writes tokenizer.json and tokenizer_config.json (with the chat template inside, which
    /// transformers 4 and 5 both read) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = self
            .inner
            .to_string(false)
            .map_err(|e| Error::Tokenizer(format!("cannot serialise: {e}")))?;
        crate::checkpoint::write_file(&dir.join(TOKENIZER), text.as_bytes())?;
        let mut config = self.config.clone();
        if let Some(template) = &self.chat_template {
            config.insert("chat_template".into(), Value::String(template.clone()));
        }
        config
            .entry("tokenizer_class")
            .or_insert_with(|| Value::String("PreTrainedTokenizerFast".into()));
        write_json(&dir.join(TOKENIZER_CONFIG), &Value::Object(config))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(i64::from)
    }

    pub fn special_token(&self, key: &str) -> Option<String> {
        token_text(self.config.get(key))
    }

    /// The id of tokenizer_config.json's `key` token (`eos_token`, `pad_token`, ...).
    pub fn special_token_id(&self, key: &str) -> Option<i64> {
        self.special_token(key).and_then(|t| self.token_to_id(&t))
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (BOS for Llama 3
    /// style tokenizers), as transformers' `tokenizer(text)` does.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<i64>> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("encoding {text:?}: {e}")))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    pub fn decode(&self, ids: &[i64], skip_special_tokens: bool) -> Result<String> {
        let ids: Vec<u32> = ids
            .iter()
            .map(|&id| {
                u32::try_from(id)
                    .map_err(|_| Error::Tokenizer(format!("token id {id} is negative")))
            })
            .collect::<Result<_>>()?;
        self.inner
            .decode(&ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("decoding: {e}")))
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// The chat template applied to `messages`, as transformers' `apply_chat_template(...,
    /// tokenize=False)`.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            Error::Tokenizer(format!(
                "no chat template ({TOKENIZER_CONFIG} has no chat_template and there is no {CHAT_TEMPLATE})"
            ))
        })?;
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        env.add_template("chat", template)
            .map_err(|e| Error::Tokenizer(format!("chat template does not parse: {e}")))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.special_token("bos_token").unwrap_or_default(),
            eos_token => self.special_token("eos_token").unwrap_or_default(),
            pad_token => self.special_token("pad_token").unwrap_or_default(),
            unk_token => self.special_token("unk_token").unwrap_or_default(),
        };
        env.get_template("chat")
            .and_then(|t| t.render(ctx))
            .map_err(|e| Error::Tokenizer(format!("chat template: {e}")))
    }

    /// Token ids of a user prompt in the chat template, ready for the assistant's reply (no
    /// post-processor: the template writes its own special tokens, as transformers does).
    pub fn encode_chat(&self, prompt: &str) -> Result<Vec<i64>> {
        let text = self.apply_chat_template(&[ChatMessage::user(prompt)], true)?;
        self.encode(&text, false)
    }
}

/// Left-pads token sequences into `ids [B, T]` (int64, `pad` in the gaps) and `mask [B, T]`
/// (int64, 1 at real tokens). Every sequence needs a token: an empty row would be all padding,
/// and a model reading it would continue from nothing.
pub fn left_pad(sequences: &[Vec<i64>], pad: i64, device: Device) -> Result<(Tensor, Tensor)> {
    let t = sequences.iter().map(Vec::len).max().unwrap_or(0);
    if sequences.is_empty() {
        return Err(Error::Parameter {
            name: "sequences",
            value: "0 sequences".into(),
            expected: "at least one sequence".into(),
        });
    }
    if let Some(index) = sequences.iter().position(Vec::is_empty) {
        return Err(Error::Row {
            what: "sequence",
            index,
            message: format!(
                "has no tokens (of a batch of {}; every sequence needs at least one)",
                sequences.len()
            ),
        });
    }
    let mut ids = Vec::with_capacity(sequences.len() * t);
    let mut mask = Vec::with_capacity(sequences.len() * t);
    for seq in sequences {
        let gap = t - seq.len();
        ids.extend(std::iter::repeat_n(pad, gap).chain(seq.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, gap).chain(std::iter::repeat_n(1, seq.len())));
    }
    let shape = [sequences.len() as i64, t as i64];
    Ok((
        Tensor::from_slice(&ids).view(shape).to_device(device),
        Tensor::from_slice(&mask)
            .view(shape)
            .to_kind(Kind::Int64)
            .to_device(device),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_pad_rejects_an_empty_row_naming_it() {
        let (ids, mask) = left_pad(&[vec![5, 6], vec![7]], 0, Device::Cpu).unwrap();
        assert_eq!(Vec::<i64>::try_from(ids.view([-1])).unwrap(), [5, 6, 0, 7]);
        assert_eq!(Vec::<i64>::try_from(mask.view([-1])).unwrap(), [1, 1, 0, 1]);
        let e = left_pad(&[vec![5, 6], vec![]], 0, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sequence 1: has no tokens (of a batch of 2"),
            "{e}"
        );
        let e = left_pad(&[vec![]], 0, Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("sequence 0: has no tokens"), "{e}");
        assert!(left_pad(&[], 0, Device::Cpu).is_err());
    }
}
