//! Per-token KL estimators (Schulman, "Approximating KL Divergence", 2020).
//!
//! For tokens sampled from the policy π, with `logprobs = log π(x)` and
//! `ref_logprobs = log π_ref(x)`, each estimates KL(π ‖ π_ref) (the RLHF penalty direction) from
//! the log-ratio `r = log π_ref(x) - log π(x)`:
//! - k1 = -r: unbiased, high variance, can be negative;
//! - k2 = r² / 2: biased (low bias when π ≈ π_ref), low variance, non-negative;
//! - k3 = (e^r - 1) - r: unbiased, low variance, non-negative (computed as `expm1(r) - r`).

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::{require_float, require_same_shape};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    K1,
    K2,
    K3,
}

/// The estimate per token, elementwise over two log-prob tensors of one shape (see the module
/// docs for the direction). Differentiable through autograd.
pub fn kl_per_token(
    logprobs: &Tensor,
    ref_logprobs: &Tensor,
    estimator: KlEstimator,
) -> Result<Tensor> {
    require_float("logprobs", logprobs)?;
    require_float("ref_logprobs", ref_logprobs)?;
    require_same_shape("ref_logprobs", ref_logprobs, "logprobs", logprobs)?;
    let log_ratio = ref_logprobs.f_sub(logprobs)?;
    Ok(match estimator {
        KlEstimator::K1 => log_ratio.f_neg()?,
        KlEstimator::K2 => log_ratio.f_square()?.f_mul_scalar(0.5)?,
        KlEstimator::K3 => log_ratio.f_expm1()?.f_sub(&log_ratio)?,
    })
}
