//! Generalised advantage estimation and discounted returns over a `[T, N]` rollout.
//!
//! # Layout and flag convention
//!
//! Every `[T, N]` input is row-major, step-major and env-minor: element `t * N + n` belongs to
//! step `t` of env `n`, as a PPO rollout buffer stores it. At step `t` the policy saw observation
//! `o[t]` (with value `values[t]`), acted, and the environment returned `rewards[t]`,
//! `terminated[t]` and `truncated[t]`: the flags are those *returned by the step taken at `t`*
//! (CleanRL's `next_done` of that step, which CleanRL itself stores one row later as `dones[t + 1]`).
//!
//! The value of what follows step `t` is:
//! - `terminated[t]`: nothing; the return is cut at `rewards[t]` (terminated wins when both are
//!   set).
//! - `truncated[t]` with [`Truncation::Bootstrap`]: `final_values[t]`, the value of the final
//!   observation of the truncated episode (the environment has already reset, so `values[t + 1]`
//!   belongs to the next episode); the λ-trace is cut there too.
//! - `truncated[t]` with [`Truncation::AsTermination`]: nothing, as for termination (CleanRL's
//!   `dones = terminated | truncated`, `nextnonterminal = 1 - dones`).
//! - otherwise `values[t + 1]`, and for the last step `next_values`, the value of the observation
//!   returned by the last step (`[N]`, CleanRL's `next_value`).
//!
//! So `values[t + 1]` must be the value of the observation the policy acts on at `t + 1`, which
//! after a done step is the first observation of the new episode (same-step autoreset).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shape_error};

/// How a truncated step (a time limit, not a terminal state) enters the targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Truncation {
    /// Bootstrap from the value of the truncated episode's final observation.
    #[default]
    Bootstrap,
    /// Treat truncation as termination, as CleanRL's ppo.py does.
    AsTermination,
}

/// One rollout's rewards and episode boundaries, `[T, N]` step-major (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Rollout<'a> {
    /// T: steps per env.
    pub steps: usize,
    /// N: environments.
    pub envs: usize,
    /// `[T, N]` rewards returned by the step taken at t.
    pub rewards: &'a [f32],
    /// `[T, N]` terminated flags returned by the step taken at t.
    pub terminated: &'a [bool],
    /// `[T, N]` truncated flags returned by the step taken at t.
    pub truncated: &'a [bool],
    /// `[T, N]` values of the final observation of a truncated episode, read only where
    /// `truncated && !terminated` with [`Truncation::Bootstrap`]; `None` when no step is
    /// truncated (or truncation counts as termination).
    pub final_values: Option<&'a [f32]>,
    /// `[N]` values of the observation returned by the last step, the bootstrap after step T-1.
    pub next_values: &'a [f32],
}

/// Parameters of generalised advantage estimation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaeParams {
    /// Discount γ in [0, 1].
    pub gamma: f32,
    /// Trace decay λ in [0, 1].
    pub lambda: f32,
    pub truncation: Truncation,
}

impl Default for GaeParams {
    /// CleanRL's ppo.py defaults (γ 0.99, λ 0.95), with truncation bootstrapped.
    fn default() -> Self {
        Self {
            gamma: 0.99,
            lambda: 0.95,
            truncation: Truncation::Bootstrap,
        }
    }
}

/// Advantages and returns (= advantages + values), each `[T, N]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Advantages {
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

fn check_unit_interval(name: &'static str, value: f32) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::Parameter {
            name,
            value: f64::from(value),
            range: "[0, 1]",
        })
    }
}

fn check_len(what: &'static str, len: usize, expected: usize, shape: &str) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(shape_error(
            what,
            format!("{expected} elements ({shape})"),
            format!("{len} elements"),
        ))
    }
}

