//! GAE and discounted returns on `[T, N]` tensors, for rollouts that live on the GPU: the same
//! layout, flag convention and truncation handling as [`crate::slice::advantage`] (read its
//! module docs). The coefficients are built for the whole rollout at once and the backward
//! recursion costs one fused `addcmul` per step; it runs in f64 and returns the values' kind.

use tch::{Kind, Tensor};

use super::checks::{as_flags, require_float, require_same_shape};
use crate::error::{Error, Result, shape_error};
use crate::slice::advantage::{GaeParams, Truncation};

/// One rollout on a device: every tensor `[T, N]` except `next_values` (`[N]`). Flags are bool
/// (any other kind is read as `!= 0`).
#[derive(Debug)]
pub struct TensorRollout<'a> {
    pub rewards: &'a Tensor,
    pub terminated: &'a Tensor,
    pub truncated: &'a Tensor,
    /// Read only where `truncated && !terminated` with [`Truncation::Bootstrap`].
    pub final_values: Option<&'a Tensor>,
    pub next_values: &'a Tensor,
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

/// The rollout in f64 with its boundary masks.
struct Prepared {
    steps: i64,
    rewards: Tensor,
    /// Whether step t's reward is followed by a bootstrap value (not terminated, and not
    /// truncated when truncation counts as termination).
    bootstraps: Tensor,
    /// Whether the episode goes on into t+1 (neither flag).
    goes_on: Tensor,
    /// Where a truncated step takes `final_values` as its bootstrap.
    truncated_bootstrap: Option<Tensor>,
    final_values: Option<Tensor>,
    next_values: Tensor,
}

fn prepare(rollout: &TensorRollout<'_>, truncation: Truncation) -> Result<Prepared> {
    require_float("rewards", rollout.rewards)?;
    let size = rollout.rewards.size();
    if size.len() != 2 {
        return Err(shape_error("rewards", "[T, N]", format!("{size:?}")));
    }
    require_same_shape("terminated", rollout.terminated, "rewards", rollout.rewards)?;
    require_same_shape("truncated", rollout.truncated, "rewards", rollout.rewards)?;
    if rollout.next_values.size() != [size[1]] {
        return Err(shape_error(
            "next_values",
            format!("[{}] (N)", size[1]),
            format!("{:?}", rollout.next_values.size()),
        ));
    }
    require_float("next_values", rollout.next_values)?;
    let terminated = as_flags(rollout.terminated)?;
    let truncated = as_flags(rollout.truncated)?;
    let done = terminated.f_logical_or(&truncated)?;
    let goes_on = done.f_logical_not()?.f_to_kind(Kind::Double)?;
    let (bootstraps, truncated_bootstrap, final_values) = match truncation {
        Truncation::AsTermination => (goes_on.shallow_clone(), None, None),
        Truncation::Bootstrap => {
            let truncated_only = truncated.f_logical_and(&terminated.f_logical_not()?)?;
            let final_values = match rollout.final_values {
                Some(values) => {
                    require_float("final_values", values)?;
                    require_same_shape("final_values", values, "rewards", rollout.rewards)?;
                    Some(values.f_to_kind(Kind::Double)?)
                }
                None => {
                    if truncated_only.f_any()?.f_int64_value(&[])? != 0 {
                        let first = truncated_only.f_nonzero()?;
                        return Err(Error::MissingFinalValues {
                            step: first.f_int64_value(&[0, 0])? as usize,
                            env: first.f_int64_value(&[0, 1])? as usize,
                        });
                    }
                    None
                }
            };
            let bootstraps = terminated.f_logical_not()?.f_to_kind(Kind::Double)?;
            (bootstraps, Some(truncated_only), final_values)
        }
    };
    Ok(Prepared {
        steps: size[0],
        rewards: rollout.rewards.f_to_kind(Kind::Double)?,
        bootstraps,
        goes_on,
        truncated_bootstrap,
        final_values,
        next_values: rollout.next_values.f_to_kind(Kind::Double)?,
    })
}

/// `x[t] = a[t] + c[t] * x[t + 1]` backwards from `x[T] = last`, one fused op per step.
fn backward_recursion(a: &Tensor, c: &Tensor, last: &Tensor) -> Result<Tensor> {
    let steps = a.size()[0];
    let out = a.f_empty_like()?;
    let mut following = last.shallow_clone();
    for t in (0..steps).rev() {
        let row = out.f_select(0, t)?;
        // Writes into `out` through the row view; the returned alias is not needed.
        let _ = a
            .f_select(0, t)?
            .f_addcmul_out(&row, &c.f_select(0, t)?, &following)?;
        following = row;
    }
    Ok(out)
}

/// GAE on tensors: `(advantages, returns)`, each `[T, N]` in the values' kind.
pub fn gae(
    rollout: &TensorRollout<'_>,
    values: &Tensor,
    params: GaeParams,
) -> Result<(Tensor, Tensor)> {
    check_unit_interval("gamma", params.gamma)?;
    check_unit_interval("lambda", params.lambda)?;
    let kind = require_float("values", values)?;
    require_same_shape("values", values, "rewards", rollout.rewards)?;
    let p = prepare(rollout, params.truncation)?;
    if p.steps == 0 {
        return Ok((values.f_zeros_like()?, values.f_zeros_like()?));
    }
    let gamma = f64::from(params.gamma);
    let values64 = values.f_to_kind(Kind::Double)?;
    // The value after step t when the episode goes on: values[t + 1], then next_values.
    let following = Tensor::f_cat(
        &[
            values64.f_narrow(0, 1, p.steps - 1)?,
            p.next_values.f_unsqueeze(0)?,
        ],
        0,
    )?;
    let bootstrap_value = match (&p.truncated_bootstrap, &p.final_values) {
        (Some(mask), Some(final_values)) => final_values.f_where_self(mask, &following)?,
        _ => following,
    };
    let delta = p
        .rewards
        .f_add(&p.bootstraps.f_mul(&bootstrap_value)?.f_mul_scalar(gamma)?)?
        .f_sub(&values64)?;
    let trace = p.goes_on.f_mul_scalar(gamma * f64::from(params.lambda))?;
    let zeros = p.next_values.f_zeros_like()?;
    let advantages = backward_recursion(&delta, &trace, &zeros)?;
    let returns = advantages.f_add(&values64)?;
    Ok((advantages.f_to_kind(kind)?, returns.f_to_kind(kind)?))
}

/// Discounted returns on tensors, `[T, N]` in the rewards' kind.
pub fn discounted_returns(
    rollout: &TensorRollout<'_>,
    gamma: f32,
    truncation: Truncation,
) -> Result<Tensor> {
    check_unit_interval("gamma", gamma)?;
    let kind = require_float("rewards", rollout.rewards)?;
    let p = prepare(rollout, truncation)?;
    if p.steps == 0 {
        return Ok(rollout.rewards.f_zeros_like()?);
    }
    let gamma = f64::from(gamma);
    // R[t] = r[t] + γ·final_values[t] where truncation bootstraps, else r[t] + γ·goes_on·R[t+1].
    let immediate = match (&p.truncated_bootstrap, &p.final_values) {
        (Some(mask), Some(final_values)) => {
            let zeros = final_values.f_zeros_like()?;
            p.rewards.f_add(
                &final_values
                    .f_where_self(mask, &zeros)?
                    .f_mul_scalar(gamma)?,
            )?
        }
        _ => p.rewards.shallow_clone(),
    };
    let carried = p.goes_on.f_mul_scalar(gamma)?;
    let returns = backward_recursion(&immediate, &carried, &p.next_values)?;
    Ok(returns.f_to_kind(kind)?)
}
