//! PPO for language models, as TRL's `PPOTrainer` and DeepSpeed-Chat compute it: per-token
//! rewards −β (log π − log π_ref) with the sequence score added at the last response token;
//! values from a critic (a separate backbone with a scalar head, initialised like TRL's value
//! model, or a value head on the policy's own hidden states); GAE over the response tokens;
//! whitened advantages; clipped policy and value losses; epochs over minibatches; a fixed or
//! adaptive (Ziegler et al.) KL coefficient.

use std::path::{Path, PathBuf};

use hone_kernels::tensor::advantage::{TensorRollout, gae};
use hone_kernels::{GaeParams, Truncation, masked_mean, masked_whiten};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use std::time::Instant;

use crate::error::{Error, Result};
use crate::generate::{Generated, generate};
use crate::model::CausalLm;
use crate::reward::{RewardModel, SCORE, ValueHead};
use crate::rollout::{
    RewardSource, check_finite, decode_responses, logprobs_of_hidden, response_hidden,
    response_logprobs, select_rows,
};
use crate::run::{RlhfStep, RlhfTiming, RunConfig, Tokens};
use crate::tokenizer::{Tokenizer, left_pad};
use crate::train::Optimiser;

/// Where the values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticKind {
    /// Its own backbone with a scalar head (TRL's value model; DeepSpeed-Chat's critic).
    Separate,
    /// A value head on the policy's hidden states (one backbone, one forward).
    Shared,
}

/// PPO's settings; defaults are TRL's `PPOConfig` (and its legacy adaptive-KL controller's
/// target and horizon).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoConfig {
    /// β of the per-token k1 KL penalty (TRL `kl_coef` 0.05); the initial β when adaptive.
    pub kl_coef: f64,
    /// Adapt β towards `kl_target` (Ziegler et al. 2019, TRL's legacy `adap_kl_ctrl`).
    pub adaptive_kl: bool,
    /// The KL (summed over a response, averaged over the batch) the adaptive β aims at.
    pub kl_target: f64,
    /// Responses over which the adaptive β may change by up to 20%.
    pub kl_horizon: f64,
    /// Passes over each batch of responses (TRL `num_ppo_epochs` 4).
    pub epochs: usize,
    /// Minibatches per pass, one optimiser step each (TRL `num_mini_batches` 1).
    pub minibatches: usize,
    /// Policy ratio clip ε (TRL `cliprange` 0.2).
    pub clip_range: f64,
    /// Value clip around the rollout's values (TRL `cliprange_value` 0.2).
    pub value_clip_range: f64,
    /// Weight of the value loss (TRL `vf_coef` 0.1).
    pub vf_coef: f64,
    /// GAE's γ and λ over response tokens (TRL 1.0 and 0.95).
    pub gamma: f64,
    pub lam: f64,
    /// Whiten the per-token rewards before GAE (TRL `whiten_rewards`, off).
    pub whiten_rewards: bool,
    /// Clip the sequence score to ±this (DeepSpeed-Chat clips at 5; TRL does not clip).
    pub reward_clip: Option<f64>,
    pub critic: CriticKind,
    /// The separate critic's starting checkpoint: a reward model (its score head becomes the
    /// value head, as TRL does) or a causal LM (a new head). Default: the reward model when
    /// `reward.kind = "model"`, else the policy.
    pub critic_model: Option<PathBuf>,
    /// The critic's learning rate (default: the policy's).
    pub critic_learning_rate: Option<f64>,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            kl_coef: 0.05,
            adaptive_kl: false,
            kl_target: 6.0,
            kl_horizon: 10000.0,
            epochs: 4,
            minibatches: 1,
            clip_range: 0.2,
            value_clip_range: 0.2,
            vf_coef: 0.1,
            gamma: 1.0,
            lam: 0.95,
            whiten_rewards: false,
            reward_clip: None,
            critic: CriticKind::Separate,
            critic_model: None,
            critic_learning_rate: None,
        }
    }
}

