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
//!
//! With next-step autoreset (hone-envs' `AutoReset::NextStep`, envpool's and gymnasium 1.x's
//! default) a done step returns the episode's final observation and the row after it is a reset
//! row (reward 0, no flags, action ignored). Then pass as `final_values` the values one row
//! later (`values[t + 1]`, `next_values` for the last step: the value of that final
//! observation), and leave the reset rows out of the losses: their advantages and returns are
//! computed but mean nothing. Nothing leaks from a reset row into the done row before it, whose
//! trace is cut.

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
/// `returns` (each `[T, N]`); `values` is `[T, N]`. Runs in f32 (see `gae_row` on accuracy).
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

    let bootstrap = params.truncation == Truncation::Bootstrap;
    let gamma = (params.gamma, params.gamma * params.lambda);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { gae_loop_avx2(rollout, values, bootstrap, gamma, advantages, returns) };
        return Ok(());
    }
    gae_loop(rollout, values, bootstrap, gamma, advantages, returns);
    Ok(())
}

/// The same loop compiled for 8-wide AVX2, chosen at run time: the crate is built for baseline
/// x86-64 (4-wide SSE2), and GAE is the one kernel here whose speed is held to a bar.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gae_loop_avx2(
    rollout: &Rollout<'_>,
    values: &[f32],
    bootstrap: bool,
    gamma: (f32, f32),
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    gae_loop(rollout, values, bootstrap, gamma, advantages, returns);
}

/// The backward pass over steps, on validated inputs; `gamma` is (γ, γλ).
#[inline(always)]
fn gae_loop(
    rollout: &Rollout<'_>,
    values: &[f32],
    bootstrap: bool,
    (gamma, gamma_lambda): (f32, f32),
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    let n = rollout.envs;
    let mut carry = vec![0.0f32; n];
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
        if bootstrap {
            gae_row::<true>(&rows, gamma, gamma_lambda, &mut carry, out_adv, out_ret);
        } else {
            gae_row::<false>(&rows, gamma, gamma_lambda, &mut carry, out_adv, out_ret);
        }
    }
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

