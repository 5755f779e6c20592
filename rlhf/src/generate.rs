//! Batched generation: left-padded prompts, attention masks, an optional KV cache, greedy or
//! filtered sampling (hone-kernels' warpers, in transformers' order), EOS handling.

use hone_kernels::tensor::sampling::greedy;
use hone_kernels::{SamplingFilter, sample, token_logprobs};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::{CausalLm, KvCache};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateConfig {
    pub max_new_tokens: i64,
    /// `None`: greedy decoding.
    pub sampling: Option<SamplingFilter>,
    /// Keep keys and values between steps (false recomputes the whole sequence each step).
    pub use_cache: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: None,
            use_cache: true,
        }
    }
}

/// The result of [`generate`] for a batch of B prompts; N ≤ `max_new_tokens` columns (fewer when
/// every row ended early).
#[derive(Debug)]
pub struct Generated {
    /// `[B, P]` the left-padded prompts and their mask.
    pub prompt_ids: Tensor,
    pub prompt_mask: Tensor,
    /// `[B, N]` int64: the new tokens; `pad` after a row's EOS.
    pub tokens: Tensor,
    /// `[B, N]` f32: log π(token) under the model's own distribution (before temperature and
    /// filters); 0 where `mask` is 0.
    pub logprobs: Tensor,
    /// `[B, N]` int64: 1 for generated tokens, the EOS included; 0 after it.
    pub mask: Tensor,
}

impl Generated {
    /// `[B, P + N]` prompts and responses, and the mask of real tokens.
    pub fn sequences(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            Tensor::f_cat(&[&self.prompt_ids, &self.tokens], 1)?,
            Tensor::f_cat(&[&self.prompt_mask, &self.mask], 1)?,
        ))
    }

    /// The response tokens of row `b` (up to and including its EOS).
    pub fn response(&self, b: i64) -> Result<Vec<i64>> {
        let len = self.mask.f_get(b)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        Ok(Vec::<i64>::try_from(
            self.tokens.f_get(b)?.f_narrow(0, 0, len)?,
        )?)
    }
}

/// Continues each prompt row of `prompt_ids [B, P]` (left-padded, `prompt_mask` 1 at real
/// tokens) by up to `config.max_new_tokens` tokens; a row stops at any of `eos`. Sampling uses
/// libtorch's default generator (seed it with `tch::manual_seed`).
pub fn generate(
    model: &CausalLm,
    prompt_ids: &Tensor,
    prompt_mask: &Tensor,
    eos: &[i64],
    pad: i64,
    config: &GenerateConfig,
) -> Result<Generated> {
    let mut runs = generate_repeated(model, prompt_ids, prompt_mask, eos, pad, &[(config, 1)])?;
    Ok(runs.remove(0))
}

