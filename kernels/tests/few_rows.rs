use hone_kernels::slice::few_rows::simd_available;
use hone_kernels::{MAX_FEW_ROWS, linear_few_rows};
use tch::{Kind, Tensor};

use crate::support::{assert_all_close, to_f64};

/// `x wᵀ + b` in float64 by libtorch (a different code path from the kernel's).
fn linear_f64(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Vec<f64> {
    let y = x
        .to_kind(Kind::Double)
        .matmul(&w.to_kind(Kind::Double).tr());
    to_f64(&match b {
        Some(b) => y + b.to_kind(Kind::Double),
        None => y,
    })
}

#[test]
fn few_rows_match_a_float64_linear_with_and_without_bias() {
    if !simd_available() {
        eprintln!("skipped: this CPU lacks AVX2/FMA, so linear_few_rows always defers to libtorch");
        return;
    }
    tch::manual_seed(3);
    for (shape, n, k) in [
        (vec![1i64, 1, 40], 7i64, 40i64),
        (vec![8, 1, 576], 960, 576),
        (vec![2, 8, 1030], 33, 1030),
    ] {
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu));
        let w = Tensor::randn([n, k], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::randn([n], (Kind::Float, tch::Device::Cpu));
        for bias in [None, Some(&b)] {
            let y = linear_few_rows(&x, &w, bias)
                .unwrap()
                .expect("f32 CPU rows within MAX_FEW_ROWS take the few-row path");
            let mut want_shape = shape.clone();
            *want_shape.last_mut().unwrap() = n;
            assert_eq!(y.size(), want_shape);
            assert_all_close("x w^T", &to_f64(&y), &linear_f64(&x, &w, bias), 1e-4);
        }
    }
}

#[test]
fn other_cases_are_left_to_libtorch() {
    let w = Tensor::randn([5, 4], (Kind::Float, tch::Device::Cpu));
    let x = |rows: i64| Tensor::randn([rows, 4], (Kind::Float, tch::Device::Cpu));
    let defers = |x: &Tensor, w: &Tensor| linear_few_rows(x, w, None).unwrap().is_none();
    assert!(defers(&x(MAX_FEW_ROWS + 1), &w), "too many rows");
    assert!(defers(&x(2).to_kind(Kind::Double), &w), "f64 input");
    assert!(
        defers(&x(2), &w.tr()),
        "a transposed (non-contiguous) weight"
    );
    assert!(
        defers(
            &x(2),
            &Tensor::randn([5, 3], (Kind::Float, tch::Device::Cpu))
        ),
        "K differs"
    );
    // A weight that requires grad: libtorch while autograd records, the kernel under no_grad.
    let trained = w.copy().set_requires_grad(true);
    assert!(defers(&x(2), &trained), "autograd must see the product");
    if simd_available() {
        let y = tch::no_grad(|| linear_few_rows(&x(2), &trained, None).unwrap());
        assert!(y.is_some(), "no gradient is recorded under no_grad");
    }
}