/// `if flag { a } else { b }` without a branch, so that the loop over envs vectorises even on
/// baseline x86-64 (SSE2 has no blend; LLVM keeps bit masks as they are).
#[inline(always)]
fn select(flag: u32, a: f32, b: f32) -> f32 {
    let mask = (flag & 1).wrapping_neg();
    f32::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// One step of the backward recursion across all envs: a flat, branch-free loop over N.
///
/// It runs in f32, 4 to 8 envs per instruction: the recursion `A = δ + γλ·A'` is a contraction,
/// so its rounding error stays below about `ε_f32 · max|A| / (1 - γλ)` (and `T · ε_f32 · max|A|`
/// when γλ = 1), within the 1e-5 relative bar for PPO's horizons. An f64 carry halves the width
/// and measured 2.5x slower.
#[inline(always)]
fn gae_row<const BOOTSTRAP_TRUNCATION: bool>(
    rows: &RowInputs<'_>,
    gamma: f32,
    gamma_lambda: f32,
    carry: &mut [f32],
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
        let term = u32::from(terminated[i]);
        let trunc = u32::from(truncated[i]);
        let goes_on = (1 - term) & (1 - trunc);
        let (bootstraps, next) = if BOOTSTRAP_TRUNCATION {
            // Where truncated (and not terminated) the final observation's value; it is never
            // read elsewhere, not even multiplied by 0, so NaN there does no harm.
            let next = select(trunc & (1 - term), final_values[i], next_values[i]);
            (1 - term, next)
        } else {
            (goes_on, next_values[i])
        };
        let value = values[i];
        let delta = rewards[i] + gamma * bootstraps as f32 * next - value;
        let advantage = delta + gamma_lambda * goes_on as f32 * carry[i];
        carry[i] = advantage;
        advantages[i] = advantage;
        returns[i] = advantage + value;
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
    let bootstrap = truncation == Truncation::Bootstrap;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { returns_loop_avx2(rollout, f64::from(gamma), bootstrap, returns) };
        return Ok(());
    }
    returns_loop(rollout, f64::from(gamma), bootstrap, returns);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn returns_loop_avx2(rollout: &Rollout<'_>, gamma: f64, bootstrap: bool, returns: &mut [f32]) {
    returns_loop(rollout, gamma, bootstrap, returns);
}

/// The backward pass of discounted returns on validated inputs, branch-free over envs. It
/// carries f64: an undiscounted return sums the whole horizon, with no contraction to bound
/// f32 rounding.
#[inline(always)]
fn returns_loop(rollout: &Rollout<'_>, gamma: f64, bootstrap: bool, returns: &mut [f32]) {
    let n = rollout.envs;
    let mut carry: Vec<f64> = rollout.next_values.iter().map(|&v| f64::from(v)).collect();
    for t in (0..rollout.steps).rev() {
        let rewards = rollout.row(rollout.rewards, t);
        let terminated = rollout.row(rollout.terminated, t);
        let truncated = rollout.row(rollout.truncated, t);
        // Never read where it is absent: validate() found no step that needs it.
        let final_values = rollout
            .final_values
            .map_or(rollout.next_values, |f| rollout.row(f, t));
        let out = &mut returns[t * n..(t + 1) * n];
        let carry = &mut carry[..n];
        let (rewards, terminated, truncated) = (&rewards[..n], &terminated[..n], &truncated[..n]);
        let final_values = &final_values[..n];
        for i in 0..n {
            let term = u32::from(terminated[i]);
            let trunc = u32::from(truncated[i]);
            let goes_on = (1 - term) & (1 - trunc);
            // R = r + γ·(final value where truncation bootstraps, else goes_on·R').
            let use_final = u32::from(bootstrap) & trunc & (1 - term);
            let final_value = select(use_final, final_values[i], 0.0);
            let following = f64::from(final_value) + f64::from(goes_on) * carry[i];
            let ret = f64::from(rewards[i]) + gamma * following;
            carry[i] = ret;
            out[i] = ret as f32;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable loop (what a CPU without AVX2 runs) and the AVX2 one agree bit for bit: the
    /// arithmetic per env is the same, only the vector width differs.
    #[test]
    fn portable_and_avx2_loops_agree() {
        // On a CPU without AVX2 both sides run the portable loop and the test still holds.
        let (steps, envs) = (7, 37);
        let len = steps * envs;
        let wave = |i: usize, k: f32| ((i as f32 * k).sin() * 3.0).fract();
        let rewards: Vec<f32> = (0..len).map(|i| wave(i, 1.3)).collect();
        let values: Vec<f32> = (0..len).map(|i| wave(i, 2.1)).collect();
        let final_values: Vec<f32> = (0..len).map(|i| wave(i, 0.7)).collect();
        let terminated: Vec<bool> = (0..len).map(|i| i % 11 == 3).collect();
        let truncated: Vec<bool> = (0..len).map(|i| i % 7 == 2).collect();
        let next_values: Vec<f32> = (0..envs).map(|i| wave(i, 0.3)).collect();
        let rollout = Rollout {
            steps,
            envs,
            rewards: &rewards,
            terminated: &terminated,
            truncated: &truncated,
            final_values: Some(&final_values),
            next_values: &next_values,
        };
        for bootstrap in [true, false] {
            let mut portable = (vec![0.0; len], vec![0.0; len]);
            let mut dispatched = (vec![0.0; len], vec![0.0; len]);
            let truncation = if bootstrap {
                Truncation::Bootstrap
            } else {
                Truncation::AsTermination
            };
            let params = GaeParams {
                gamma: 0.99,
                lambda: 0.95 / 0.99,
                truncation,
            };
            // γλ must be the same f32 in both: pass it through the params' product.
            let gamma_lambda = params.gamma * params.lambda;
            gae_loop(
                &rollout,
                &values,
                bootstrap,
                (0.99, gamma_lambda),
                &mut portable.0,
                &mut portable.1,
            );
            gae_into(
                &rollout,
                &values,
                params,
                &mut dispatched.0,
                &mut dispatched.1,
            )
            .unwrap();
            assert_eq!(portable, dispatched);

            let mut portable = vec![0.0; len];
            returns_loop(&rollout, 0.99f32.into(), bootstrap, &mut portable);
            let dispatched = discounted_returns(&rollout, 0.99, truncation).unwrap();
            assert_eq!(portable, dispatched);
        }
    }
}