/// Per-token rewards `[B, N]`: −β (logπ − logπref) at every response token plus the sequence
/// score (clipped when `reward_clip` is set) at the last one; 0 beyond each response.
pub fn token_rewards(
    logprobs: &Tensor,
    ref_logprobs: &Tensor,
    mask: &Tensor,
    scores: &Tensor,
    kl_coef: f64,
    reward_clip: Option<f64>,
) -> Result<Tensor> {
    let device = logprobs.device();
    let maskf = mask.f_to_kind(Kind::Float)?;
    let mut scores = scores.f_to_device(device)?.f_to_kind(Kind::Float)?;
    if let Some(c) = reward_clip {
        scores = scores.f_clamp(-c, c)?;
    }
    let lengths = mask.f_sum_dim_intlist(1, true, Kind::Int64)?;
    // One-hot of each row's last response token (none for an empty response).
    let last = lengths.f_sub_scalar(1)?.f_clamp_min(0)?;
    let positions = Tensor::f_arange(logprobs.size()[1], (Kind::Int64, device))?.f_unsqueeze(0)?;
    let at_last = positions
        .f_eq_tensor(&last)?
        .f_logical_and(&lengths.f_gt(0)?)?
        .f_to_kind(Kind::Float)?;
    let kl = logprobs
        .f_detach()?
        .f_sub(&ref_logprobs.f_detach()?)?
        .f_mul_scalar(-kl_coef)?;
    Ok(kl
        .f_mul(&maskf)?
        .f_add(&at_last.f_mul(&scores.f_unsqueeze(1)?)?)?)
}

/// GAE over response tokens: `(advantages, returns)` `[B, N]`, with values and rewards read as 0
/// beyond each response (so the last token bootstraps from 0), as TRL's loop computes them.
pub fn advantages(
    rewards: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    gamma: f64,
    lam: f64,
) -> Result<(Tensor, Tensor)> {
    let maskf = mask.f_to_kind(Kind::Float)?;
    // hone-kernels' GAE is step-major ([T, N]): tokens are the steps, rows the environments.
    let r = rewards.f_mul(&maskf)?.f_transpose(0, 1)?.f_contiguous()?;
    let v = values
        .f_detach()?
        .f_mul(&maskf)?
        .f_transpose(0, 1)?
        .f_contiguous()?;
    let flags = r.f_zeros_like()?.f_to_kind(Kind::Bool)?;
    let next_values = Tensor::f_zeros([r.size()[1]], (Kind::Float, r.device()))?;
    let (adv, ret) = gae(
        &TensorRollout {
            rewards: &r,
            terminated: &flags,
            truncated: &flags,
            final_values: None,
            next_values: &next_values,
        },
        &v,
        GaeParams {
            gamma: gamma as f32,
            lambda: lam as f32,
            truncation: Truncation::AsTermination,
        },
    )?;
    Ok((
        adv.f_transpose(0, 1)?.f_mul(&maskf)?,
        ret.f_transpose(0, 1)?.f_mul(&maskf)?,
    ))
}

/// Advantages whitened over the response tokens (masked positions 0).
pub fn whiten_advantages(advantages: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let maskf = mask.f_to_kind(Kind::Float)?;
    Ok(masked_whiten(advantages, &maskf, true)?.f_mul(&maskf)?)
}

/// The clipped surrogate loss and its diagnostics.
pub struct PolicyLoss {
    pub loss: Tensor,
    /// Fraction of tokens whose ratio was clipped.
    pub clip_fraction: f64,
    /// Mean of ½ (log ratio)², TRL's `approxkl`.
    pub approx_kl: f64,
}

