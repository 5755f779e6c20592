use hone_kernels::tensor::masked::{masked_mean, masked_mean_dim, masked_var, masked_whiten};
use hone_kernels::{Error, reference};
use proptest::prelude::*;
use tch::{Kind, Tensor};

use crate::support::{assert_all_close, close, tensor_f32, to_f64, widen};

/// `[B, T]` values and a mask, with a bias towards sparse and empty masks.
fn masked_batches() -> impl Strategy<Value = (i64, i64, Vec<f32>, Vec<bool>)> {
    (1i64..4, 0i64..7, 0.0f64..=1.0).prop_flat_map(|(b, t, density)| {
        let len = (b * t) as usize;
        (
            Just(b),
            Just(t),
            prop::collection::vec(-10.0f32..10.0, len),
            prop::collection::vec(prop::bool::weighted(density), len),
        )
    })
}

fn mask_tensor(mask: &[bool], shape: &[i64]) -> Tensor {
    Tensor::from_slice(mask).reshape(shape)
}

/// The naive version with autograd, written with boolean indexing and torch's own mean/var.
fn naive_whiten(values: &Tensor, mask: &Tensor) -> Tensor {
    let selected = values.masked_select(mask);
    let mean = selected.mean(Kind::Double);
    let var = selected.var(true);
    (values - &mean) * (var + 1e-8).rsqrt()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn masked_statistics_match_the_reference((b, t, values, mask) in masked_batches()) {
        let shape = [b, t];
        let x = tensor_f32(&values, &shape);
        let m = mask_tensor(&mask, &shape);
        let v64 = widen(&values);

        match reference::masked_mean(&v64, &mask) {
            Some(want) => {
                let got = masked_mean(&x, &m).unwrap().double_value(&[]);
                prop_assert!(close(got, want, 1e-5), "mean {got} vs {want}");
            }
            None => prop_assert!(matches!(masked_mean(&x, &m), Err(Error::Empty(_)))),
        }
        for unbiased in [false, true] {
            match reference::masked_var(&v64, &mask, unbiased) {
                Some(want) => {
                    let got = masked_var(&x, &m, unbiased).unwrap().double_value(&[]);
                    prop_assert!(close(got, want, 1e-5), "var {got} vs {want}");
                }
                None => prop_assert!(matches!(masked_var(&x, &m, unbiased), Err(Error::Empty(_)))),
            }
        }
        for shift_mean in [true, false] {
            match reference::masked_whiten(&v64, &mask, shift_mean) {
                Some(want) => {
                    let got = to_f64(&masked_whiten(&x, &m, shift_mean).unwrap());
                    // Whitening divides by the standard deviation, which amplifies f32 rounding
                    // of nearly constant inputs; compare on the scale of the output.
                    let scale = want.iter().fold(1.0f64, |s, w| s.max(w.abs()));
                    for (g, w) in got.iter().zip(&want) {
                        prop_assert!((g - w).abs() <= 1e-4 * scale, "whiten {g} vs {w}");
                    }
                }
                None => prop_assert!(masked_whiten(&x, &m, shift_mean).is_err()),
            }
        }
        // A float 0/1 mask acts as the bool one.
        let float_mask = m.to_kind(Kind::Float);
        if let (Ok(a), Ok(b)) = (masked_mean(&x, &m), masked_mean(&x, &float_mask)) {
            prop_assert_eq!(a.double_value(&[]), b.double_value(&[]));
        }
    }

    #[test]
    fn masked_mean_along_a_dimension((b, t, values, mask) in masked_batches()) {
        let x = tensor_f32(&values, &[b, t]);
        let m = mask_tensor(&mask, &[b, t]);
        let got = to_f64(&masked_mean_dim(&x, &m, 1).unwrap());
        let v64 = widen(&values);
        let want: Vec<f64> = (0..b as usize)
            .map(|row| {
                let r = row * t as usize..(row + 1) * t as usize;
                reference::masked_mean(&v64[r.clone()], &mask[r]).unwrap_or(0.0)
            })
            .collect();
        assert_all_close("row means", &got, &want, 1e-5);
        let got = to_f64(&masked_mean_dim(&x, &m, 0).unwrap());
        prop_assert_eq!(got.len(), t as usize);
    }

    #[test]
    fn whitening_gradients_match_the_naive_version((b, t, values, mask) in masked_batches()) {
        prop_assume!(mask.iter().filter(|m| **m).count() >= 2);
        let shape = [b, t];
        let m = mask_tensor(&mask, &shape);
        let upstream = crate::support::upstream_gradient(&shape);
        let x = tensor_f32(&values, &shape).to_kind(Kind::Double).set_requires_grad(true);
        (masked_whiten(&x, &m, true).unwrap() * &upstream).sum(Kind::Double).backward();
        let ours = to_f64(&x.grad());
        let y = tensor_f32(&values, &shape).to_kind(Kind::Double).set_requires_grad(true);
        (naive_whiten(&y, &m) * &upstream).sum(Kind::Double).backward();
        let naive = to_f64(&y.grad());
        assert_all_close("whiten gradient", &ours, &naive, 1e-8);
    }
}

#[test]
fn all_masked_and_single_element_edges() {
    let x = tensor_f32(&[1.0, 2.0, 3.0], &[3]);
    let none = mask_tensor(&[false; 3], &[3]);
    let one = mask_tensor(&[false, true, false], &[3]);
    let err = masked_mean(&x, &none).unwrap_err();
    assert!(err.to_string().contains("selects 0 elements"), "{err}");
    assert_eq!(masked_mean(&x, &one).unwrap().double_value(&[]), 2.0);
    assert_eq!(masked_var(&x, &one, false).unwrap().double_value(&[]), 0.0);
    let err = masked_var(&x, &one, true).unwrap_err();
    assert!(err.to_string().contains("more than one"), "{err}");
    let empty = Tensor::zeros([0], (Kind::Float, tch::Device::Cpu));
    let empty_mask = Tensor::zeros([0], (Kind::Bool, tch::Device::Cpu));
    assert!(matches!(
        masked_mean(&empty, &empty_mask),
        Err(Error::Empty(_))
    ));
    let rows = masked_mean_dim(&x.reshape([1, 3]), &none.reshape([1, 3]), 1).unwrap();
    assert_eq!(to_f64(&rows), vec![0.0], "an all-masked row has mean 0");
}

#[test]
fn kinds_and_shapes_are_checked() {
    let x = tensor_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let m = mask_tensor(&[true, true, false, true], &[2, 2]);
    let err = masked_mean(&x, &m.reshape([4])).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "mask", .. }), "{err}");
    let err = masked_mean(&x.to_kind(Kind::Int64), &m).unwrap_err();
    assert!(matches!(err, Error::Kind { what: "values", .. }), "{err}");
    let err = masked_mean_dim(&x, &m, 2).unwrap_err();
    assert!(matches!(err, Error::Parameter { name: "dim", .. }), "{err}");
    // Half precision is reduced in f32 and keeps its kind.
    let half = x.to_kind(Kind::BFloat16);
    let whitened = masked_whiten(&half, &m, true).unwrap();
    assert_eq!(whitened.kind(), Kind::BFloat16);
    let mean = masked_mean(&half, &m).unwrap().double_value(&[]);
    assert!(close(mean, 7.0 / 3.0, 1e-2), "{mean}");
}
