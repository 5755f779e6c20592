//! Batched generation: left-padded prompts, attention masks, an optional KV cache, greedy or
//! filtered sampling (hone-kernels' warpers, in transformers' order), EOS handling.

use hone_kernels::tensor::sampling::greedy;
use hone_kernels::{SamplingFilter, sample, token_logprobs};
use tch::{Device, Kind, Tensor};

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

/// Checks a batch of prompts, given by their token counts, against the model's `context`
/// (`max_position_embeddings`): every prompt needs a token (an empty row would be all padding,
/// continued from nothing), and each prompt plus `max_new_tokens` new tokens must fit the
/// context. Beyond it a model runs on positions it never saw in training (GPT-2 cannot run at
/// all), which transformers only warns about; hone refuses, as a run's `Prompts::load` does.
/// `setting` is how the caller names `max_new_tokens` in errors (a flag, a config key).
pub fn check_prompt_lengths(
    lengths: &[i64],
    max_new_tokens: i64,
    setting: &str,
    context: i64,
) -> Result<()> {
    let error = |index: usize, message: String| Error::Row {
        what: "prompt",
        index,
        message,
    };
    for (index, &n) in lengths.iter().enumerate() {
        if n < 1 {
            return Err(error(
                index,
                "has no tokens (every prompt needs at least one)".into(),
            ));
        }
        if n >= context {
            return Err(error(
                index,
                format!(
                    "has {n} tokens, which leaves no room for a new one in the model's context \
                     of {context} positions (max_position_embeddings)"
                ),
            ));
        }
        let needed = n.saturating_add(max_new_tokens);
        if needed > context {
            return Err(error(
                index,
                format!(
                    "has {n} tokens; with {setting} = {max_new_tokens} it needs {needed} \
                     positions, beyond the model's context of {context} \
                     (max_position_embeddings): at most {} new tokens fit",
                    context - n
                ),
            ));
        }
    }
    Ok(())
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
    if b < 1 || p < 1 {
        return Err(Error::Parameter {
            name: "prompt shapes",
            value: format!("ids {:?}", prompt_ids.size()),
            expected: "[B, P] with at least one prompt of at least one position".into(),
        });
    }
    // Every row's real tokens, checked against the context before any buffer is allocated
    // (the KV cache holds P + max_new_tokens positions per row).
    let lengths = Vec::<i64>::try_from(
        prompt_mask
            .f_ne(0)?
            .f_sum_dim_intlist(1, false, Kind::Int64)?
            .f_to_device(Device::Cpu)?,
    )?;
    let longest = runs
        .iter()
        .map(|(c, _)| c.max_new_tokens)
        .max()
        .unwrap_or(1);
    check_prompt_lengths(
        &lengths,
        longest,
        "max_new_tokens",
        model.config().max_positions(),
    )?;
    let eos_ids = Tensor::from_slice(eos).f_to_device(device)?;
    let cached = runs.iter().all(|(c, _)| c.use_cache);
    tch::no_grad(|| {
        // The prompts' last hidden state and their cache, computed once when every run caches.
        let mut prefill = if cached {
            let mut cache = model.new_cache(b, p + longest)?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{ArchConfig, LlamaConfig, ModelConfig, RopeScaling};
    use crate::model::WeightSource;

    const CONTEXT: i64 = 16;

    /// A one-layer Llama of a 16-position context with fixed (not sampled: the global generator
    /// is left alone) weights.
    fn tiny_model() -> CausalLm {
        let c = LlamaConfig {
            vocab_size: 32,
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: 8,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::None,
            max_position_embeddings: CONTEXT,
            tie_word_embeddings: true,
            attention_bias: false,
            mlp_bias: false,
        };
        let mut tensors = HashMap::new();
        let mut add = |name: &str, shape: &[i64]| {
            let n: i64 = shape.iter().product();
            let values = Tensor::arange(n, (Kind::Float, Device::Cpu))
                .f_mul_scalar(0.7)
                .and_then(|t| t.f_sin())
                .and_then(|t| t.f_mul_scalar(0.2))
                .and_then(|t| t.f_view(shape))
                .unwrap();
            tensors.insert(name.to_owned(), values);
        };
        add("model.embed_tokens.weight", &[32, 16]);
        add("model.norm.weight", &[16]);
        let p = "model.layers.0";
        add(&format!("{p}.input_layernorm.weight"), &[16]);
        add(&format!("{p}.post_attention_layernorm.weight"), &[16]);
        add(&format!("{p}.self_attn.q_proj.weight"), &[16, 16]);
        add(&format!("{p}.self_attn.k_proj.weight"), &[8, 16]);
        add(&format!("{p}.self_attn.v_proj.weight"), &[8, 16]);
        add(&format!("{p}.self_attn.o_proj.weight"), &[16, 16]);
        add(&format!("{p}.mlp.gate_proj.weight"), &[32, 16]);
        add(&format!("{p}.mlp.up_proj.weight"), &[32, 16]);
        add(&format!("{p}.mlp.down_proj.weight"), &[16, 32]);
        let config = ModelConfig::new(ArchConfig::Llama(c), None, Vec::new(), None);
        let weights = WeightSource::new(tensors, "tiny", Device::Cpu, Kind::Float);
        CausalLm::from_weights(config, weights).unwrap()
    }

    fn greedy(max_new_tokens: i64) -> GenerateConfig {
        GenerateConfig {
            max_new_tokens,
            sampling: None,
            use_cache: true,
        }
    }

    /// Left-padded `[B, P]` ids and mask of `rows` (pad 0).
    fn batch(rows: &[&[i64]]) -> (Tensor, Tensor) {
        let p = rows.iter().map(|r| r.len()).max().unwrap();
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        for row in rows {
            let gap = p - row.len();
            ids.extend(std::iter::repeat_n(0, gap).chain(row.iter().copied()));
            mask.extend(std::iter::repeat_n(0i64, gap).chain(std::iter::repeat_n(1, row.len())));
        }
        let shape = [rows.len() as i64, p as i64];
        (
            Tensor::from_slice(&ids).view(shape),
            Tensor::from_slice(&mask).view(shape),
        )
    }

    fn error(rows: &[&[i64]], config: &GenerateConfig) -> String {
        let (ids, mask) = batch(rows);
        match generate(&tiny_model(), &ids, &mask, &[], 0, config) {
            Ok(out) => panic!("generated {:?} tokens", out.tokens.size()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn generation_fills_the_context_exactly() {
        let prompt: Vec<i64> = (1..=12).collect();
        let (ids, mask) = batch(&[&prompt, &[3, 4]]);
        for use_cache in [true, false] {
            let config = GenerateConfig {
                use_cache,
                ..greedy(4)
            };
            let out = generate(&tiny_model(), &ids, &mask, &[], 0, &config).unwrap();
            assert_eq!(out.tokens.size(), [2, 4]);
        }
    }

    #[test]
    fn prompts_beyond_the_context_are_an_error() {
        let long: Vec<i64> = (1..=14).collect();
        // 14 prompt tokens + 4 new ones need 18 positions of 16.
        let e = error(&[&[1, 2], &long], &greedy(4));
        assert!(
            e.contains("prompt 1: has 14 tokens; with max_new_tokens = 4 it needs 18 positions")
                && e.contains("context of 16")
                && e.contains("at most 2 new tokens fit"),
            "{e}"
        );
        let longer: Vec<i64> = (0..20).collect();
        let e = error(&[&longer], &greedy(1));
        assert!(
            e.contains("prompt 0: has 20 tokens") && e.contains("context of 16"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_max_new_tokens_is_an_error_before_any_allocation() {
        let e = error(&[&[1, 2, 3]], &greedy(100_000_000_000));
        assert!(
            e.contains("max_new_tokens = 100000000000") && e.contains("context of 16"),
            "{e}"
        );
        let e = error(&[&[1, 2, 3]], &greedy(i64::MAX));
        assert!(e.contains("context of 16"), "{e}");
    }

    #[test]
    fn an_empty_prompt_in_a_batch_is_an_error() {
        let e = error(&[&[1, 2, 3], &[]], &greedy(2));
        assert!(e.contains("prompt 1: has no tokens"), "{e}");
        // A lone prompt of padding only.
        let zeros = Tensor::zeros([1, 3], (Kind::Int64, Device::Cpu));
        let e = generate(&tiny_model(), &zeros, &zeros, &[], 0, &greedy(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prompt 0: has no tokens"), "{e}");
    }

    #[test]
    fn prompt_lengths_name_the_setting_and_the_context() {
        check_prompt_lengths(&[3, 12], 4, "--max-new-tokens", 16).unwrap();
        let e = check_prompt_lengths(&[3, 13], 4, "--max-new-tokens", 16)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prompt 1: has 13 tokens; with --max-new-tokens = 4")
                && e.contains("at most 3 new tokens fit"),
            "{e}"
        );
        let e = check_prompt_lengths(&[3, 0], 4, "--max-new-tokens", 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prompt 1: has no tokens (every prompt"), "{e}");
    }
}
