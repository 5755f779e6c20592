//! Hugging Face checkpoint folders: `config.json`, `model.safetensors` (or shards listed in
//! `model.safetensors.index.json`), `generation_config.json`, `tokenizer.json` and
//! `tokenizer_config.json`. Saving writes a complete folder next to the destination and renames
//! it into place, so a reader never sees half a checkpoint.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tch::{Device, Kind, Tensor};

use crate::config::{Fields, ModelConfig, read_json_object};
use crate::error::{Error, Result, io_error, malformed};
use crate::model::{CausalLm, WeightSource};
use crate::safetensors;
use crate::tokenizer::Tokenizer;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
pub const GENERATION_CONFIG: &str = "generation_config.json";

/// Special-token defaults of `generation_config.json` (falling back to config.json's).
#[derive(Clone, Debug, Default)]
pub struct GenerationDefaults {
    pub bos_token_id: Option<i64>,
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
    pub raw: Map<String, Value>,
}

impl GenerationDefaults {
    /// Reads `dir/generation_config.json` when present; config.json's ids fill the gaps.
    pub fn load(dir: &Path, config: &ModelConfig) -> Result<Self> {
        let path = dir.join(GENERATION_CONFIG);
        let raw = if path.is_file() {
            read_json_object(&path)?
        } else {
            Map::new()
        };
        let fields = Fields {
            path: &path,
            map: &raw,
        };
        let eos = fields.token_ids("eos_token_id")?;
        Ok(Self {
            bos_token_id: fields
                .token_ids("bos_token_id")?
                .first()
                .copied()
                .or(config.bos_token_id),
            eos_token_ids: if eos.is_empty() {
                config.eos_token_ids.clone()
            } else {
                eos
            },
            pad_token_id: fields
                .token_ids("pad_token_id")?
                .first()
                .copied()
                .or(config.pad_token_id),
            raw,
        })
    }

    pub fn from_config(config: &ModelConfig) -> Self {
        Self {
            bos_token_id: config.bos_token_id,
            eos_token_ids: config.eos_token_ids.clone(),
            pad_token_id: config.pad_token_id,
            raw: Map::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut map = self.raw.clone();
        let ids = |ids: &[i64]| match ids {
            [] => Value::Null,
            [one] => json!(one),
            many => json!(many),
        };
        map.insert("bos_token_id".into(), ids(self.bos_token_id.as_slice()));
        map.insert("eos_token_id".into(), ids(&self.eos_token_ids));
        map.insert("pad_token_id".into(), ids(self.pad_token_id.as_slice()));
        map.retain(|_, v| !v.is_null());
        Value::Object(map)
    }
}

/// Every weight of the checkpoint in `dir` (single file or shards), on the CPU.
pub fn read_weights(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let single = dir.join(WEIGHTS);
    let index = dir.join(WEIGHTS_INDEX);
    if single.is_file() {
        return Ok(safetensors::read(&single)?.into_iter().collect());
    }
    if !index.is_file() {
        return Err(Error::Io {
            path: single,
            cause: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no weights: neither {WEIGHTS} nor {WEIGHTS_INDEX} exists"),
            ),
        });
    }
    let map = read_json_object(&index)?;
    let Some(Value::Object(weight_map)) = map.get("weight_map") else {
        return Err(malformed(&index, "no `weight_map` object"));
    };
    let mut files: BTreeSet<&str> = BTreeSet::new();
    for (name, file) in weight_map {
        let file = file
            .as_str()
            .ok_or_else(|| malformed(&index, format!("weight_map[{name:?}] is not a file name")))?;
        if file.contains('/') || file.contains("..") {
            return Err(malformed(
                &index,
                format!("shard {file:?} is outside the folder"),
            ));
        }
        files.insert(file);
    }
    let mut tensors = HashMap::new();
    for file in files {
        tensors.extend(safetensors::read(&dir.join(file))?);
    }
    for (name, file) in weight_map {
        if !tensors.contains_key(name) {
            return Err(Error::Tensor {
                source_name: dir.join(file.as_str().unwrap_or("?")).display().to_string(),
                tensor: name.clone(),
                message: format!("listed in {WEIGHTS_INDEX} but absent from the shard"),
            });
        }
    }
    Ok(tensors)
}

/// A checkpoint folder loaded for use: the model, its tokenizer (when the folder has one) and
/// generation defaults.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub model: CausalLm,
    pub tokenizer: Option<Tokenizer>,
    pub generation: GenerationDefaults,
}

impl Checkpoint {
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_owned(),
                cause: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "checkpoint folder not found",
                ),
            });
        }
        let config = ModelConfig::load(dir)?;
        let model = load_model(dir, config.clone(), device, kind)?;
        let tokenizer = if dir.join(crate::tokenizer::TOKENIZER).is_file() {
            Some(Tokenizer::load(dir)?)
        } else {
            None
        };
        let generation = GenerationDefaults::load(dir, &config)?;
        Ok(Self {
            dir: dir.to_owned(),
            model,
            tokenizer,
            generation,
        })
    }

    /// The tokenizer, or an error naming the missing file.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| Error::Io {
            path: self.dir.join(crate::tokenizer::TOKENIZER),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no tokenizer"),
        })
    }
}