/// `masked_mean(max(−A r, −A clip(r, 1 ± ε)))` with r = exp(logπ − logπ_old).
pub fn policy_loss(
    logprobs: &Tensor,
    old_logprobs: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip_range: f64,
) -> Result<PolicyLoss> {
    let maskf = mask.f_to_kind(Kind::Float)?;
    let log_ratio = logprobs.f_sub(&old_logprobs.f_detach()?)?;
    let ratio = log_ratio.f_exp()?;
    let adv = advantages.f_detach()?;
    let unclipped = adv.f_neg()?.f_mul(&ratio)?;
    let clipped = adv
        .f_neg()?
        .f_mul(&ratio.f_clamp(1.0 - clip_range, 1.0 + clip_range)?)?;
    let loss = masked_mean(&unclipped.f_maximum(&clipped)?, &maskf)?;
    let clip_fraction = masked_mean(
        &clipped.f_gt_tensor(&unclipped)?.f_to_kind(Kind::Float)?,
        &maskf,
    )?
    .f_double_value(&[])?;
    let approx_kl = masked_mean(
        &log_ratio.f_detach()?.f_square()?.f_mul_scalar(0.5)?,
        &maskf,
    )?
    .f_double_value(&[])?;
    Ok(PolicyLoss {
        loss,
        clip_fraction,
        approx_kl,
    })
}

/// `½ masked_mean(max((V − R)², (V_clipped − R)²))` with V_clipped = V_old + clip(V − V_old, ±c);
/// and the fraction of tokens where the clipped term was the larger.
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip_range: f64,
) -> Result<(Tensor, f64)> {
    let maskf = mask.f_to_kind(Kind::Float)?;
    let old = old_values.f_detach()?;
    let ret = returns.f_detach()?;
    let clipped_values = old.f_add(&values.f_sub(&old)?.f_clamp(-clip_range, clip_range)?)?;
    let unclipped = values.f_sub(&ret)?.f_square()?;
    let clipped = clipped_values.f_sub(&ret)?.f_square()?;
    let loss = masked_mean(&unclipped.f_maximum(&clipped)?, &maskf)?.f_mul_scalar(0.5)?;
    let fraction = masked_mean(
        &clipped.f_gt_tensor(&unclipped)?.f_to_kind(Kind::Float)?,
        &maskf,
    )?
    .f_double_value(&[])?;
    Ok((loss, fraction))
}

/// β: fixed, or adapted after each batch as `β ← β (1 + clip(KL/target − 1, ±0.2) · n/horizon)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlController {
    pub value: f64,
    adaptive: bool,
    target: f64,
    horizon: f64,
}

impl KlController {
    pub fn new(config: &PpoConfig) -> Self {
        Self {
            value: config.kl_coef,
            adaptive: config.adaptive_kl,
            target: config.kl_target,
            horizon: config.kl_horizon,
        }
    }

    /// After a batch of `responses` whose mean summed KL was `kl`.
    pub fn update(&mut self, kl: f64, responses: usize) {
        if self.adaptive && kl.is_finite() {
            let error = (kl / self.target - 1.0).clamp(-0.2, 0.2);
            self.value *= 1.0 + error * responses as f64 / self.horizon;
        }
    }
}

/// PPO's critic while it trains.
pub enum Critic {
    /// A value head on the policy's hidden states; its parameters train with the policy's.
    Shared(ValueHead),
    /// A backbone with a scalar head and its own optimiser.
    Separate {
        model: Box<RewardModel>,
        optimiser: Optimiser,
    },
}

/// The shared value head's file in a checkpoint folder.
pub const VALUE_HEAD_FILE: &str = "value_head.safetensors";
/// The separate critic's folder in a checkpoint folder (sequence-classification layout).
pub const CRITIC_DIR: &str = "critic";
/// The separate critic's optimiser state in a checkpoint folder.
pub const CRITIC_OPTIMISER_FILE: &str = "critic_optimizer.safetensors";

impl Critic {
    /// A separate critic from `dir`: a reward model keeps its score head as the value head (as
    /// TRL's value model starts), a causal LM gets a new one; its parameters become leaves of a
    /// new optimiser.
    pub fn separate(
        dir: &Path,
        device: Device,
        learning_rate: f64,
        eps: f64,
        max_grad_norm: f64,
    ) -> Result<Self> {
        let mut model = match RewardModel::load(dir, device, Kind::Float) {
            Ok(model) => model,
            Err(Error::Tensor { tensor, .. }) if tensor == SCORE => {
                RewardModel::from_causal_lm(dir, device, Kind::Float)?
            }
            Err(err) => return Err(err),
        };
        let (optimiser, leaves) = Optimiser::new(
            model.named_parameters(),
            device,
            learning_rate,
            eps,
            max_grad_norm,
        )?;
        model.set_parameters(leaves, "critic")?;
        Ok(Self::Separate {
            model: Box::new(model),
            optimiser,
        })
    }

