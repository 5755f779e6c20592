//! Naive float64 references: the oracles of the tests and the baselines of the benchmarks.
//! Written for clarity (one element at a time, explicit cases), not speed. They assume inputs
//! the kernels accept (they may panic on others, such as a truncation without final values).

use crate::slice::advantage::{GaeParams, Rollout, Truncation};

/// What follows step `t` of env `n`: `(value to bootstrap from, whether the λ-trace is cut)`.
fn following(
    rollout: &Rollout<'_>,
    values: &[f32],
    truncation: Truncation,
    t: usize,
    n: usize,
) -> (f64, bool) {
    let i = t * rollout.envs + n;
    if rollout.terminated[i] {
        (0.0, true)
    } else if rollout.truncated[i] {
        match truncation {
            Truncation::AsTermination => (0.0, true),
            Truncation::Bootstrap => {
                let final_values = rollout.final_values.expect("final_values for truncation");
                (f64::from(final_values[i]), true)
            }
        }
    } else if t + 1 < rollout.steps {
        (f64::from(values[i + rollout.envs]), false)
    } else {
        (f64::from(rollout.next_values[n]), false)
    }
}

/// GAE, env by env: `(advantages, returns)`, each `[T, N]`.
pub fn gae(rollout: &Rollout<'_>, values: &[f32], params: GaeParams) -> (Vec<f64>, Vec<f64>) {
    let (steps, envs) = (rollout.steps, rollout.envs);
    let gamma = f64::from(params.gamma);
    let lambda = f64::from(params.lambda);
    let mut advantages = vec![0.0; steps * envs];
    for n in 0..envs {
        let mut later = 0.0;
        for t in (0..steps).rev() {
            let i = t * envs + n;
            let (next_value, cut) = following(rollout, values, params.truncation, t, n);
            let delta = f64::from(rollout.rewards[i]) + gamma * next_value - f64::from(values[i]);
            later = if cut {
                delta
            } else {
                delta + gamma * lambda * later
            };
            advantages[i] = later;
        }
    }
    let returns = advantages
        .iter()
        .zip(values)
        .map(|(a, &v)| a + f64::from(v))
        .collect();
    (advantages, returns)
}

/// Discounted returns, env by env, `[T, N]`.
pub fn discounted_returns(rollout: &Rollout<'_>, gamma: f32, truncation: Truncation) -> Vec<f64> {
    let (steps, envs) = (rollout.steps, rollout.envs);
    let gamma = f64::from(gamma);
    let mut returns = vec![0.0; steps * envs];
    for n in 0..envs {
        let mut later = f64::from(rollout.next_values[n]);
        for t in (0..steps).rev() {
            let i = t * envs + n;
            let terminated = rollout.terminated[i];
            let truncated = rollout.truncated[i];
            let next = if terminated {
                0.0
            } else if truncated {
                match truncation {
                    Truncation::AsTermination => 0.0,
                    Truncation::Bootstrap => {
                        f64::from(rollout.final_values.expect("final_values")[i])
                    }
                }
            } else {
                later
            };
            later = f64::from(rollout.rewards[i]) + gamma * next;
            returns[i] = later;
        }
    }
    returns
}

/// Mean and population variance of each column of `rows × dim` samples (two passes).
pub fn column_mean_var(samples: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = samples.len() / dim;
    let mut mean = vec![0.0; dim];
    let mut var = vec![0.0; dim];
    for d in 0..dim {
        for r in 0..rows {
            mean[d] += samples[r * dim + d];
        }
        mean[d] /= rows as f64;
        for r in 0..rows {
            var[d] += (samples[r * dim + d] - mean[d]).powi(2);
        }
        var[d] /= rows as f64;
    }
    (mean, var)
}

/// `log softmax(row)[token]` of one row of logits.
pub fn logprob(row: &[f64], token: usize) -> f64 {
    row[token] - logsumexp(row)
}