/// Several decodings of one batch of prompts that share the prompts' forward pass: for each
/// `(config, r)` of `runs`, r continuations of every prompt, as a [`Generated`] of `B·r` rows
/// (rows `b·r .. b·r + r` continue prompt b). With the KV cache the prompts are read once for
/// all runs (ReMax's sampled and greedy responses; several samples per prompt); without it
/// each run recomputes them. Samples are drawn run after run from libtorch's default generator.
pub fn generate_repeated(
    model: &CausalLm,
    prompt_ids: &Tensor,
    prompt_mask: &Tensor,
    eos: &[i64],
    pad: i64,
    runs: &[(&GenerateConfig, i64)],
) -> Result<Vec<Generated>> {
    for (config, repeats) in runs {
        if config.max_new_tokens < 1 {
            return Err(Error::Parameter {
                name: "max_new_tokens",
                value: config.max_new_tokens.to_string(),
                expected: "at least 1".into(),
            });
        }
        if *repeats < 1 {
            return Err(Error::Parameter {
                name: "continuations per prompt",
                value: repeats.to_string(),
                expected: "at least 1".into(),
            });
        }
    }
    let device = model.device();
    let prompt_ids = prompt_ids.f_to_device(device)?.f_to_kind(Kind::Int64)?;
    let prompt_mask = prompt_mask.f_to_device(device)?.f_to_kind(Kind::Int64)?;
    if prompt_ids.size() != prompt_mask.size() || prompt_ids.dim() != 2 {
        return Err(Error::Parameter {
            name: "prompt shapes",
            value: format!("ids {:?}, mask {:?}", prompt_ids.size(), prompt_mask.size()),
            expected: "two [B, P] tensors".into(),
        });
    }
    let (b, p) = (prompt_ids.size()[0], prompt_ids.size()[1]);
    let eos_ids = Tensor::from_slice(eos).f_to_device(device)?;
    let cached = runs.iter().all(|(c, _)| c.use_cache);
    tch::no_grad(|| {
        // The prompts' last hidden state and their cache, computed once when every run caches.
        let mut prefill = if cached {
            let longest = runs
                .iter()
                .map(|(c, _)| c.max_new_tokens)
                .max()
                .unwrap_or(1);
            let mut cache = model.new_cache(b, p + longest);
            let hidden = model.forward_hidden(&prompt_ids, &prompt_mask, Some(&mut cache))?;
            Some((hidden.f_select(1, p - 1)?, cache))
        } else {
            None
        };
        let mut out = Vec::with_capacity(runs.len());
        for (i, &(config, repeats)) in runs.iter().enumerate() {
            let repeat = |t: &Tensor| -> Result<Tensor> {
                Ok(if repeats == 1 {
                    t.shallow_clone()
                } else {
                    t.f_repeat_interleave_self_int(repeats, 0, None)?
                })
            };
            let ids = repeat(&prompt_ids)?;
            let mask = repeat(&prompt_mask)?;
            // The last run takes the prompts' cache itself when it needs one row per prompt
            // (a plain `generate`); every other run decodes into a copy.
            let own = i + 1 == runs.len() && repeats == 1;
            let (last, cache) = if own && let Some((last, cache)) = prefill.take() {
                (last, Some(cache))
            } else if let Some((last, cache)) = &prefill {
                (repeat(last)?, Some(cache.repeat_rows(repeats)?))
            } else {
                let hidden = model.forward_hidden(&ids, &mask, None)?;
                (hidden.f_select(1, p - 1)?, None)
            };
            out.push(decode(
                model, last, cache, ids, mask, &eos_ids, pad, config,
            )?);
        }
        Ok(out)
    })
}

/// The decoding loop after the prompts' forward pass: `last` `[B, H]` is the hidden state of
/// each row's last prompt position, `cache` the prompts' keys and values (`None`: recompute).
#[allow(clippy::too_many_arguments)]
fn decode(
    model: &CausalLm,
    mut last: Tensor,
    mut cache: Option<KvCache>,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    eos_ids: &Tensor,
    pad: i64,
    config: &GenerateConfig,
) -> Result<Generated> {
    let device = model.device();
    let b = prompt_ids.size()[0];
    let mut ids = prompt_ids.shallow_clone();
    let mut mask = prompt_mask.shallow_clone();
    let mut finished = Tensor::f_zeros([b], (Kind::Bool, device))?;
    let ones = Tensor::f_ones([b, 1], (Kind::Int64, device))?;
    let mut tokens = Vec::new();
    let mut logprobs = Vec::new();
    let mut alive = Vec::new();
    for step in 0..config.max_new_tokens {
        let logits = model.logits(&last)?.f_to_kind(Kind::Float)?;
        let next = match &config.sampling {
            None => greedy(&logits)?,
            Some(filter) => sample(&filter.apply(&logits)?)?,
        };
        let live = finished.f_logical_not()?;
        let next = next.f_where_self(&live, &Tensor::from(pad).f_to_device(device)?)?;
        let logprob =
            token_logprobs(&logits.f_unsqueeze(1)?, &next.f_unsqueeze(1)?)?.f_squeeze_dim(1)?;
        logprobs.push(logprob.f_mul(&live.f_to_kind(Kind::Float)?)?);
        alive.push(live.f_to_kind(Kind::Int64)?);
        tokens.push(next.shallow_clone());
        finished = finished.f_logical_or(&Tensor::f_isin(&next, eos_ids, false, false)?)?;
        if step + 1 == config.max_new_tokens || finished.f_all()?.f_int64_value(&[])? != 0 {
            break;
        }
        let next = next.f_unsqueeze(1)?;
        mask = Tensor::f_cat(&[&mask, &ones], 1)?;
        let hidden = match cache.as_mut() {
            Some(cache) => model.forward_hidden(&next, &mask, Some(cache))?,
            None => {
                ids = Tensor::f_cat(&[&ids, &next], 1)?;
                model.forward_hidden(&ids, &mask, None)?
            }
        };
        last = hidden.f_select(1, hidden.size()[1] - 1)?;
    }
    Ok(Generated {
        prompt_ids,
        prompt_mask,
        tokens: Tensor::f_stack(&tokens, 1)?,
        logprobs: Tensor::f_stack(&logprobs, 1)?,
        mask: Tensor::f_stack(&alive, 1)?,
    })
}
