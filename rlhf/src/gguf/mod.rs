//! GGUF import: the container (versions 2 and 3), read here; dequantisation of F32, F16, BF16,
//! Q8_0, Q4_0 and Q4_1 tensors (`dequant.rs`); and the conversion of a llama-architecture file
//! into a Hugging Face checkpoint folder (`llama.rs`: transformers' names, the query/key row order
//! transformers uses, a config, and a tokenizer.json rebuilt from the GGUF tokenizer metadata).

use std::collections::BTreeMap;
use std::path::Path;

use tch::Tensor;

use crate::error::{Error, Result, io_error, malformed};

mod dequant;
mod llama;
mod validate;

pub use dequant::{GgmlType, dequantize_blocks};
pub use llama::{convert_to_hf, llama_config, llama_tensors, tokenizer, unpermute_rows};

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

#[cfg(test)]
mod tests {
    use super::*;

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
