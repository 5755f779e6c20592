use hone_kernels::slice::advantage::{
    GaeParams, Rollout, Truncation, discounted_returns, discounted_returns_into, gae, gae_into,
};
use hone_kernels::{Error, reference};
use proptest::prelude::*;

use crate::support::{assert_all_close, widen};

/// An owned random rollout.
#[derive(Clone, Debug)]
pub struct RolloutData {
    pub steps: usize,
    pub envs: usize,
    pub rewards: Vec<f32>,
    pub values: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    pub final_values: Vec<f32>,
    pub next_values: Vec<f32>,
}

impl RolloutData {
    pub fn rollout(&self) -> Rollout<'_> {
        Rollout {
            steps: self.steps,
            envs: self.envs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_values: Some(&self.final_values),
            next_values: &self.next_values,
        }
    }
}

pub fn rollouts() -> impl Strategy<Value = RolloutData> {
    (0usize..10, 0usize..9).prop_flat_map(|(steps, envs)| {
        let len = steps * envs;
        let flag = prop::bool::weighted(0.2);
        (
            prop::collection::vec(-5.0f32..5.0, len),
            prop::collection::vec(-5.0f32..5.0, len),
            prop::collection::vec(flag, len),
            prop::collection::vec(flag, len),
            prop::collection::vec(-5.0f32..5.0, len),
            prop::collection::vec(-5.0f32..5.0, envs),
        )
            .prop_map(
                move |(rewards, values, terminated, truncated, final_values, next_values)| {
                    RolloutData {
                        steps,
                        envs,
                        rewards,
                        values,
                        terminated,
                        truncated,
                        final_values,
                        next_values,
                    }
                },
            )
    })
}

pub fn truncations() -> impl Strategy<Value = Truncation> {
    prop_oneof![Just(Truncation::Bootstrap), Just(Truncation::AsTermination)]
}

/// CleanRL ppo.py's GAE loop, transliterated: `dones[t]` is the done flag *of the observation*
/// at t (the previous step's), `next_done` the last step's.
fn cleanrl_gae(data: &RolloutData, gamma: f64, lambda: f64) -> Vec<f64> {
    let (steps, envs) = (data.steps, data.envs);
    let done = |t: usize, n: usize| {
        let i = t * envs + n;
        f64::from(u8::from(data.terminated[i] || data.truncated[i]))
    };
    let mut advantages = vec![0.0; steps * envs];
    let mut lastgaelam = vec![0.0; envs];
    for t in (0..steps).rev() {
        for (n, last) in lastgaelam.iter_mut().enumerate() {
            // CleanRL's dones[t + 1] (next_done for the last step) is our flag of step t.
            let nextnonterminal = 1.0 - done(t, n);
            let nextvalues = if t == steps - 1 {
                f64::from(data.next_values[n])
            } else {
                f64::from(data.values[(t + 1) * envs + n])
            };
            let i = t * envs + n;
            let delta = f64::from(data.rewards[i]) + gamma * nextvalues * nextnonterminal
                - f64::from(data.values[i]);
            *last = delta + gamma * lambda * nextnonterminal * *last;
            advantages[i] = *last;
        }
    }
    advantages
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gae_matches_the_reference(
        data in rollouts(), gamma in 0.0f32..=1.0, lambda in 0.0f32..=1.0,
        truncation in truncations(),
    ) {
        let params = GaeParams { gamma, lambda, truncation };
        let out = gae(&data.rollout(), &data.values, params).unwrap();
        let (want_adv, want_ret) = reference::gae(&data.rollout(), &data.values, params);
        assert_all_close("advantages", &widen(&out.advantages), &want_adv, 1e-5);
        assert_all_close("returns", &widen(&out.returns), &want_ret, 1e-5);
    }

    #[test]
    fn truncation_as_termination_is_cleanrl(
        data in rollouts(), gamma in 0.0f32..=1.0, lambda in 0.0f32..=1.0,
    ) {
        let params = GaeParams { gamma, lambda, truncation: Truncation::AsTermination };
        let rollout = Rollout { final_values: None, ..data.rollout() };
        let out = gae(&rollout, &data.values, params).unwrap();
        let want = cleanrl_gae(&data, f64::from(gamma), f64::from(lambda));
        assert_all_close("advantages", &widen(&out.advantages), &want, 1e-5);
    }

    #[test]
    fn discounted_returns_match_the_reference(
        data in rollouts(), gamma in 0.0f32..=1.0, truncation in truncations(),
    ) {
        let got = discounted_returns(&data.rollout(), gamma, truncation).unwrap();
        let want = reference::discounted_returns(&data.rollout(), gamma, truncation);
        assert_all_close("returns", &widen(&got), &want, 1e-5);
    }

    /// With λ = 1 the GAE returns are the bootstrapped discounted returns.
    #[test]
    fn gae_returns_at_lambda_one_are_discounted_returns(
        data in rollouts(), gamma in 0.0f32..=1.0, truncation in truncations(),
    ) {
        let params = GaeParams { gamma, lambda: 1.0, truncation };
        let out = gae(&data.rollout(), &data.values, params).unwrap();
        let returns = discounted_returns(&data.rollout(), gamma, truncation).unwrap();
        assert_all_close("returns", &widen(&out.returns), &widen(&returns), 1e-5);
    }
}

