//! ReMax (Li et al., 2024) as its reference implementation computes it (liziniu/ReMax,
//! `step3_rlhf_finetuning/remax_trainer.py`): per prompt a sampled response y and a greedy ȳ;
//! the sequence reward r(x, y) − r(x, ȳ), clipped, at the last response token (discounted
//! backwards by γ); each token's own k1 KL penalty −β (log π − log π_ref) added; the REINFORCE
//! loss −Σ returns · log π / Σ mask; no critic; one optimiser step per batch. Two opt-in
//! extensions for sparse rule rewards: several samples per prompt against the one greedy
//! baseline, and skipping the responses that tie with it.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::Result;

/// ReMax's settings; defaults are the reference implementation's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemaxConfig {
    /// β of the per-token KL penalty (the reference's `--kl_ctl`, 0.1).
    pub kl_coef: f64,
    /// The advantage r(y) − r(ȳ) is clipped to ±this (the reference's `clip_reward_value`, 5).
    pub reward_clip: f64,
    /// Discount of the sequence reward over earlier tokens (the reference's `--gamma`, 1).
    pub gamma: f64,
    /// Sampled responses per prompt (the reference: 1), each scored against the prompt's one
    /// greedy response; the prompt is read once for all of them and the greedy one.
    pub samples_per_prompt: usize,
    /// Leave responses whose advantage r(y) − r(ȳ) is exactly 0 out of the update (their only
    /// gradient is the KL penalty's): with a 0/1 rule reward most responses tie with the
    /// greedy one, and this spends the reference and update passes on those that carry signal
    /// (the reference: false, every response is trained on).
    pub skip_ties: bool,
}

impl Default for RemaxConfig {
    fn default() -> Self {
        Self {
            kl_coef: 0.1,
            reward_clip: 5.0,
            gamma: 1.0,
            samples_per_prompt: 1,
            skip_ties: false,
        }
    }
}

/// Per-token returns `[B, N]` (0 beyond each response): for token i of a response of length L,
/// −β (logπ_i − logπref_i) + γ^(L−i) · clip(r − r̄, ±c), as the reference's `compute_returns`
/// (whose KL term is the token's own, not a sum). `logprobs`, `ref_logprobs`, `mask` `[B, N]`;
/// `reward`, `baseline` `[B]`.
pub fn returns(
    logprobs: &Tensor,
    ref_logprobs: &Tensor,
    mask: &Tensor,
    reward: &Tensor,
    baseline: &Tensor,
    config: &RemaxConfig,
) -> Result<Tensor> {
    let device = logprobs.device();
    let mask = mask.f_to_kind(Kind::Float)?;
    let n = logprobs.size()[1];
    let advantage = reward
        .f_to_device(device)?
        .f_sub(&baseline.f_to_device(device)?)?
        .f_clamp(-config.reward_clip, config.reward_clip)?
        .f_to_kind(Kind::Float)?;
    let lengths = mask.f_sum_dim_intlist(1, true, Kind::Float)?;
    let positions = Tensor::f_arange(n, (Kind::Float, device))?.f_unsqueeze(0)?;
    // γ^(L − i): γ at the last token, as the reference multiplies before adding.
    let discount = Tensor::f_full([1], config.gamma, (Kind::Float, device))?
        .f_pow(&lengths.f_sub(&positions)?)?;
    let kl = logprobs
        .f_detach()?
        .f_sub(&ref_logprobs.f_detach()?)?
        .f_mul_scalar(-config.kl_coef)?;
    Ok(kl
        .f_add(&discount.f_mul(&advantage.f_unsqueeze(1)?)?)?
        .f_mul(&mask)?)
}

/// The REINFORCE loss Σ −returns · logπ · mask / Σ mask (gradients through `logprobs` only).
pub fn loss(logprobs: &Tensor, returns: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.f_to_kind(Kind::Float)?;
    let count = mask.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
    Ok(returns
        .f_detach()?
        .f_mul(logprobs)?
        .f_mul(&mask)?
        .f_sum(Kind::Float)?
        .f_neg()?
        .f_div(&count)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's double loop, in f64.
    fn naive_returns(
        lp: &[Vec<f64>],
        rlp: &[Vec<f64>],
        lengths: &[usize],
        advantage: &[f64],
        c: &RemaxConfig,
    ) -> Vec<Vec<f64>> {
        let n = lp[0].len();
        let mut out = vec![vec![0.0; n]; lp.len()];
        for j in 0..lp.len() {
            let mut cumulative = advantage[j].clamp(-c.reward_clip, c.reward_clip);
            for i in (0..lengths[j]).rev() {
                cumulative *= c.gamma;
                out[j][i] = -c.kl_coef * (lp[j][i] - rlp[j][i]) + cumulative;
            }
        }
        out
    }

    #[test]
    fn returns_match_the_reference_loop() {
        let config = RemaxConfig {
            kl_coef: 0.2,
            reward_clip: 1.5,
            gamma: 0.9,
            ..RemaxConfig::default()
        };
        let lp = vec![vec![-0.5, -1.0, -2.0, 0.0], vec![-0.1, -0.3, -0.2, -0.7]];
        let rlp = vec![vec![-0.7, -0.9, -1.0, 0.0], vec![-0.2, -0.2, -0.4, -0.5]];
        let lengths = [3usize, 4];
        let (reward, baseline) = ([2.0f64, 0.25], [-1.0f64, 0.5]);
        let flat = |v: &Vec<Vec<f64>>| {
            Tensor::from_slice(&v.concat())
                .view([2, 4])
                .to_kind(Kind::Float)
        };
        let mask = Tensor::from_slice(&[1i64, 1, 1, 0, 1, 1, 1, 1]).view([2, 4]);
        let got = returns(
            &flat(&lp),
            &flat(&rlp),
            &mask,
            &Tensor::from_slice(&reward),
            &Tensor::from_slice(&baseline),
            &config,
        )
        .unwrap();
        let advantage: Vec<f64> = reward.iter().zip(baseline).map(|(r, b)| r - b).collect();
        let want = naive_returns(&lp, &rlp, &lengths, &advantage, &config);
        for (j, row) in want.iter().enumerate() {
            for (i, w) in row.iter().enumerate() {
                let g = got.double_value(&[j as i64, i as i64]);
                assert!((g - w).abs() < 1e-5, "[{j},{i}] {g} vs {w}");
            }
        }
    }

    #[test]
    fn loss_gradient_is_minus_returns_over_tokens() {
        let lp = Tensor::from_slice(&[-1.0f32, -2.0, -3.0, -4.0])
            .view([2, 2])
            .set_requires_grad(true);
        let ret = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let mask = Tensor::from_slice(&[1i64, 1, 1, 0]).view([2, 2]);
        let l = loss(&lp, &ret, &mask).unwrap();
        assert!((l.double_value(&[]) - (1.0 + 4.0 + 9.0) / 3.0).abs() < 1e-6);
        l.backward();
        let g = Vec::<f32>::try_from(lp.grad().view([-1])).unwrap();
        assert_eq!(g, [-1.0 / 3.0, -2.0 / 3.0, -1.0, 0.0]);
    }
}
