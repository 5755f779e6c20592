//! `--device` and `--dtype` for the LLM examples (scripts/gpu_check.sh runs them on CUDA).
// Each example that includes this file uses part of it.
#![allow(dead_code)]

use tch::{Device, Kind};

/// Where a model runs and in which dtype.
pub struct Placement {
    pub device: Device,
    pub kind: Kind,
    /// `cpu f32`, `cuda bf16`, ...: the flags' words, for printing.
    pub label: String,
}

/// Takes `--device D` (cpu, cuda, cuda:N; default cpu) and `--dtype T` (f32 or bf16; default
/// f32) out of `args`, leaving the positional arguments.
pub fn take_placement(args: &mut Vec<String>) -> hone_rlhf::Result<Placement> {
    let mut take = |flag: &str, default: &str| -> String {
        match args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < args.len() => {
                let value = args.remove(i + 1);
                args.remove(i);
                value
            }
            _ => default.to_owned(),
        }
    };
    let (device, dtype) = (take("--device", "cpu"), take("--dtype", "f32"));
    let kind = match dtype.as_str() {
        "f32" => Kind::Float,
        "bf16" => Kind::BFloat16,
        other => {
            return Err(hone_rlhf::Error::Parameter {
                name: "dtype",
                value: other.to_owned(),
                expected: "f32 or bf16".into(),
            });
        }
    };
    Ok(Placement {
        device: hone_rlhf::train::parse_device(&device)?,
        kind,
        label: format!("{device} {dtype}"),
    })
}

/// Waits for the device's queued work (timings of CUDA calls would otherwise end early).
pub fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}
