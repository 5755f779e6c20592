use hone_kernels::tensor::kl::{KlEstimator, kl_per_token};
use hone_kernels::{Error, reference};
use proptest::prelude::*;
use tch::{Kind, Tensor};

use crate::support::{assert_all_close, tensor_f32, to_f64};

const ESTIMATORS: [KlEstimator; 3] = [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn estimators_match_the_reference(
        pairs in prop::collection::vec((-8.0f32..0.0, -8.0f32..0.0), 0..20),
    ) {
        let n = pairs.len() as i64;
        let logp: Vec<f32> = pairs.iter().map(|p| p.0).collect();
        let ref_logp: Vec<f32> = pairs.iter().map(|p| p.1).collect();
        let (a, b) = (tensor_f32(&logp, &[n]), tensor_f32(&ref_logp, &[n]));
        for (k, estimator) in ESTIMATORS.into_iter().enumerate() {
            let got = to_f64(&kl_per_token(&a, &b, estimator).unwrap());
            let want: Vec<f64> = pairs
                .iter()
                .map(|&(p, q)| reference::kl_estimates(f64::from(p), f64::from(q))[k])
                .collect();
            // exp(8) magnifies f32 rounding of the log-ratio.
            assert_all_close("kl", &got, &want, 1e-4);
            if estimator != KlEstimator::K1 {
                prop_assert!(got.iter().all(|&x| x >= 0.0), "{estimator:?} is non-negative");
            }
        }
    }

    #[test]
    fn gradients_match_the_naive_version(
        pairs in prop::collection::vec((-4.0f64..0.0, -4.0f64..0.0), 1..10),
    ) {
        let logp: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let ref_logp: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        for estimator in ESTIMATORS {
            let a = Tensor::from_slice(&logp).set_requires_grad(true);
            let b = Tensor::from_slice(&ref_logp);
            kl_per_token(&a, &b, estimator).unwrap().sum(Kind::Double).backward();
            let a2 = Tensor::from_slice(&logp).set_requires_grad(true);
            let r = &b - &a2;
            let naive = match estimator {
                KlEstimator::K1 => -&r,
                KlEstimator::K2 => &r * &r * 0.5,
                KlEstimator::K3 => r.exp() - 1.0 - &r,
            };
            naive.sum(Kind::Double).backward();
            assert_all_close("kl gradient", &to_f64(&a.grad()), &to_f64(&a2.grad()), 1e-12);
        }
    }
}

#[test]
fn k3_is_accurate_for_tiny_log_ratios() {
    // exp(r) - 1 - r loses everything at r = 1e-8 in f32; expm1 keeps r²/2.
    let a = Tensor::from_slice(&[0.0f64]);
    let b = Tensor::from_slice(&[1e-8f64]);
    let k3 = kl_per_token(&a, &b, KlEstimator::K3)
        .unwrap()
        .double_value(&[0]);
    assert!((k3 - 0.5e-16).abs() < 1e-20, "{k3}");
}

#[test]
fn shapes_and_kinds_are_checked() {
    let a = tensor_f32(&[-1.0, -2.0], &[2]);
    let b = tensor_f32(&[-1.0, -2.0, -3.0], &[3]);
    let err = kl_per_token(&a, &b, KlEstimator::K3).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let err = kl_per_token(&a.to_kind(Kind::Int64), &a, KlEstimator::K1).unwrap_err();
    assert!(matches!(err, Error::Kind { .. }), "{err}");
    assert_eq!(serde_json::to_string(&KlEstimator::K3).unwrap(), "\"k3\"");
}