    /// The shared value head saved in checkpoint folder `dir`, or a new one when `dir` is none.
    pub fn shared_head(dir: Option<&Path>, hidden: i64, device: Device) -> Result<ValueHead> {
        let Some(dir) = dir else {
            return Ok(ValueHead::new(hidden, device, Kind::Float));
        };
        let path = dir.join(VALUE_HEAD_FILE);
        let mut tensors: std::collections::HashMap<String, Tensor> =
            crate::safetensors::read(&path)?.into_iter().collect();
        let mut take = |name: &str, shape: &[i64]| -> Result<Tensor> {
            let t = tensors.remove(name).ok_or_else(|| Error::Tensor {
                source_name: path.display().to_string(),
                tensor: name.to_owned(),
                message: "missing".into(),
            })?;
            if t.size() != shape {
                return Err(Error::Tensor {
                    source_name: path.display().to_string(),
                    tensor: name.to_owned(),
                    message: format!("has shape {:?}, expected {shape:?}", t.size()),
                });
            }
            Ok(t.f_to_kind(Kind::Float)?.f_to_device(device)?)
        };
        Ok(ValueHead {
            weight: take(ValueHead::WEIGHT, &[1, hidden])?,
            bias: take(ValueHead::BIAS, &[1])?,
        })
    }

    /// Values `[B, N]` of the states before each response token; `policy_hidden` is the
    /// policy's [`response_hidden`] of the same rows (what the shared head reads).
    pub fn values(&self, policy_hidden: &Tensor, generated: &Generated) -> Result<Tensor> {
        let values = match self {
            Critic::Shared(head) => head.values(policy_hidden)?,
            Critic::Separate { model, .. } => {
                model.values_of_hidden(&response_hidden(&model.backbone, generated)?)?
            }
        };
        Ok(values.f_mul(&generated.mask.f_to_kind(Kind::Float)?)?)
    }

    pub fn zero_grad(&mut self) -> Result<()> {
        match self {
            Critic::Shared(_) => Ok(()),
            Critic::Separate { optimiser, .. } => optimiser.zero_grad(),
        }
    }

    /// The separate critic's optimiser step (its gradient norm); the shared head is stepped by
    /// the policy's optimiser.
    pub fn update(&mut self) -> Result<Option<f64>> {
        match self {
            Critic::Shared(_) => Ok(None),
            Critic::Separate { optimiser, .. } => optimiser.update().map(Some),
        }
    }

    /// Parameters, trained ones only.
    pub fn parameter_count(&self) -> i64 {
        CausalLm::count_parameters(&match self {
            Critic::Shared(head) => head.named_parameters(),
            Critic::Separate { model, .. } => model.named_parameters(),
        })
    }

    /// Writes the critic (and its optimiser state) into checkpoint folder `dir`.
    pub fn write(&self, dir: &Path, tokenizer: Option<&Tokenizer>) -> Result<()> {
        match self {
            Critic::Shared(head) => {
                let tensors: Vec<(String, Tensor)> = head
                    .named_parameters()
                    .into_iter()
                    .map(|(n, t)| (n, t.detach()))
                    .collect();
                let bytes = crate::safetensors::serialize(&tensors)?;
                crate::checkpoint::write_file(&dir.join(VALUE_HEAD_FILE), &bytes)
            }
            Critic::Separate { model, optimiser } => {
                let critic_dir = dir.join(CRITIC_DIR);
                std::fs::create_dir_all(&critic_dir)
                    .map_err(crate::error::io_error(&critic_dir))?;
                model.write(&critic_dir, tokenizer)?;
                let bytes = crate::safetensors::serialize(&optimiser.state_tensors())?;
                crate::checkpoint::write_file(&dir.join(CRITIC_OPTIMISER_FILE), &bytes)
            }
        }
    }

