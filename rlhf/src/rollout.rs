//! What every RLHF algorithm does with generated responses: their log-probabilities under a
//! model (with gradients for the policy, without for the reference) and their rewards.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::generate::Generated;
use crate::model::CausalLm;
use crate::reward::RewardModel;
use crate::tasks::Rule;
use crate::tokenizer::{Tokenizer, left_pad};

/// log π(token) `[B, N]` of the generated tokens of `generated` under `model` (0 where the
/// response mask is 0). Differentiable; wrap in `tch::no_grad` for a frozen model.
pub fn response_logprobs(model: &CausalLm, generated: &Generated) -> Result<Tensor> {
    let hidden = response_hidden(model, generated)?;
    logprobs_of_hidden(model, &hidden, generated)
}

/// The final hidden states `[B, N, H]` of the positions that predict each response token (the
/// last prompt position and every response position but the last).
pub fn response_hidden(model: &CausalLm, generated: &Generated) -> Result<Tensor> {
    let (ids, mask) = generated.sequences()?;
    let p = generated.prompt_ids.size()[1];
    let n = generated.tokens.size()[1];
    Ok(model
        .forward_hidden(&ids, &mask, None)?
        .f_narrow(1, p - 1, n)?)
}

/// log π `[B, N]` of the response tokens from their [`response_hidden`] states (0 where the
/// response mask is 0).
pub fn logprobs_of_hidden(
    model: &CausalLm,
    hidden: &Tensor,
    generated: &Generated,
) -> Result<Tensor> {
    let logprobs = hone_kernels::token_logprobs_from_hidden(
        hidden,
        model.lm_head_weight(),
        &generated.tokens,
    )?;
    Ok(logprobs.f_mul(&generated.mask.f_to_kind(Kind::Float)?)?)
}

/// The rows `rows` (int64 indices) of every tensor of `generated`, e.g. one PPO minibatch.
pub fn select_rows(generated: &Generated, rows: &Tensor) -> Result<Generated> {
    let pick = |t: &Tensor| t.f_index_select(0, &rows.f_to_device(t.device())?);
    Ok(Generated {
        prompt_ids: pick(&generated.prompt_ids)?,
        prompt_mask: pick(&generated.prompt_mask)?,
        tokens: pick(&generated.tokens)?,
        logprobs: pick(&generated.logprobs)?,
        mask: pick(&generated.mask)?,
    })
}

/// Responses per row, as token ids (up to and including EOS) and as text (special tokens
/// skipped).
pub fn decode_responses(
    tokenizer: &Tokenizer,
    generated: &Generated,
) -> Result<(Vec<Vec<i64>>, Vec<String>)> {
    let b = generated.tokens.size()[0];
    let mut ids = Vec::with_capacity(b as usize);
    let mut texts = Vec::with_capacity(b as usize);
    for row in 0..b {
        let tokens = generated.response(row)?;
        texts.push(tokenizer.decode(&tokens, true)?);
        ids.push(tokens);
    }
    Ok((ids, texts))
}

/// Where rewards come from.
pub enum RewardSource {
    /// A rule on the response text and the dataset's answer.
    Rule(Rule),
    /// The base model's log π(y|x) of the response (sharpening's self-reward); the mean over
    /// response tokens instead of the sum when `length_normalised`.
    SelfReward { length_normalised: bool },
    /// A trained reward model (score of prompt + response).
    Model(Box<RewardModel>),
}

impl RewardSource {
    pub fn load_model(dir: &Path, device: Device) -> Result<Self> {
        Ok(Self::Model(Box::new(RewardModel::load(
            dir,
            device,
            Kind::Float,
        )?)))
    }

    /// Rewards `[B]` (f32, CPU) of the responses in `generated`. `answers` are the dataset's
    /// answers of each row (required by rules); `base` is the model the self-reward reads.
    pub fn score(
        &self,
        generated: &Generated,
        texts: &[String],
        answers: &[Option<&str>],
        base: &CausalLm,
        pad: i64,
    ) -> Result<Tensor> {
        match self {
            RewardSource::Rule(rule) => {
                let scores = texts
                    .iter()
                    .zip(answers)
                    .map(|(text, answer)| {
                        answer
                            .map(|a| rule.score(text, a) as f32)
                            .ok_or_else(|| Error::Parameter {
                                name: "answer",
                                value: "missing".into(),
                                expected: "every prompt to have an `answer` for a rule reward"
                                    .into(),
                            })
                    })
                    .collect::<Result<Vec<f32>>>()?;
                Ok(Tensor::from_slice(&scores))
            }
            RewardSource::SelfReward { length_normalised } => {
                let logprobs = tch::no_grad(|| response_logprobs(base, generated))?;
                let sum = logprobs.f_sum_dim_intlist(1, false, Kind::Float)?;
                let score = if *length_normalised {
                    let len = generated
                        .mask
                        .f_sum_dim_intlist(1, false, Kind::Float)?
                        .f_clamp_min(1.0)?;
                    sum.f_div(&len)?
                } else {
                    sum
                };
                Ok(score.f_to_device(Device::Cpu)?)
            }
            RewardSource::Model(model) => {
                // Re-pad prompt + response rows on the left: the model scores the last position.
                let b = generated.tokens.size()[0];
                let mut rows = Vec::with_capacity(b as usize);
                for row in 0..b {
                    let prompt_mask = Vec::<i64>::try_from(generated.prompt_mask.f_get(row)?)?;
                    let prompt = Vec::<i64>::try_from(generated.prompt_ids.f_get(row)?)?;
                    let mut seq: Vec<i64> = prompt
                        .iter()
                        .zip(&prompt_mask)
                        .filter(|(_, m)| **m != 0)
                        .map(|(t, _)| *t)
                        .collect();
                    seq.extend(generated.response(row)?);
                    rows.push(seq);
                }
                let (ids, mask) = left_pad(&rows, pad, model.backbone.device())?;
                let scores = tch::no_grad(|| model.rewards(&ids, &mask))?;
                Ok(scores.f_to_device(Device::Cpu)?)
            }
        }
    }
}

/// `Err(Diverged)` naming `what` when any value of `t` is NaN or infinite.
pub fn check_finite(what: &str, t: &Tensor) -> Result<()> {
    let finite = t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
    if finite {
        Ok(())
    } else {
        let bad = t
            .f_masked_select(&t.f_isfinite()?.f_logical_not()?)?
            .f_get(0)?
            .f_double_value(&[])?;
        Err(Error::Diverged(format!("{what} contains {bad}")))
    }
}
