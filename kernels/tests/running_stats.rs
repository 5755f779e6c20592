use hone_kernels::slice::running_stats::{RewardNormalizer, RunningMeanStd};
use hone_kernels::{Error, reference};
use proptest::prelude::*;

use crate::support::{assert_all_close, close};

/// Rows of `dim` samples, split into batches at the given cut points.
fn batches() -> impl Strategy<Value = (usize, Vec<Vec<f32>>)> {
    (1usize..5).prop_flat_map(|dim| {
        let batch = (0usize..5)
            .prop_flat_map(move |rows| prop::collection::vec(-100.0f32..100.0, rows * dim));
        (Just(dim), prop::collection::vec(batch, 1..5))
    })
}

/// Moments of the samples plus gymnasium's prior: `count` pseudo-samples of mean 0, variance 1.
fn with_prior(samples: &[f64], dim: usize, prior: f64) -> (Vec<f64>, Vec<f64>) {
    let rows = (samples.len() / dim) as f64;
    let total = prior + rows;
    let mut mean = vec![0.0; dim];
    let mut var = vec![0.0; dim];
    for d in 0..dim {
        let column: Vec<f64> = samples.iter().skip(d).step_by(dim).copied().collect();
        mean[d] = column.iter().sum::<f64>() / total;
        let second_moment = (prior * 1.0 + column.iter().map(|x| x * x).sum::<f64>()) / total;
        var[d] = second_moment - mean[d] * mean[d];
    }
    (mean, var)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn updates_give_the_moments_of_everything_seen((dim, batches) in batches()) {
        let mut plain = RunningMeanStd::with_count(dim, 0.0).unwrap();
        let mut gym = RunningMeanStd::new(dim);
        let mut seen = Vec::new();
        for batch in &batches {
            plain.update(batch).unwrap();
            gym.update(batch).unwrap();
            seen.extend(batch.iter().map(|&x| f64::from(x)));
        }
        let rows = seen.len() / dim;
        prop_assert!(close(plain.count(), rows as f64, 0.0));
        if rows > 0 {
            let (mean, var) = reference::column_mean_var(&seen, dim);
            assert_all_close("mean", plain.mean(), &mean, 1e-9);
            assert_all_close("var", plain.var(), &var, 1e-7);
        }
        let (mean, var) = with_prior(&seen, dim, RunningMeanStd::GYMNASIUM_COUNT);
        assert_all_close("gymnasium mean", gym.mean(), &mean, 1e-9);
        assert_all_close("gymnasium var", gym.var(), &var, 1e-6);
    }

    #[test]
    fn merging_equals_one_pass((dim, batches) in batches()) {
        let mut whole = RunningMeanStd::new(dim);
        let mut parts: Vec<RunningMeanStd> = Vec::new();
        for batch in &batches {
            whole.update(batch).unwrap();
            let mut part = RunningMeanStd::with_count(dim, 0.0).unwrap();
            part.update(batch).unwrap();
            parts.push(part);
        }
        let mut merged = RunningMeanStd::new(dim);
        for part in &parts {
            merged.merge(part).unwrap();
        }
        prop_assert!(close(merged.count(), whole.count(), 1e-12));
        assert_all_close("mean", merged.mean(), whole.mean(), 1e-9);
        assert_all_close("var", merged.var(), whole.var(), 1e-7);
    }
}

#[test]
fn welford_single_samples_match_the_batch() {
    let data = [1.0f32, -2.0, 3.5, 0.25, 10.0, -7.0];
    let mut one_by_one = RunningMeanStd::with_count(2, 0.0).unwrap();
    for row in data.chunks(2) {
        one_by_one.update(row).unwrap();
    }
    let mut batch = RunningMeanStd::with_count(2, 0.0).unwrap();
    batch.update(&data).unwrap();
    assert_all_close("mean", one_by_one.mean(), batch.mean(), 1e-12);
    assert_all_close("var", one_by_one.var(), batch.var(), 1e-12);
    assert_all_close(
        "mean by hand",
        batch.mean(),
        &[(1.0 + 3.5 + 10.0) / 3.0, (-2.0 + 0.25 - 7.0) / 3.0],
        1e-12,
    );
}

