//! Shared test helpers: tolerances and tensor conversion.

use tch::{Kind, Tensor};

/// `|got - want| <= tol * max(1, |want|)`, with NaN/inf compared exactly.
pub fn close(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= tol * want.abs().max(1.0)
}

pub fn assert_all_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(*g, *w, tol),
            "{what}[{i}]: got {g}, want {w} (tol {tol})"
        );
    }
}

pub fn to_f64(tensor: &Tensor) -> Vec<f64> {
    let flat = tensor
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("a 1-D f64 tensor converts")
}

pub fn tensor_f32(data: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(data).reshape(shape)
}

pub fn widen(data: &[f32]) -> Vec<f64> {
    data.iter().map(|&x| f64::from(x)).collect()
}

/// A fixed, irregular upstream gradient of the given shape (f64).
pub fn upstream_gradient(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7371).sin() + 0.25).collect();
    Tensor::from_slice(&data).reshape(shape)
}

/// Deterministic irregular values in [-scale, scale] (f32). Tests other than the sampling one
/// avoid libtorch's global generator, which that test seeds and draws from.
pub fn irregular(shape: &[i64], scale: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|i| ((i as f64 * 12.9898).sin() * 43758.5453).fract() as f32)
        .collect();
    Tensor::from_slice(&data).reshape(shape) * scale
}

/// Deterministic token ids in `0..vocab`.
pub fn irregular_tokens(shape: &[i64], vocab: i64) -> Tensor {
    let n: i64 = shape.iter().product();
    let data: Vec<i64> = (0..n).map(|i| (i * 7919 + 13) % vocab).collect();
    Tensor::from_slice(&data).reshape(shape)
}