/// One env, three steps, worked by hand: a truncation at t = 1 bootstraps from its final value
/// and cuts the trace; t = 2 bootstraps from next_values.
#[test]
fn gae_by_hand() {
    let (gamma, lambda) = (0.5f32, 0.5f32);
    let rewards = [1.0, 2.0, 3.0];
    let values = [0.5, 1.0, 1.5];
    let final_values = [f32::NAN, 4.0, f32::NAN];
    let rollout = Rollout {
        steps: 3,
        envs: 1,
        rewards: &rewards,
        terminated: &[false, false, false],
        truncated: &[false, true, false],
        final_values: Some(&final_values),
        next_values: &[2.0],
    };
    let params = GaeParams {
        gamma,
        lambda,
        truncation: Truncation::Bootstrap,
    };
    let out = gae(&rollout, &values, params).unwrap();
    let a2 = 3.0 + 0.5 * 2.0 - 1.5; // 2.5
    let a1 = 2.0 + 0.5 * 4.0 - 1.0; // 3.0, trace cut
    let a0 = (1.0 + 0.5 * 1.0 - 0.5) + 0.25 * a1; // 1.75
    assert_eq!(out.advantages, vec![a0, a1, a2]);
    assert_eq!(out.returns, vec![a0 + 0.5, a1 + 1.0, a2 + 1.5]);

    let as_termination = GaeParams {
        truncation: Truncation::AsTermination,
        ..params
    };
    let out = gae(&rollout, &values, as_termination).unwrap();
    assert_eq!(out.advantages, vec![1.0 + 0.25 * 1.0, 2.0 - 1.0, a2]);
}

#[test]
fn terminated_wins_over_truncated_and_final_values_are_read_only_where_needed() {
    let rollout = Rollout {
        steps: 2,
        envs: 1,
        rewards: &[1.0, 1.0],
        terminated: &[true, false],
        truncated: &[true, false],
        final_values: Some(&[f32::NAN, f32::INFINITY]),
        next_values: &[0.0],
    };
    let out = gae(&rollout, &[0.0, 0.0], GaeParams::default()).unwrap();
    assert_eq!(out.advantages, vec![1.0, 1.0]);
    let returns = discounted_returns(&rollout, 0.9, Truncation::Bootstrap).unwrap();
    assert_eq!(returns, vec![1.0, 1.0]);
}