#[test]
fn normalize_uses_mean_and_var_with_epsilon_and_clip() {
    let mut stats = RunningMeanStd::with_count(2, 0.0).unwrap();
    stats.update(&[0.0f32, 10.0, 2.0, 30.0]).unwrap(); // mean [1, 20], var [1, 100]
    let mut x = [3.0f32, 20.0, -1.0, 1000.0];
    stats.normalize(&mut x, 1e-8, Some(10.0)).unwrap();
    let want = [
        2.0 / (1.0f64 + 1e-8).sqrt(),
        0.0,
        -2.0 / (1.0f64 + 1e-8).sqrt(),
        10.0,
    ];
    assert_all_close("normalized", &x.map(f64::from), &want, 1e-7);
    let err = stats.normalize(&mut [1.0f32; 3], 1e-8, None).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");

    // gymnasium's order: the first observation already counts (mean ≈ x, var ≈ 1e-4 · ...).
    let mut stats = RunningMeanStd::new(1);
    let mut x = [4.0f32];
    stats.update_then_normalize(&mut x, 1e-8, None).unwrap();
    let total = 1.0 + RunningMeanStd::GYMNASIUM_COUNT;
    let mean = 4.0 / total;
    let var = (RunningMeanStd::GYMNASIUM_COUNT + 16.0) / total - mean * mean;
    let want = (4.0 - mean) / (var + 1e-8f64).sqrt();
    assert!(close(f64::from(x[0]), want, 1e-6), "{} vs {want}", x[0]);
}

#[test]
fn checkpoints_round_trip_and_bad_ones_are_rejected() {
    let mut stats = RunningMeanStd::new(3);
    stats.update(&[1.0f32, 2.0, 3.0, -4.0, 5.0, 0.5]).unwrap();
    let json = serde_json::to_string(&stats).unwrap();
    let back: RunningMeanStd = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);

    let mut rewards = RewardNormalizer::new(2, 0.99, 1e-8).unwrap();
    rewards.normalize(&mut [1.0, 2.0], &[false, true]).unwrap();
    let json = serde_json::to_string(&rewards).unwrap();
    let back: RewardNormalizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rewards);

    let bad = r#"{"mean":[0.0,1.0],"var":[1.0],"count":1.0}"#;
    assert!(serde_json::from_str::<RunningMeanStd>(bad).is_err());
    let negative = r#"{"mean":[0.0],"var":[1.0],"count":-1.0}"#;
    assert!(serde_json::from_str::<RunningMeanStd>(negative).is_err());
}

#[test]
fn bad_updates_are_errors() {
    let mut stats = RunningMeanStd::new(3);
    let err = stats.update(&[1.0f32; 4]).unwrap_err();
    assert!(err.to_string().contains("multiple of dim = 3"), "{err}");
    let err = stats.merge(&RunningMeanStd::new(2)).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(RunningMeanStd::with_count(1, -1.0).is_err());
    let before = stats.clone();
    stats.update::<f32>(&[]).unwrap();
    assert_eq!(stats, before, "an empty batch changes nothing");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// gymnasium 0.29's NormalizeReward, replayed plainly: the discounted return per env is
    /// reset by the step's own flag, every step's returns update the statistics, and the reward
    /// is divided by sqrt(var + eps).
    #[test]
    fn reward_normalizer_replays_gymnasium(
        envs in 1usize..4,
        steps in prop::collection::vec((prop::collection::vec(-3.0f32..3.0, 4), prop::collection::vec(prop::bool::weighted(0.2), 4)), 1..30),
        gamma in 0.0f64..=1.0,
    ) {
        let epsilon = 1e-8;
        let mut normalizer = RewardNormalizer::new(envs, gamma, epsilon).unwrap();
        let mut returns = vec![0.0f64; envs];
        let mut seen = Vec::new();
        for (rewards, ends) in &steps {
            let (rewards, ends) = (&rewards[..envs], &ends[..envs]);
            for n in 0..envs {
                returns[n] = returns[n] * gamma * f64::from(u8::from(!ends[n])) + f64::from(rewards[n]);
            }
            seen.extend_from_slice(&returns);
            let (_, var) = with_prior(&seen, 1, RunningMeanStd::GYMNASIUM_COUNT);
            let want: Vec<f64> = rewards.iter().map(|&r| f64::from(r) / (var[0] + epsilon).sqrt()).collect();
            let mut got = rewards.to_vec();
            normalizer.normalize(&mut got, ends).unwrap();
            assert_all_close("normalized reward", &got.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(), &want, 1e-5);
        }
    }
}

#[test]
fn reward_normalizer_rejects_bad_input() {
    assert!(RewardNormalizer::new(2, 1.5, 1e-8).is_err());
    assert!(RewardNormalizer::new(2, 0.9, -1.0).is_err());
    let mut normalizer = RewardNormalizer::new(2, 0.9, 1e-8).unwrap();
    assert!(normalizer.normalize(&mut [1.0], &[false, false]).is_err());
    assert!(normalizer.normalize(&mut [1.0, 2.0], &[false]).is_err());
}