/// The model of the checkpoint in `dir`.
pub fn load_model(dir: &Path, config: ModelConfig, device: Device, kind: Kind) -> Result<CausalLm> {
    let tensors = read_weights(dir)?;
    let name = dir.display().to_string();
    let model = CausalLm::from_weights(config, WeightSource::new(tensors, &name, device, kind))?;
    // The file buffers are freed by now; with freed memory kept (crate::memory) they would stay
    // in the heap, which a model on the GPU never reuses.
    crate::memory::release_free_memory();
    let named = model.named_parameters();
    let named = named.iter().map(|(n, t)| (n.as_str(), t));
    if let Some(tensor) = hone_trainer::params::first_non_finite(named)? {
        return Err(Error::Tensor {
            source_name: name,
            tensor: tensor.to_owned(),
            message: "holds NaN or infinite values".into(),
        });
    }
    Ok(model)
}

fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        _ => "float32",
    }
}

/// Writes config.json, model.safetensors and generation_config.json of `tensors` (named as
/// transformers names them), plus the tokenizer files when given, into the existing folder
/// `dir` (each file atomically).
pub fn write_checkpoint_files(
    dir: &Path,
    config: &ModelConfig,
    tensors: &[(String, Tensor)],
    generation: &GenerationDefaults,
    tokenizer: Option<&Tokenizer>,
) -> Result<()> {
    let kind = tensors.first().map_or(Kind::Float, |(_, t)| t.kind());
    let mut config_json = config.to_json();
    config_json["dtype"] = json!(dtype_name(kind));
    write_json(&dir.join(CONFIG), &config_json)?;
    write_json(&dir.join(GENERATION_CONFIG), &generation.to_json())?;
    let bytes = safetensors::serialize(tensors)?;
    write_file(&dir.join(WEIGHTS), &bytes)?;
    if let Some(tokenizer) = tokenizer {
        tokenizer.save(dir)?;
    }
    Ok(())
}

/// The model's parameters, its tokenizer and generation defaults as a transformers-loadable
/// folder at `dest`, replaced whole if it exists.
pub fn save_pretrained(
    dest: &Path,
    model: &CausalLm,
    generation: &GenerationDefaults,
    tokenizer: Option<&Tokenizer>,
) -> Result<()> {
    let tensors = tch::no_grad(|| {
        model
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.detach()))
            .collect::<Vec<_>>()
    });
    save_folder_atomically(dest, |tmp| {
        write_checkpoint_files(tmp, model.config(), &tensors, generation, tokenizer)
    })
}

/// Writes a command's output files into the folder `dest` (`hone convert`, `hone init`) without
/// touching anything else there: a new or empty folder is filled; a non-empty one only with
/// `force`, and then only the files `write` makes are replaced, each whole. `write` fills a
/// temporary folder inside `dest`, whose files are then renamed into place, so a failed write
/// changes nothing. A path that is a file is an error, and is left alone.
pub fn write_into_folder(
    dest: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let refuse = |message: &str| Error::Io {
        path: dest.to_owned(),
        cause: std::io::Error::new(std::io::ErrorKind::AlreadyExists, message.to_owned()),
    };
    if dest.exists() && !dest.is_dir() {
        return Err(refuse(
            "exists and is not a folder; give a folder to write into",
        ));
    }
    let occupied = fs::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(refuse(
            "is not empty; pass --force to replace the files this command writes there (other \
             files are left alone), or give a new folder",
        ));
    }
    fs::create_dir_all(dest).map_err(io_error(dest))?;
    let tmp = dest.join(format!(".hone.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(io_error(&tmp))?;
    let moved = write(&tmp).and_then(|()| {
        for entry in fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            let entry = entry.map_err(io_error(&tmp))?;
            let target = dest.join(entry.file_name());
            if target.is_dir() {
                return Err(refuse(&format!(
                    "holds a folder named {:?} where this command writes a file",
                    entry.file_name()
                )));
            }
            fs::rename(entry.path(), &target).map_err(io_error(&target))?;
        }
        Ok(())
    });
    let _ = fs::remove_dir_all(&tmp);
    moved
}

/// Fills a temporary sibling of `dest` with `write`, then swaps it in place of `dest` (for
/// folders hone owns whole: a run's checkpoints).
pub fn save_folder_atomically(dest: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_error(parent))?;
    let name = dest
        .file_name()
        .map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(io_error(&tmp))?;
    if let Err(err) = write(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(err);
    }
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dest.exists() {
        fs::rename(dest, &old).map_err(io_error(dest))?;
    }
    fs::rename(&tmp, dest).map_err(io_error(dest))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_error(&old))?;
    }
    Ok(())
}

pub(crate) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| malformed(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    write_file(path, text.as_bytes())
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    hone_trainer::run_dir::write_atomic(path, bytes)?;
    Ok(())
}
