//! Running mean and variance (Chan et al.'s parallel merge, f64 state) for observation and
//! reward normalisation, matching gymnasium's `RunningMeanStd`, `NormalizeObservation` and
//! `NormalizeReward` (0.29, the version CleanRL's continuous PPO uses), and serialisable so a
//! checkpoint can carry them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shape_error};

/// Per-dimension running mean and (population) variance of vectors of `dim` elements.
///
/// [`RunningMeanStd::new`] starts as gymnasium does: mean 0, variance 1, count 1e-4, so the
/// first batch nearly replaces the prior. [`RunningMeanStd::with_count`] with count 0 gives the
/// plain statistics of everything seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RunningMeanStdState")]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

/// The serialised form, checked on load.
#[derive(Deserialize)]
struct RunningMeanStdState {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl TryFrom<RunningMeanStdState> for RunningMeanStd {
    type Error = Error;
    fn try_from(state: RunningMeanStdState) -> Result<Self> {
        if state.mean.len() != state.var.len() {
            return Err(shape_error(
                "RunningMeanStd var",
                format!("{} elements like mean", state.mean.len()),
                state.var.len(),
            ));
        }
        check_count(state.count)?;
        Ok(Self {
            mean: state.mean,
            var: state.var,
            count: state.count,
        })
    }
}

fn check_count(count: f64) -> Result<()> {
    if count >= 0.0 && count.is_finite() {
        Ok(())
    } else {
        Err(Error::Parameter {
            name: "count",
            value: count,
            range: "[0, inf)",
        })
    }
}

impl RunningMeanStd {
    /// gymnasium's initial count.
    pub const GYMNASIUM_COUNT: f64 = 1e-4;

    /// gymnasium's `RunningMeanStd(shape=(dim,))`: mean 0, variance 1, count 1e-4.
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: Self::GYMNASIUM_COUNT,
        }
    }

    /// Mean 0, variance 1 and the given prior count (0: no prior at all).
    pub fn with_count(dim: usize, count: f64) -> Result<Self> {
        check_count(count)?;
        Ok(Self {
            count,
            ..Self::new(dim)
        })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Population variance (numpy's `var`, ddof 0).
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    pub fn count(&self) -> f64 {
        self.count
    }

    /// Folds in a batch of `rows × dim` values, row-major (one row per sample), as gymnasium's
    /// `update`: the batch's mean and population variance (two passes, f64), then a merge. An
    /// empty batch changes nothing.
    pub fn update<T: Copy + Into<f64>>(&mut self, batch: &[T]) -> Result<()> {
        let dim = self.dim();
        if dim == 0 {
            return if batch.is_empty() {
                Ok(())
            } else {
                Err(shape_error("batch", "no elements (dim 0)", batch.len()))
            };
        }
        if !batch.len().is_multiple_of(dim) {
            return Err(shape_error(
                "batch",
                format!("a multiple of dim = {dim} elements"),
                batch.len(),
            ));
        }
        let rows = batch.len() / dim;
        if rows == 0 {
            return Ok(());
        }
        let mut batch_mean = vec![0.0f64; dim];
        for row in batch.chunks_exact(dim) {
            for (sum, &x) in batch_mean.iter_mut().zip(row) {
                *sum += x.into();
            }
        }
        let rows_f = rows as f64;
        batch_mean.iter_mut().for_each(|m| *m /= rows_f);
        let mut batch_var = vec![0.0f64; dim];
        for row in batch.chunks_exact(dim) {
            for ((sq, &x), &m) in batch_var.iter_mut().zip(row).zip(&batch_mean) {
                let d = x.into() - m;
                *sq += d * d;
            }
        }
        batch_var.iter_mut().for_each(|v| *v /= rows_f);
        self.merge_moments(&batch_mean, &batch_var, rows_f);
        Ok(())
    }

    /// Folds in another accumulator of the same dimension (Chan et al.'s parallel merge).
    pub fn merge(&mut self, other: &RunningMeanStd) -> Result<()> {
        if other.dim() != self.dim() {
            return Err(shape_error(
                "merged RunningMeanStd",
                self.dim(),
                other.dim(),
            ));
        }
        self.merge_moments(&other.mean, &other.var, other.count);
        Ok(())
    }

    /// gymnasium's `update_mean_var_count_from_moments`, operation for operation.
    fn merge_moments(&mut self, batch_mean: &[f64], batch_var: &[f64], batch_count: f64) {
        let count = self.count;
        let total = count + batch_count;
        if total == 0.0 {
            return;
        }
        for ((mean, var), (&b_mean, &b_var)) in self
            .mean
            .iter_mut()
            .zip(self.var.iter_mut())
            .zip(batch_mean.iter().zip(batch_var))
        {
            let delta = b_mean - *mean;
            let new_mean = *mean + delta * batch_count / total;
            let m2 =
                *var * count + b_var * batch_count + delta * delta * count * batch_count / total;
            *mean = new_mean;
            *var = m2 / total;
        }
        self.count = total;
    }

    /// Normalises `values` (`rows × dim`) in place as gymnasium's `NormalizeObservation`:
    /// `(x - mean) / sqrt(var + epsilon)` in f64, then clipped to `[-clip, clip]` when given
    /// (CleanRL's continuous PPO clips observations to 10) and rounded to f32.
    pub fn normalize(&self, values: &mut [f32], epsilon: f64, clip: Option<f64>) -> Result<()> {
        let dim = self.dim();
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(shape_error(
                "normalised values",
                format!("a multiple of dim = {dim} elements"),
                values.len(),
            ));
        }
        let scale: Vec<f64> = self.var.iter().map(|v| (v + epsilon).sqrt()).collect();
        for row in values.chunks_exact_mut(dim) {
            for ((x, &m), &s) in row.iter_mut().zip(&self.mean).zip(&scale) {
                let z = (f64::from(*x) - m) / s;
                *x = match clip {
                    Some(c) => z.clamp(-c, c),
                    None => z,
                } as f32;
            }
        }
        Ok(())
    }

    /// gymnasium's `NormalizeObservation` step: fold `values` (`rows × dim`) into the statistics,
    /// then normalise them in place with the updated ones (gymnasium updates first, at reset
    /// too). CleanRL's continuous PPO: epsilon 1e-8, clip 10, one accumulator per env.
    pub fn update_then_normalize(
        &mut self,
        values: &mut [f32],
        epsilon: f64,
        clip: Option<f64>,
    ) -> Result<()> {
        self.update(values)?;
        self.normalize(values, epsilon, clip)
    }
}