pub fn logsumexp(row: &[f64]) -> f64 {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `d logprob / d row`: onehot(token) - softmax(row).
pub fn logprob_grad(row: &[f64], token: usize) -> Vec<f64> {
    let lse = logsumexp(row);
    row.iter()
        .enumerate()
        .map(|(v, x)| f64::from(u8::from(v == token)) - (x - lse).exp())
        .collect()
}

/// Entropy of softmax(row); zero-probability entries contribute 0.
pub fn entropy(row: &[f64]) -> f64 {
    let lse = logsumexp(row);
    -row.iter()
        .map(|x| {
            let logp = x - lse;
            let p = logp.exp();
            if p == 0.0 { 0.0 } else { p * logp }
        })
        .sum::<f64>()
}

/// `d entropy / d row`: -p_v (log p_v + H).
pub fn entropy_grad(row: &[f64]) -> Vec<f64> {
    let lse = logsumexp(row);
    let h = entropy(row);
    row.iter()
        .map(|x| {
            let logp = x - lse;
            let p = logp.exp();
            if p == 0.0 { 0.0 } else { -p * (logp + h) }
        })
        .collect()
}

/// Masked mean, `None` when the mask selects nothing.
pub fn masked_mean(values: &[f64], mask: &[bool]) -> Option<f64> {
    let selected: Vec<f64> = values
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(v, _)| *v)
        .collect();
    if selected.is_empty() {
        None
    } else {
        Some(selected.iter().sum::<f64>() / selected.len() as f64)
    }
}

/// Masked variance (Bessel-corrected when `unbiased`), `None` when too few are selected.
pub fn masked_var(values: &[f64], mask: &[bool], unbiased: bool) -> Option<f64> {
    let mean = masked_mean(values, mask)?;
    let selected: Vec<f64> = values
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(v, _)| *v)
        .collect();
    let n = selected.len() as f64;
    let squares: f64 = selected.iter().map(|v| (v - mean).powi(2)).sum();
    if unbiased {
        (selected.len() > 1).then(|| squares / (n - 1.0))
    } else {
        Some(squares / n)
    }
}

/// TRL's masked whitening of every element.
pub fn masked_whiten(values: &[f64], mask: &[bool], shift_mean: bool) -> Option<Vec<f64>> {
    let mean = masked_mean(values, mask)?;
    let var = masked_var(values, mask, true)?;
    let scale = 1.0 / (var + crate::tensor::masked::WHITEN_EPSILON).sqrt();
    Some(
        values
            .iter()
            .map(|v| (v - mean) * scale + if shift_mean { 0.0 } else { mean })
            .collect(),
    )
}

/// KL estimates from `log π(x)` (sampler) and `log π_ref(x)`: `[k1, k2, k3]`.
pub fn kl_estimates(logprob: f64, ref_logprob: f64) -> [f64; 3] {
    let r = ref_logprob - logprob;
    [-r, 0.5 * r * r, r.exp() - 1.0 - r]
}

/// Which entries of a row top-k keeps: those not below the k-th largest value.
pub fn top_k_keep(row: &[f64], k: usize) -> Vec<bool> {
    let mut sorted = row.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k.min(row.len()) - 1];
    row.iter().map(|&x| x >= kth).collect()
}

/// Which entries of a row top-p keeps, with the cumulative probability (ascending order) of
/// each entry so callers can tell decisions at the threshold. Equal values are ordered by index;
/// the kernel, like HF, leaves their order to libtorch's sort, so only the number kept of each
/// value is comparable.
pub fn top_p_keep(row: &[f64], p: f64) -> (Vec<bool>, Vec<f64>) {
    let mut order: Vec<usize> = (0..row.len()).collect();
    // Ascending by value, ties by index (a stable sort).
    order.sort_by(|&a, &b| row[a].total_cmp(&row[b]).then(a.cmp(&b)));
    let lse = logsumexp(row);
    let mut keep = vec![true; row.len()];
    let mut cumulative_of = vec![0.0; row.len()];
    let mut cumulative = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        cumulative += (row[i] - lse).exp();
        cumulative_of[i] = cumulative;
        let last = rank + 1 == row.len();
        keep[i] = last || cumulative > 1.0 - p;
    }
    (keep, cumulative_of)
}

/// One step of `torch.optim.Adam` (no weight decay) on one parameter, in place, with the
/// gradient divided by `grad_scale` first; `step` is this step's number (1 for the first).
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    param: &mut [f64],
    grad: &[f64],
    exp_avg: &mut [f64],
    exp_avg_sq: &mut [f64],
    step: i32,
    (lr, beta1, beta2, eps): (f64, f64, f64, f64),
    grad_scale: f64,
) {
    let bias1 = 1.0 - beta1.powi(step);
    let bias2 = 1.0 - beta2.powi(step);
    for i in 0..param.len() {
        let g = grad[i] / grad_scale;
        exp_avg[i] = beta1 * exp_avg[i] + (1.0 - beta1) * g;
        exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g;
        let denom = (exp_avg_sq[i] / bias2).sqrt() + eps;
        param[i] -= lr * (exp_avg[i] / bias1) / denom;
    }
}
