//! Temperature, top-k and top-p (nucleus) filtering of logits along the last dimension, as
//! Hugging Face's `TemperatureLogitsWarper`, `TopKLogitsWarper` and `TopPLogitsWarper` with
//! `min_tokens_to_keep = 1`: filtered logits become `-inf`. Plus sampling from the result.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::checks::require_float;
use crate::error::{Error, Result, shape_error};

/// Logits with a non-empty last (vocabulary) dimension.
fn require_vocab(logits: &Tensor) -> Result<i64> {
    require_float("logits", logits)?;
    match logits.size().last() {
        Some(&vocab) if vocab > 0 => Ok(vocab),
        _ => Err(shape_error(
            "logits",
            "[..., V] with V >= 1",
            format!("{:?}", logits.size()),
        )),
    }
}

/// `logits / temperature`, temperature > 0.
pub fn apply_temperature(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    require_float("logits", logits)?;
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::Parameter {
            name: "temperature",
            value: temperature,
            range: "(0, inf)",
        });
    }
    Ok(logits.f_div_scalar(temperature)?)
}

/// Keeps the `k` largest logits of each row and every logit tied with the k-th (HF: remove
/// `logits < topk(logits, k).values[..., -1]`); `k` is capped at the vocabulary size.
pub fn top_k_filter(logits: &Tensor, k: i64) -> Result<Tensor> {
    let vocab = require_vocab(logits)?;
    if k < 1 {
        return Err(Error::Parameter {
            name: "top_k",
            value: k as f64,
            range: "[1, inf)",
        });
    }
    let (top, _) = logits.f_topk(k.min(vocab), -1, true, true)?;
    let kth = top.f_narrow(-1, k.min(vocab) - 1, 1)?;
    let remove = logits.f_lt_tensor(&kth)?;
    Ok(logits.f_masked_fill(&remove, f64::NEG_INFINITY)?)
}

/// Keeps the smallest set of most probable tokens whose probability adds up to at least `p`
/// (at least one token), as HF: sort ascending, drop the tokens whose cumulative probability is
/// `<= 1 - p`, keep the last. The sort is libtorch's default (unstable) one, as in HF, so when
/// equal logits straddle the cut, the same ones are kept as HF keeps on that device (checked
/// against HF's warper code run in PyTorch 2.11 on CPU); how many are kept does not depend on it.
pub fn top_p_filter(logits: &Tensor, p: f64) -> Result<Tensor> {
    let vocab = require_vocab(logits)?;
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::Parameter {
            name: "top_p",
            value: p,
            range: "[0, 1]",
        });
    }
    let (sorted, order) = logits.f_sort(-1, false)?;
    let cumulative = sorted
        .f_softmax(-1, None::<Kind>)?
        .f_cumsum(-1, None::<Kind>)?;
    let remove_sorted = cumulative.f_le(1.0 - p)?;
    // In place through a view: the most probable token is always kept.
    let _ = remove_sorted.f_narrow(-1, vocab - 1, 1)?.f_fill_(0)?;
    let remove = remove_sorted.f_scatter(-1, &order, &remove_sorted)?;
    Ok(logits.f_masked_fill(&remove, f64::NEG_INFINITY)?)
}

/// The warpers of a sampling step, applied in HF's order: temperature, top-k, top-p.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingFilter {
    pub temperature: f64,
    pub top_k: Option<i64>,
    pub top_p: Option<f64>,
}

impl Default for SamplingFilter {
    /// Plain sampling from the model's distribution.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl SamplingFilter {
    pub fn apply(&self, logits: &Tensor) -> Result<Tensor> {
        let mut out = if self.temperature == 1.0 {
            require_vocab(logits)?;
            logits.shallow_clone()
        } else {
            apply_temperature(logits, self.temperature)?
        };
        if let Some(k) = self.top_k {
            out = top_k_filter(&out, k)?;
        }
        if let Some(p) = self.top_p {
            out = top_p_filter(&out, p)?;
        }
        Ok(out)
    }
}

/// One token per row from `softmax(logits)` along the last dimension: `[..., V]` → `[...]`
/// (int64). Uses libtorch's default generator, so `tch::manual_seed` makes it reproducible.
pub fn sample(logits: &Tensor) -> Result<Tensor> {
    let vocab = require_vocab(logits)?;
    let size = logits.size();
    let rows = logits.f_reshape([-1, vocab])?;
    let probs = rows.f_softmax(-1, Kind::Float)?;
    let drawn = probs.f_multinomial(1, false)?;
    Ok(drawn.f_reshape(&size[..size.len() - 1])?)
}

/// The most probable token per row (ties: the lowest index).
pub fn greedy(logits: &Tensor) -> Result<Tensor> {
    require_vocab(logits)?;
    Ok(logits.f_argmax(-1, false)?)
}