/// gymnasium's `NormalizeReward`: a discounted return per env, whose running variance scales
/// the rewards. As in gymnasium the return is reset by the flag of the *current* step before its
/// reward is added (`returns = returns * gamma * (1 - end) + reward`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardNormalizer {
    returns: Vec<f64>,
    return_stats: RunningMeanStd,
    gamma: f64,
    epsilon: f64,
}

impl RewardNormalizer {
    /// gymnasium's defaults are γ = 0.99, ε = 1e-8.
    pub fn new(envs: usize, gamma: f64, epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(Error::Parameter {
                name: "gamma",
                value: gamma,
                range: "[0, 1]",
            });
        }
        if !(epsilon >= 0.0 && epsilon.is_finite()) {
            return Err(Error::Parameter {
                name: "epsilon",
                value: epsilon,
                range: "[0, inf)",
            });
        }
        Ok(Self {
            returns: vec![0.0; envs],
            return_stats: RunningMeanStd::new(1),
            gamma,
            epsilon,
        })
    }

    pub fn envs(&self) -> usize {
        self.returns.len()
    }

    /// The running statistics of the discounted returns.
    pub fn return_stats(&self) -> &RunningMeanStd {
        &self.return_stats
    }

    /// Scales one step's rewards (`[N]`) in place. `episode_ends[n]` resets env n's return:
    /// pass `terminated` to match gymnasium (which keeps the return across truncations), or
    /// `terminated | truncated` to reset on both.
    pub fn normalize(&mut self, rewards: &mut [f32], episode_ends: &[bool]) -> Result<()> {
        let envs = self.envs();
        if rewards.len() != envs {
            return Err(shape_error(
                "rewards",
                format!("{envs} (one per env)"),
                rewards.len(),
            ));
        }
        if episode_ends.len() != envs {
            return Err(shape_error(
                "episode_ends",
                format!("{envs} (one per env)"),
                episode_ends.len(),
            ));
        }
        for ((ret, &reward), &end) in self
            .returns
            .iter_mut()
            .zip(rewards.iter())
            .zip(episode_ends)
        {
            let kept = if end { 0.0 } else { 1.0 };
            *ret = *ret * self.gamma * kept + f64::from(reward);
        }
        self.return_stats.update(&self.returns)?;
        let scale = (self.return_stats.var()[0] + self.epsilon).sqrt();
        for reward in rewards.iter_mut() {
            *reward = (f64::from(*reward) / scale) as f32;
        }
        Ok(())
    }
}