#[test]
fn empty_and_single_step_rollouts() {
    for (steps, envs) in [(0, 0), (0, 3), (4, 0)] {
        let len = steps * envs;
        let zeros = vec![0.0; len];
        let flags = vec![false; len];
        let next = vec![0.0; envs];
        let rollout = Rollout {
            steps,
            envs,
            rewards: &zeros,
            terminated: &flags,
            truncated: &flags,
            final_values: None,
            next_values: &next,
        };
        let out = gae(&rollout, &zeros, GaeParams::default()).unwrap();
        assert!(out.advantages.is_empty() && out.returns.is_empty());
    }
    let rollout = Rollout {
        steps: 1,
        envs: 1,
        rewards: &[2.0],
        terminated: &[false],
        truncated: &[false],
        final_values: None,
        next_values: &[10.0],
    };
    let out = gae(&rollout, &[1.0], GaeParams::default()).unwrap();
    assert_eq!(out.advantages, vec![2.0 + 0.99 * 10.0 - 1.0]);
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let rewards = [0.0; 6];
    let flags = [false; 6];
    let good = Rollout {
        steps: 3,
        envs: 2,
        rewards: &rewards,
        terminated: &flags,
        truncated: &flags,
        final_values: None,
        next_values: &[0.0, 0.0],
    };
    let values = [0.0; 6];
    let short = Rollout {
        rewards: &rewards[..5],
        ..good
    };
    let err = gae(&short, &values, GaeParams::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                what: "rewards",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("expected 6 elements ([T=3, N=2]), got 5"),
        "{err}"
    );

    let err = gae(&good, &values[..4], GaeParams::default()).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "values", .. }), "{err}");
    let err = gae(
        &Rollout {
            next_values: &[0.0],
            ..good
        },
        &values,
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

    for (gamma, lambda) in [(1.5, 0.9), (0.9, -0.1), (f32::NAN, 0.9)] {
        let params = GaeParams {
            gamma,
            lambda,
            truncation: Truncation::Bootstrap,
        };
        let err = gae(&good, &values, params).unwrap_err();
        assert!(matches!(err, Error::Parameter { .. }), "{err}");
    }

    let mut truncated = [false; 6];
    truncated[3] = true; // step 1, env 1
    let needs_final = Rollout {
        truncated: &truncated,
        ..good
    };
    let err = gae(&needs_final, &values, GaeParams::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingFinalValues { step: 1, env: 1 }),
        "{err}"
    );
    let err = discounted_returns(&needs_final, 0.9, Truncation::Bootstrap).unwrap_err();
    assert!(
        matches!(err, Error::MissingFinalValues { step: 1, env: 1 }),
        "{err}"
    );
    // Counting truncation as termination needs no final values.
    assert!(discounted_returns(&needs_final, 0.9, Truncation::AsTermination).is_ok());

    let (mut adv, mut ret) = (vec![0.0; 6], vec![0.0; 5]);
    let err = gae_into(&good, &values, GaeParams::default(), &mut adv, &mut ret).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                what: "returns (output)",
                ..
            }
        ),
        "{err}"
    );
    let err = discounted_returns_into(&good, 0.9, Truncation::Bootstrap, &mut ret).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                what: "returns (output)",
                ..
            }
        ),
        "{err}"
    );
}

/// Next-step autoreset: a truncated step returns the final observation, whose value is the next
/// row's; the row after it is a reset row. Passing the shifted values as `final_values` gives the
/// truncated step `r + γ·V(final)` with the trace cut, whatever the reset row holds.
#[test]
fn next_step_autoreset_with_shifted_final_values() {
    let params = GaeParams::default();
    let advantages_with = |reset_reward: f32, reset_next_value: f32| {
        let rewards = [1.0, 2.0, reset_reward, 0.5];
        let values = [0.3, 0.4, 0.9, reset_next_value];
        let next_values = [0.7];
        // final_values[t] = values[t + 1], and next_values for the last step.
        let final_values = [0.4, 0.9, reset_next_value, 0.7];
        let rollout = Rollout {
            steps: 4,
            envs: 1,
            rewards: &rewards,
            terminated: &[false; 4],
            truncated: &[false, true, false, false],
            final_values: Some(&final_values),
            next_values: &next_values,
        };
        gae(&rollout, &values, params).unwrap().advantages
    };
    let a = advantages_with(0.0, 5.0);
    let b = advantages_with(-3.0, -8.0);
    assert_eq!(
        a[..2],
        b[..2],
        "the reset row does not reach the episode before it"
    );
    assert_ne!(a[2], b[2]);
    let want = 2.0 + 0.99 * 0.9 - 0.4;
    assert!((a[1] - want).abs() < 1e-6, "{} vs {want}", a[1]);
}
