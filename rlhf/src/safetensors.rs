//! Reading and writing the safetensors format (an 8-byte header length, a JSON header of
//! dtype, shape and byte range per tensor, then the raw little-endian data), with errors naming
//! the file and the tensor. Written files carry `{"format": "pt"}`, which transformers checks.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result, io_error, malformed};

fn kind_of(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F64" => Kind::Double,
        "F32" => Kind::Float,
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "I64" => Kind::Int64,
        "I32" => Kind::Int,
        "I16" => Kind::Int16,
        "I8" => Kind::Int8,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Double => "F64",
        Kind::Float => "F32",
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Int64 => "I64",
        Kind::Int => "I32",
        Kind::Int16 => "I16",
        Kind::Int8 => "I8",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        _ => return None,
    })
}

/// Every tensor of a safetensors file, on the CPU, in the file's order of names.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    parse(path, &bytes)
}

/// The tensors of a safetensors file's `bytes`; `path` names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(malformed(path, "shorter than the 8-byte header length"));
    };
    let header_len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
    let data_start = usize::try_from(header_len)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            malformed(
                path,
                format!(
                    "header length {header_len} exceeds the file size {}",
                    bytes.len()
                ),
            )
        })?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| malformed(path, format!("header is not a JSON object: {e}")))?;
    let data = &bytes[data_start..];
    let tensor_error = |name: &str, message: String| Error::Tensor {
        source_name: path.display().to_string(),
        tensor: name.to_owned(),
        message,
    };
    let mut tensors = Vec::with_capacity(header.len());
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap_or("");
        let kind = kind_of(dtype)
            .ok_or_else(|| tensor_error(name, format!("unsupported dtype {:?}", info["dtype"])))?;
        let shape: Vec<i64> = info["shape"]
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_i64().filter(|&d| d >= 0))
                    .collect()
            })
            .ok_or_else(|| tensor_error(name, format!("invalid shape {}", info["shape"])))?;
        let offsets: Vec<usize> = info["data_offsets"]
            .as_array()
            .and_then(|o| o.iter().map(|x| x.as_u64().map(|x| x as usize)).collect())
            .filter(|o: &Vec<usize>| o.len() == 2 && o[0] <= o[1] && o[1] <= data.len())
            .ok_or_else(|| {
                tensor_error(
                    name,
                    format!(
                        "invalid data_offsets {} for {} data bytes",
                        info["data_offsets"],
                        data.len()
                    ),
                )
            })?;
        let numel: i64 = shape.iter().product();
        let expected = numel as usize * kind.elt_size_in_bytes();
        if offsets[1] - offsets[0] != expected {
            return Err(tensor_error(
                name,
                format!(
                    "{} bytes for shape {shape:?} of {dtype} (expected {expected})",
                    offsets[1] - offsets[0]
                ),
            ));
        }
        let tensor = Tensor::f_from_data_size(&data[offsets[0]..offsets[1]], &shape, kind)?;
        tensors.push((name.clone(), tensor));
    }
    Ok(tensors)
}

/// The file's bytes: a header whose entries are in name order, data in the same order.
pub fn serialize(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut sorted: BTreeMap<&str, Tensor> = BTreeMap::new();
    for (name, tensor) in tensors {
        let cpu = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
        sorted.insert(name, cpu);
    }
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!({ "format": "pt" }));
    let mut offset = 0usize;
    for (name, tensor) in &sorted {
        let kind = tensor.f_kind()?;
        let dtype = dtype_of(kind).ok_or_else(|| Error::Tensor {
            source_name: "safetensors writer".into(),
            tensor: (*name).to_owned(),
            message: format!("kind {kind:?} has no safetensors dtype"),
        })?;
        let bytes = tensor.numel() * kind.elt_size_in_bytes();
        header.insert(
            (*name).to_owned(),
            json!({ "dtype": dtype, "shape": tensor.size(), "data_offsets": [offset, offset + bytes] }),
        );
        offset += bytes;
    }
    let mut header_bytes = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| Error::Tokenizer(format!("safetensors header: {e}")))?;
    // The data start is kept 8-byte aligned, as the reference writer does.
    while header_bytes.len() % 8 != 0 {
        header_bytes.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header_bytes.len() + offset);
    out.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    for tensor in sorted.values() {
        let numel = tensor.numel();
        let start = out.len();
        out.resize(start + numel * tensor.f_kind()?.elt_size_in_bytes(), 0);
        tensor.f_copy_data_u8(&mut out[start..], numel)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kinds_shapes_and_values() {
        let a = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0]).view([2, 3]);
        let b = Tensor::from_slice(&[1i64, -5]);
        let c = a.to_kind(Kind::BFloat16);
        let bytes = serialize(&[
            ("z.a".into(), a.shallow_clone()),
            ("b".into(), b.shallow_clone()),
            ("c".into(), c.shallow_clone()),
        ])
        .unwrap();
        let back = parse(Path::new("x.safetensors"), &bytes).unwrap();
        let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "c", "z.a"]);
        assert!(back[2].1.equal(&a));
        assert!(back[0].1.equal(&b));
        assert_eq!(back[1].1.kind(), Kind::BFloat16);
        assert!(back[1].1.equal(&c));
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let bytes = serialize(&[("w".into(), Tensor::from_slice(&[1.0f32, 2.0]))]).unwrap();
        let err = parse(Path::new("m.safetensors"), &bytes[..bytes.len() - 4])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.safetensors") && err.contains("`w`"),
            "{err}"
        );
        let err = parse(Path::new("m.safetensors"), &[1, 2, 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than the 8-byte header"), "{err}");
    }
}
