use hone_kernels::slice::advantage::{GaeParams, Truncation};
use hone_kernels::tensor::advantage::{TensorRollout, discounted_returns, gae};
use hone_kernels::{Error, reference};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::slice_advantage::{RolloutData, rollouts, truncations};
use crate::support::{assert_all_close, tensor_f32, to_f64};

struct Tensors {
    rewards: Tensor,
    values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    final_values: Tensor,
    next_values: Tensor,
}

fn tensors(data: &RolloutData, float_flags: bool) -> Tensors {
    let shape = [data.steps as i64, data.envs as i64];
    let flags = |f: &[bool]| {
        let t = Tensor::from_slice(f).reshape(shape);
        if float_flags {
            t.to_kind(Kind::Float)
        } else {
            t
        }
    };
    Tensors {
        rewards: tensor_f32(&data.rewards, &shape),
        values: tensor_f32(&data.values, &shape),
        terminated: flags(&data.terminated),
        truncated: flags(&data.truncated),
        final_values: tensor_f32(&data.final_values, &shape),
        next_values: tensor_f32(&data.next_values, &[data.envs as i64]),
    }
}

impl Tensors {
    fn rollout(&self) -> TensorRollout<'_> {
        TensorRollout {
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_values: Some(&self.final_values),
            next_values: &self.next_values,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tensor_gae_matches_the_reference(
        data in rollouts(), gamma in 0.0f32..=1.0, lambda in 0.0f32..=1.0,
        truncation in truncations(), float_flags in any::<bool>(),
    ) {
        let t = tensors(&data, float_flags);
        let params = GaeParams { gamma, lambda, truncation };
        let (advantages, returns) = gae(&t.rollout(), &t.values, params).unwrap();
        prop_assert_eq!(advantages.kind(), Kind::Float);
        prop_assert_eq!(advantages.size(), vec![data.steps as i64, data.envs as i64]);
        let (want_adv, want_ret) = reference::gae(&data.rollout(), &data.values, params);
        assert_all_close("advantages", &to_f64(&advantages), &want_adv, 1e-5);
        assert_all_close("returns", &to_f64(&returns), &want_ret, 1e-5);

        let got = discounted_returns(&t.rollout(), gamma, truncation).unwrap();
        let want = reference::discounted_returns(&data.rollout(), gamma, truncation);
        assert_all_close("discounted returns", &to_f64(&got), &want, 1e-5);
    }
}

#[test]
fn final_values_are_needed_only_where_truncation_bootstraps() {
    let zeros = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
    let no = Tensor::zeros([3, 2], (Kind::Bool, Device::Cpu));
    let truncated = no.copy();
    let _ = truncated.get(2).get(1).fill_(1);
    let next = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    let rollout = TensorRollout {
        rewards: &zeros,
        terminated: &no,
        truncated: &truncated,
        final_values: None,
        next_values: &next,
    };
    let err = gae(&rollout, &zeros, GaeParams::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingFinalValues { step: 2, env: 1 }),
        "{err}"
    );
    assert!(discounted_returns(&rollout, 0.9, Truncation::AsTermination).is_ok());
    // NaN final values where nothing is truncated are never read.
    let nan = Tensor::full([3, 2], f64::NAN, (Kind::Float, Device::Cpu));
    let with_nan = TensorRollout {
        final_values: Some(&nan),
        truncated: &no,
        ..rollout
    };
    let (adv, _) = gae(&with_nan, &zeros, GaeParams::default()).unwrap();
    assert!(to_f64(&adv).iter().all(|x| x.is_finite()));
}

#[test]
fn shapes_kinds_and_empty_rollouts() {
    let zeros = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
    let no = Tensor::zeros([3, 2], (Kind::Bool, Device::Cpu));
    let next = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    let rollout = TensorRollout {
        rewards: &zeros,
        terminated: &no,
        truncated: &no,
        final_values: None,
        next_values: &next,
    };
    let bad_next = Tensor::zeros([3], (Kind::Float, Device::Cpu));
    let err = gae(
        &TensorRollout {
            next_values: &bad_next,
            ..rollout
        },
        &zeros,
        GaeParams::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                what: "next_values",
                ..
            }
        ),
        "{err}"
    );
    let err = gae(&rollout, &zeros.reshape([6]), GaeParams::default()).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "values", .. }), "{err}");
    let ints = zeros.to_kind(Kind::Int64);
    let err = gae(
        &TensorRollout {
            rewards: &ints,
            ..rollout
        },
        &zeros,
        GaeParams::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Kind {
                what: "rewards",
                ..
            }
        ),
        "{err}"
    );

    let empty = Tensor::zeros([0, 2], (Kind::Float, Device::Cpu));
    let empty_flags = Tensor::zeros([0, 2], (Kind::Bool, Device::Cpu));
    let rollout = TensorRollout {
        rewards: &empty,
        terminated: &empty_flags,
        truncated: &empty_flags,
        final_values: None,
        next_values: &next,
    };
    let (adv, ret) = gae(&rollout, &empty, GaeParams::default()).unwrap();
    assert_eq!((adv.size(), ret.size()), (vec![0, 2], vec![0, 2]));
    // f64 values give f64 results.
    let (adv, _) = gae(
        &TensorRollout {
            rewards: &zeros,
            terminated: &no,
            truncated: &no,
            ..rollout
        },
        &zeros.to_kind(Kind::Double),
        GaeParams::default(),
    )
    .unwrap();
    assert_eq!(adv.kind(), Kind::Double);
}