    /// Restores the separate critic's optimiser state from checkpoint folder `dir`.
    pub fn load_optimiser_state(&mut self, dir: &Path) -> Result<()> {
        if let Critic::Separate { optimiser, .. } = self {
            let path = dir.join(CRITIC_OPTIMISER_FILE);
            let tensors = crate::safetensors::read(&path)?.into_iter().collect();
            optimiser.load_state(&tensors, &path.display().to_string())?;
        }
        Ok(())
    }
}

/// What one PPO step reports beyond the common step numbers.
pub struct PpoReport {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub clip_fraction: f64,
    pub value_clip_fraction: f64,
    pub approx_kl: f64,
    pub grad_norm: f64,
}

/// One PPO step on a batch of prompts: generate one sampled response each, score it, the
/// reference's log-probs, then (the update phase) the rollout's log-probs and values, GAE, and
/// `epochs × minibatches` optimiser steps. `kl` is updated with the batch's KL at the end.
#[allow(clippy::too_many_arguments)]
pub fn ppo_step(
    policy: &CausalLm,
    actor: &mut Optimiser,
    critic: &mut Critic,
    kl: &mut KlController,
    reference: &CausalLm,
    reward: &RewardSource,
    tokenizer: &Tokenizer,
    tokens: &Tokens,
    prompts: &[Vec<i64>],
    answers: &[Option<&str>],
    config: &RunConfig,
) -> Result<RlhfStep> {
    let ppo = &config.ppo;
    let device = policy.device();
    let (ids, mask) = left_pad(prompts, tokens.pad, device)?;
    let t0 = Instant::now();
    let sampled = generate(
        policy,
        &ids,
        &mask,
        &tokens.eos,
        tokens.pad,
        &config.generation.sampled(),
    )?;
    let generate_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let (_, texts) = decode_responses(tokenizer, &sampled)?;
    let scores = reward.score(&sampled, &texts, answers, reference, tokens.pad)?;
    check_finite("the responses' rewards", &scores)?;
    let reward_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let ref_logprobs = tch::no_grad(|| response_logprobs(reference, &sampled))?;
    let reference_s = t2.elapsed().as_secs_f64();

    let t3 = Instant::now();
    let (old_logprobs, old_values) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
        let hidden = response_hidden(policy, &sampled)?;
        Ok((
            logprobs_of_hidden(policy, &hidden, &sampled)?,
            critic.values(&hidden, &sampled)?,
        ))
    })?;
    let maskf = sampled.mask.f_to_kind(Kind::Float)?;
    let mut rewards = token_rewards(
        &old_logprobs,
        &ref_logprobs,
        &sampled.mask,
        &scores,
        kl.value,
        ppo.reward_clip,
    )?;
    if ppo.whiten_rewards {
        rewards = masked_whiten(&rewards, &maskf, false)?.f_mul(&maskf)?;
    }
    let (adv, returns) = advantages(&rewards, &old_values, &sampled.mask, ppo.gamma, ppo.lam)?;
    let adv = whiten_advantages(&adv, &sampled.mask)?;
    check_finite("the advantages", &adv)?;

    let b = prompts.len() as i64;
    let minibatches = (ppo.minibatches as i64).clamp(1, b);
    let mut sums = [0.0f64; 6];
    let mut updates = 0.0;
    for _ in 0..ppo.epochs {
        let order = Tensor::f_randperm(b, (Kind::Int64, device))?;
        for chunk in 0..minibatches {
            let start = chunk * b / minibatches;
            let end = (chunk + 1) * b / minibatches;
            let rows = order.f_narrow(0, start, end - start)?;
            let part = select_rows(&sampled, &rows)?;
            let pick = |t: &Tensor| t.f_index_select(0, &rows);
            actor.zero_grad()?;
            critic.zero_grad()?;
            let hidden = response_hidden(policy, &part)?;
            let logprobs = logprobs_of_hidden(policy, &hidden, &part)?;
            let values = critic.values(&hidden, &part)?;
            let pg = policy_loss(
                &logprobs,
                &pick(&old_logprobs)?,
                &pick(&adv)?,
                &part.mask,
                ppo.clip_range,
            )?;
            let (vf, vf_clipped) = value_loss(
                &values,
                &pick(&old_values)?,
                &pick(&returns)?,
                &part.mask,
                ppo.value_clip_range,
            )?;
            let loss = pg.loss.f_add(&vf.f_mul_scalar(ppo.vf_coef)?)?;
            check_finite("the PPO loss", &loss)?;
            loss.f_backward()?;
            let grad_norm = actor.update()?;
            critic.update()?;
            for (sum, value) in sums.iter_mut().zip([
                pg.loss.f_double_value(&[])?,
                vf.f_double_value(&[])?,
                pg.clip_fraction,
                vf_clipped,
                pg.approx_kl,
                grad_norm,
            ]) {
                *sum += value;
            }
            updates += 1.0;
        }
    }
    let update_s = t3.elapsed().as_secs_f64();

    let kl_mean = old_logprobs
        .f_sub(&ref_logprobs)?
        .f_mul(&maskf)?
        .f_sum_dim_intlist(1, false, Kind::Float)?
        .f_mean(Kind::Float)?
        .f_double_value(&[])?;
    let kl_coef = kl.value;
    kl.update(kl_mean, prompts.len());
    let mean = |i: usize| sums[i] / f64::max(updates, 1.0);
    let report = PpoReport {
        policy_loss: mean(0),
        value_loss: mean(1),
        clip_fraction: mean(2),
        value_clip_fraction: mean(3),
        approx_kl: mean(4),
        grad_norm: mean(5),
    };
    let generated = sampled.mask.f_sum(Kind::Float)?.f_double_value(&[])?;
    let total = t0.elapsed().as_secs_f64();
    Ok(RlhfStep {
        reward_mean: scores.f_mean(Kind::Float)?.f_double_value(&[])?,
        reward_std: (prompts.len() > 1)
            .then(|| scores.f_std(true).and_then(|t| t.f_double_value(&[])))
            .transpose()?,
        baseline_reward_mean: None,
        kl_to_reference: kl_mean,
        response_length_mean: generated / b as f64,
        tokens_per_s: generated / total.max(1e-9),
        timing: RlhfTiming {
            generate_s,
            reference_s,
            reward_s,
            update_s,
        },
        policy_loss: Some(report.policy_loss),
        value_loss: Some(report.value_loss),
        clip_fraction: Some(report.clip_fraction),
        value_clip_fraction: Some(report.value_clip_fraction),
        approx_kl: Some(report.approx_kl),
        kl_coef: Some(kl_coef),
        grad_norm: report.grad_norm,
        ..RlhfStep::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(rows: &[&[f64]]) -> Tensor {
        let n = rows[0].len() as i64;
        Tensor::from_slice(&rows.concat())
            .view([rows.len() as i64, n])
            .to_kind(Kind::Float)
    }

    fn at(t: &Tensor, i: i64, j: i64) -> f64 {
        t.double_value(&[i, j])
    }

    /// TRL's reversed loop over a row, in f64.
    fn naive_gae(rewards: &[f64], values: &[f64], len: usize, gamma: f64, lam: f64) -> Vec<f64> {
        let mut out = vec![0.0; rewards.len()];
        let mut last = 0.0;
        for t in (0..len).rev() {
            let next = if t + 1 < len { values[t + 1] } else { 0.0 };
            let delta = rewards[t] + gamma * next - values[t];
            last = delta + gamma * lam * last;
            out[t] = last;
        }
        out
    }

    #[test]
    fn rewards_put_the_clipped_score_on_the_last_token() {
        let lp = tensor(&[&[-1.0, -2.0, -3.0], &[-0.5, -0.5, 0.0]]);
        let rlp = tensor(&[&[-1.5, -1.0, -3.0], &[-1.0, -0.25, 0.0]]);
        let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 0]).view([2, 3]);
        let scores = Tensor::from_slice(&[10.0f32, -0.5]);
        let r = token_rewards(&lp, &rlp, &mask, &scores, 0.1, Some(5.0)).unwrap();
        let want = [[-0.05, 0.1, 5.0], [-0.05, 0.025 - 0.5, 0.0]];
        for (i, row) in want.iter().enumerate() {
            for (j, w) in row.iter().enumerate() {
                assert!((at(&r, i as i64, j as i64) - w).abs() < 1e-6, "[{i},{j}]");
            }
        }
    }

    #[test]
    fn gae_over_tokens_matches_the_reference_loop() {
        let rewards = [[0.1, -0.2, 0.3, 1.0], [0.5, 2.0, 7.0, 9.0]];
        let values = [[0.4, 0.3, -0.1, 0.2], [1.0, -1.0, 5.0, 5.0]];
        let lengths = [4usize, 2];
        let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 1, 0, 0]).view([2, 4]);
        let (gamma, lam) = (0.9, 0.8);
        let (adv, ret) = advantages(
            &tensor(&[&rewards[0], &rewards[1]]),
            &tensor(&[&values[0], &values[1]]),
            &mask,
            gamma,
            lam,
        )
        .unwrap();
        for row in 0..2 {
            let want = naive_gae(&rewards[row], &values[row], lengths[row], gamma, lam);
            for (t, w) in want.iter().enumerate() {
                let r = row as i64;
                assert!((at(&adv, r, t as i64) - w).abs() < 1e-5, "adv [{row},{t}]");
                let want_ret = if t < lengths[row] {
                    w + values[row][t]
                } else {
                    0.0
                };
                assert!(
                    (at(&ret, r, t as i64) - want_ret).abs() < 1e-5,
                    "ret [{row},{t}]"
                );
            }
        }
    }

    #[test]
    fn policy_loss_clips_ratios_beyond_epsilon() {
        // Ratios e^0.5 ≈ 1.65 (clipped for a positive advantage) and e^-0.05 (inside).
        let old = tensor(&[&[-1.0, -1.0]]);
        let new = tensor(&[&[-0.5, -1.05]]).set_requires_grad(true);
        let adv = tensor(&[&[1.0, -2.0]]);
        let mask = Tensor::from_slice(&[1i64, 1]).view([1, 2]);
        let out = policy_loss(&new, &old, &adv, &mask, 0.2).unwrap();
        let r2 = (-0.05f64).exp();
        let want = (-1.2 + 2.0 * r2) / 2.0;
        assert!((out.loss.double_value(&[]) - want).abs() < 1e-5);
        assert!((out.clip_fraction - 0.5).abs() < 1e-9);
        out.loss.backward();
        let g = Vec::<f32>::try_from(new.grad().view([-1])).unwrap();
        // The clipped token has no gradient; the other −A r / 2.
        assert_eq!(g[0], 0.0);
        assert!((f64::from(g[1]) - r2).abs() < 1e-5, "{g:?}");
    }

    #[test]
    fn value_loss_takes_the_larger_of_clipped_and_unclipped() {
        let old = tensor(&[&[0.0, 0.0]]);
        let new = tensor(&[&[1.0, 0.1]]);
        let ret = tensor(&[&[2.0, -1.0]]);
        let mask = Tensor::from_slice(&[1i64, 1]).view([1, 2]);
        let (loss, fraction) = value_loss(&new, &old, &ret, &mask, 0.2).unwrap();
        // Token 0: max((1-2)², (0.2-2)²) = 3.24; token 1: max(1.21, 1.21) = 1.21.
        assert!((loss.double_value(&[]) - 0.5 * (3.24 + 1.21) / 2.0).abs() < 1e-5);
        assert!((fraction - 0.5).abs() < 1e-9);
    }

    #[test]
    fn adaptive_kl_moves_towards_the_target_and_fixed_stays() {
        let mut config = PpoConfig {
            kl_coef: 0.2,
            adaptive_kl: true,
            kl_target: 6.0,
            kl_horizon: 100.0,
            ..PpoConfig::default()
        };
        let mut adaptive = KlController::new(&config);
        adaptive.update(12.0, 10);
        assert!((adaptive.value - 0.2 * 1.02).abs() < 1e-12);
        adaptive.update(3.0, 10);
        assert!((adaptive.value - 0.2 * 1.02 * 0.98).abs() < 1e-12);
        config.adaptive_kl = false;
        let mut fixed = KlController::new(&config);
        fixed.update(100.0, 10);
        assert_eq!(fixed.value, 0.2);
    }
}