impl<'a> Rollout<'a> {
    fn validate(&self, truncation: Truncation) -> Result<()> {
        let len = self
            .steps
            .checked_mul(self.envs)
            .ok_or_else(|| shape_error("rollout", "steps * envs to fit in usize", "an overflow"))?;
        let shape = format!("[T={}, N={}]", self.steps, self.envs);
        check_len("rewards", self.rewards.len(), len, &shape)?;
        check_len("terminated", self.terminated.len(), len, &shape)?;
        check_len("truncated", self.truncated.len(), len, &shape)?;
        check_len(
            "next_values",
            self.next_values.len(),
            self.envs,
            &format!("[N={}]", self.envs),
        )?;
        match self.final_values {
            Some(final_values) => check_len("final_values", final_values.len(), len, &shape)?,
            None if truncation == Truncation::Bootstrap => {
                let needs_bootstrap = self
                    .terminated
                    .iter()
                    .zip(self.truncated)
                    .position(|(&term, &trunc)| trunc && !term);
                if let Some(index) = needs_bootstrap {
                    return Err(Error::MissingFinalValues {
                        step: index / self.envs,
                        env: index % self.envs,
                    });
                }
            }
            None => {}
        }
        Ok(())
    }

    /// `[N]` row `t` of a `[T, N]` slice.
    fn row<'s, T>(&self, data: &'s [T], t: usize) -> &'s [T] {
        &data[t * self.envs..(t + 1) * self.envs]
    }

    /// The values that follow row t when the episode goes on: row t+1, or the final bootstrap.
    fn following_values<'s>(&self, values: &'s [f32], t: usize) -> &'s [f32]
    where
        'a: 's,
    {
        if t + 1 == self.steps {
            self.next_values
        } else {
            self.row(values, t + 1)
        }
    }
}

/// Generalised advantage estimation (Schulman et al. 2016) written into `advantages` and
/// `returns` (each `[T, N]`); `values` is `[T, N]`. The recursion carries f64 per env.
pub fn gae_into(
    rollout: &Rollout<'_>,
    values: &[f32],
    params: GaeParams,
    advantages: &mut [f32],
    returns: &mut [f32],
) -> Result<()> {
    check_unit_interval("gamma", params.gamma)?;
    check_unit_interval("lambda", params.lambda)?;
    rollout.validate(params.truncation)?;
    let len = rollout.steps * rollout.envs;
    let shape = format!("[T={}, N={}]", rollout.steps, rollout.envs);
    check_len("values", values.len(), len, &shape)?;
    check_len("advantages (output)", advantages.len(), len, &shape)?;
    check_len("returns (output)", returns.len(), len, &shape)?;

    let gamma = f64::from(params.gamma);
    let gamma_lambda = gamma * f64::from(params.lambda);
    let n = rollout.envs;
    let mut carry = vec![0.0f64; n];
    for t in (0..rollout.steps).rev() {
        let next = rollout.following_values(values, t);
        let rows = RowInputs {
            rewards: rollout.row(rollout.rewards, t),
            values: rollout.row(values, t),
            terminated: rollout.row(rollout.terminated, t),
            truncated: rollout.row(rollout.truncated, t),
            // Never read where it is absent: validate() found no step that needs it.
            final_values: rollout.final_values.map_or(next, |f| rollout.row(f, t)),
            next_values: next,
        };
        let out_adv = &mut advantages[t * n..(t + 1) * n];
        let out_ret = &mut returns[t * n..(t + 1) * n];
        match params.truncation {
            Truncation::Bootstrap => {
                gae_row::<true>(&rows, gamma, gamma_lambda, &mut carry, out_adv, out_ret);
            }
            Truncation::AsTermination => {
                gae_row::<false>(&rows, gamma, gamma_lambda, &mut carry, out_adv, out_ret);
            }
        }
    }
    Ok(())
}

/// [`gae_into`] into freshly allocated vectors.
pub fn gae(rollout: &Rollout<'_>, values: &[f32], params: GaeParams) -> Result<Advantages> {
    let len = rollout.steps.saturating_mul(rollout.envs);
    let mut out = Advantages {
        advantages: vec![0.0; len],
        returns: vec![0.0; len],
    };
    gae_into(
        rollout,
        values,
        params,
        &mut out.advantages,
        &mut out.returns,
    )?;
    Ok(out)
}

struct RowInputs<'a> {
    rewards: &'a [f32],
    values: &'a [f32],
    terminated: &'a [bool],
    truncated: &'a [bool],
    final_values: &'a [f32],
    next_values: &'a [f32],
}

/// Per-step episode-boundary coefficients: (weight of the bootstrap value, the bootstrap value,
/// weight of the carried trace).
#[inline(always)]
fn boundary<const BOOTSTRAP_TRUNCATION: bool>(
    terminated: bool,
    truncated: bool,
    final_value: f32,
    next_value: f32,
) -> (f64, f64, f64) {
    let goes_on = if terminated || truncated { 0.0 } else { 1.0 };
    if BOOTSTRAP_TRUNCATION {
        let bootstraps = if terminated { 0.0 } else { 1.0 };
        let value = if truncated && !terminated {
            final_value
        } else {
            next_value
        };
        (bootstraps, f64::from(value), goes_on)
    } else {
        (goes_on, f64::from(next_value), goes_on)
    }
}

/// One step of the backward recursion across all envs; a flat loop over N that vectorises.
#[inline(always)]
fn gae_row<const BOOTSTRAP_TRUNCATION: bool>(
    rows: &RowInputs<'_>,
    gamma: f64,
    gamma_lambda: f64,
    carry: &mut [f64],
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    let n = carry.len();
    let (rewards, values, terminated, truncated) = (
        &rows.rewards[..n],
        &rows.values[..n],
        &rows.terminated[..n],
        &rows.truncated[..n],
    );
    let (final_values, next_values) = (&rows.final_values[..n], &rows.next_values[..n]);
    let (advantages, returns) = (&mut advantages[..n], &mut returns[..n]);
    for i in 0..n {
        let (bootstraps, next, goes_on) = boundary::<BOOTSTRAP_TRUNCATION>(
            terminated[i],
            truncated[i],
            final_values[i],
            next_values[i],
        );
        let value = f64::from(values[i]);
        let delta = f64::from(rewards[i]) + gamma * bootstraps * next - value;
        let advantage = delta + gamma_lambda * goes_on * carry[i];
        carry[i] = advantage;
        advantages[i] = advantage as f32;
        returns[i] = (advantage + value) as f32;
    }
}

/// Discounted returns `R[t] = rewards[t] + γ · (value of what follows t)` written into `returns`
/// (`[T, N]`), with the flag and bootstrap conventions of the module docs (a Monte-Carlo return
/// passes zeros as `next_values`). The recursion carries f64 per env.
pub fn discounted_returns_into(
    rollout: &Rollout<'_>,
    gamma: f32,
    truncation: Truncation,
    returns: &mut [f32],
) -> Result<()> {
    check_unit_interval("gamma", gamma)?;
    rollout.validate(truncation)?;
    let n = rollout.envs;
    check_len(
        "returns (output)",
        returns.len(),
        rollout.steps * n,
        &format!("[T={}, N={n}]", rollout.steps),
    )?;
    let gamma = f64::from(gamma);
    let mut carry: Vec<f64> = rollout.next_values.iter().map(|&v| f64::from(v)).collect();
    for t in (0..rollout.steps).rev() {
        let rewards = rollout.row(rollout.rewards, t);
        let terminated = rollout.row(rollout.terminated, t);
        let truncated = rollout.row(rollout.truncated, t);
        let final_values = rollout
            .final_values
            .map_or(rollout.next_values, |f| rollout.row(f, t));
        let out = &mut returns[t * n..(t + 1) * n];
        let bootstrap_truncation = truncation == Truncation::Bootstrap;
        for i in 0..n {
            let (term, trunc) = (terminated[i], truncated[i]);
            let following = if term || (trunc && !bootstrap_truncation) {
                0.0
            } else if trunc {
                f64::from(final_values[i])
            } else {
                carry[i]
            };
            let ret = f64::from(rewards[i]) + gamma * following;
            carry[i] = ret;
            out[i] = ret as f32;
        }
    }
    Ok(())
}

/// [`discounted_returns_into`] into a freshly allocated vector.
pub fn discounted_returns(
    rollout: &Rollout<'_>,
    gamma: f32,
    truncation: Truncation,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0; rollout.steps.saturating_mul(rollout.envs)];
    discounted_returns_into(rollout, gamma, truncation, &mut out)?;
    Ok(out)
}
