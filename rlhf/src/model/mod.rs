//! Decoder-only language models in tch: the Llama family and GPT-2, behind one type,
//! [`CausalLm`], with Hugging Face parameter names.
//!
//! Batches are left-padded: `input_ids [B, T]` are the new tokens, `attention_mask [B, S]`
//! covers every position the cache holds plus the new ones (`S = cached + T`, 1 = real token).
//! Position ids count real tokens only (`cumsum(mask) - 1`), as transformers' `generate` does.

pub mod gpt2;
pub mod llama;

use std::collections::HashMap;

use hone_kernels::linear_few_rows;
use tch::{Device, Kind, Tensor};

use crate::config::{ArchConfig, ModelConfig};
use crate::error::{Error, Result};

/// Weights by Hugging Face name, taken one by one with their expected shapes.
pub struct WeightSource<'a> {
    tensors: HashMap<String, Tensor>,
    name: &'a str,
    device: Device,
    kind: Kind,
}

impl<'a> WeightSource<'a> {
    /// `name` says where the weights came from (a file or folder) in errors.
    pub fn new(
        tensors: HashMap<String, Tensor>,
        name: &'a str,
        device: Device,
        kind: Kind,
    ) -> Self {
        Self {
            tensors,
            name,
            device,
            kind,
        }
    }

    pub fn take(&mut self, tensor: &str, shape: &[i64]) -> Result<Tensor> {
        let value = self.tensors.remove(tensor).ok_or_else(|| Error::Tensor {
            source_name: self.name.to_owned(),
            tensor: tensor.to_owned(),
            message: format!("missing (expected shape {shape:?})"),
        })?;
        if value.size() != shape {
            return Err(Error::Tensor {
                source_name: self.name.to_owned(),
                tensor: tensor.to_owned(),
                message: format!("has shape {:?}, the config implies {shape:?}", value.size()),
            });
        }
        if !value.is_floating_point() {
            return Err(Error::Tensor {
                source_name: self.name.to_owned(),
                tensor: tensor.to_owned(),
                message: format!(
                    "has kind {:?}, expected a floating-point kind",
                    value.kind()
                ),
            });
        }
        Ok(value
            .f_to_device(self.device)?
            .f_to_kind(self.kind)?
            .f_contiguous()?)
    }

    pub fn contains(&self, tensor: &str) -> bool {
        self.tensors.contains_key(tensor)
    }

    /// Drops a tensor hone recomputes or does not use (tied heads, rotary buffers).
    pub fn discard(&mut self, tensor: &str) {
        self.tensors.remove(tensor);
    }

    /// Names left over after the model took what it needs.
    pub fn leftover(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Keys and values of every layer for the positions seen so far, in buffers allocated once for
/// `capacity` positions (appending is a copy into a slice, not a concatenation).
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// Errors (instead of aborting) when libtorch cannot allocate the buffers.
    pub fn new(
        layers: i64,
        batch: i64,
        heads: i64,
        head_dim: i64,
        capacity: i64,
        kind: Kind,
        device: Device,
    ) -> Result<Self> {
        let shape = [batch, heads, capacity, head_dim];
        if shape.iter().any(|&d| d < 1)
            || shape
                .iter()
                .try_fold(layers.max(0), |acc: i64, &d| acc.checked_mul(d))
                .is_none()
        {
            return Err(Error::Parameter {
                name: "KV cache shape",
                value: format!("{layers} layers of {shape:?}"),
                expected: "positive sizes whose product fits an i64".into(),
            });
        }
        let make = || Tensor::f_zeros(shape, (kind, device));
        Ok(Self {
            layers: (0..layers)
                .map(|_| Ok((make()?, make()?)))
                .collect::<Result<_>>()?,
            len: 0,
            capacity,
        })
    }

    /// Positions held.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> i64 {
        self.capacity
    }

    /// Writes `k`, `v` (`[B, heads, T, D]`) of `layer` after the held positions and returns
    /// views of all keys and values so far. The length advances in [`Self::advance`].
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let t = k.size()[2];
        if self.len + t > self.capacity {
            return Err(Error::Parameter {
                name: "sequence length",
                value: (self.len + t).to_string(),
                expected: format!("at most the cache capacity {}", self.capacity),
            });
        }
        let (kc, vc) = &self.layers[layer];
        kc.f_narrow(2, self.len, t)?.f_copy_(k)?;
        vc.f_narrow(2, self.len, t)?.f_copy_(v)?;
        Ok((
            kc.f_narrow(2, 0, self.len + t)?,
            vc.f_narrow(2, 0, self.len + t)?,
        ))
    }

    pub(crate) fn advance(&mut self, t: i64) {
        self.len += t;
    }

    /// A copy with every batch row repeated `repeats` times in place (rows `b·r .. b·r + r`
    /// hold row b), so several continuations of one prompt share its prefill.
    pub fn repeat_rows(&self, repeats: i64) -> Result<Self> {
        let repeat = |t: &Tensor| t.f_repeat_interleave_self_int(repeats, 0, None);
        Ok(Self {
            layers: self
                .layers
                .iter()
                .map(|(k, v)| Ok((repeat(k)?, repeat(v)?)))
                .collect::<Result<_>>()?,
            len: self.len,
            capacity: self.capacity,
        })
    }
}

/// What a forward pass needs besides the weights: positions, the attention mask and the cache.
pub(crate) struct Step {
    /// `[B, T]` int64 position ids of the new tokens.
    pub positions: Tensor,
    pub pattern: Pattern,
}

/// Which keys each query attends to.
pub(crate) enum Pattern {
    /// Causal over the new tokens only (no padding, nothing cached).
    Causal,
    /// Every key (one new token per row, no padding).
    Full,
    /// `[B, 1, T, S]` bool, true where a query may attend to a key.
    Masked(Tensor),
}

impl Pattern {
    /// Scaled dot-product attention of `q [B, H, T, D]` over `k`, `v [B, KVH, S, D]` (grouped
    /// heads when KVH < H).
    pub fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, grouped: bool) -> Result<Tensor> {
        let (mask, causal) = match self {
            Pattern::Causal => (None, true),
            Pattern::Full => (None, false),
            Pattern::Masked(mask) => (Some(mask), false),
        };
        Ok(Tensor::f_scaled_dot_product_attention(
            q, k, v, mask, 0.0, causal, None, grouped,
        )?)
    }
}

impl Step {
    pub fn new(attention_mask: &Tensor, t: i64, cached: i64, device: Device) -> Result<Self> {
        let size = attention_mask.size();
        if size.len() != 2 || size[1] != cached + t {
            return Err(Error::Parameter {
                name: "attention_mask shape",
                value: format!("{size:?}"),
                expected: format!("[B, {}] (cached {cached} + new {t})", cached + t),
            });
        }
        let valid = attention_mask.f_to_device(device)?.f_ne(0)?;
        let counts = valid.f_cumsum(1, Kind::Int64)?;
        let positions = counts
            .f_narrow(1, cached, t)?
            .f_sub_scalar(1)?
            .f_clamp_min(0)?;
        let all_valid = valid.f_all()?.f_int64_value(&[])? != 0;
        let pattern = if all_valid && cached == 0 {
            Pattern::Causal
        } else if all_valid && t == 1 {
            Pattern::Full
        } else {
            let s = cached + t;
            let keys = Tensor::f_arange(s, (Kind::Int64, device))?.f_view([1, 1, s])?;
            let queries =
                Tensor::f_arange_start(cached, s, (Kind::Int64, device))?.f_view([1, t, 1])?;
            let causal = keys.f_le_tensor(&queries)?;
            let own = keys.f_eq_tensor(&queries)?;
            // A padded query attends to itself, so no row is fully masked (which would give NaN
            // that the next layer's keys and values would carry into real rows).
            let allowed = causal
                .f_logical_and(&valid.f_unsqueeze(1)?)?
                .f_logical_or(&own)?;
            Pattern::Masked(allowed.f_unsqueeze(1)?)
        };
        Ok(Self { positions, pattern })
    }
}

#[derive(Debug)]
enum Body {
    Llama(llama::Llama),
    Gpt2(gpt2::Gpt2),
}

/// A causal language model: the transformer body plus the LM head.
#[derive(Debug)]
pub struct CausalLm {
    config: ModelConfig,
    body: Body,
    device: Device,
    kind: Kind,
}

impl CausalLm {
    /// Builds the model from named weights; `source` names their origin in errors. Tensors left
    /// over (not part of the architecture) are an error naming them.
    pub fn from_weights(config: ModelConfig, mut weights: WeightSource) -> Result<Self> {
        let (device, kind) = (weights.device, weights.kind);
        // A config built in code gets the checks config.json and GGUF files get, before the
        // layer count sizes any buffer.
        config.arch.check().map_err(|e| Error::Field {
            path: format!("{} (config)", weights.name).into(),
            field: e.field.to_owned(),
            message: e.message,
        })?;
        let body = match &config.arch {
            ArchConfig::Llama(c) => Body::Llama(llama::Llama::new(c, &mut weights)?),
            ArchConfig::Gpt2(c) => Body::Gpt2(gpt2::Gpt2::new(c, &mut weights)?),
        };
        let leftover = weights.leftover();
        if !leftover.is_empty() {
            let shown: Vec<&str> = leftover.iter().take(5).map(String::as_str).collect();
            return Err(Error::Tensor {
                source_name: weights.name.to_owned(),
                tensor: shown.join("`, `"),
                message: format!(
                    "{} tensor(s) the {} architecture does not use",
                    leftover.len(),
                    config
                        .raw
                        .get("model_type")
                        .and_then(|v| v.as_str())
                        .unwrap_or("?")
                ),
            });
        }
        Ok(Self {
            config,
            body,
            device,
            kind,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The parameters by Hugging Face name (a tied LM head appears once, as the embedding).
    /// Elements in the named tensors (a model's parameter count).
    pub fn count_parameters(named: &[(String, Tensor)]) -> i64 {
        named.iter().map(|(_, t)| t.numel() as i64).sum()
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        match &self.body {
            Body::Llama(m) => m.named_parameters(),
            Body::Gpt2(m) => m.named_parameters(),
        }
    }

    /// Replaces the parameters by tensors of the same names and shapes (for example views into
    /// a flat training buffer).
    pub fn set_parameters(&mut self, tensors: HashMap<String, Tensor>, source: &str) -> Result<()> {
        let mut weights = WeightSource::new(tensors, source, self.device, self.kind);
        // The tensors must be used as given (views keep their autograd edges): no conversion.
        for (name, t) in &weights.tensors {
            if t.device() != self.device || t.kind() != self.kind {
                return Err(Error::Tensor {
                    source_name: source.to_owned(),
                    tensor: name.clone(),
                    message: format!(
                        "is {:?} on {:?}, the model is {:?} on {:?}",
                        t.kind(),
                        t.device(),
                        self.kind,
                        self.device
                    ),
                });
            }
        }
        let replaced = Self::from_weights(
            self.config.clone(),
            WeightSource {
                tensors: std::mem::take(&mut weights.tensors),
                name: source,
                device: self.device,
                kind: self.kind,
            },
        )?;
        self.body = replaced.body;
        Ok(())
    }

    /// A cache for `batch` sequences of up to `capacity` positions.
    pub fn new_cache(&self, batch: i64, capacity: i64) -> Result<KvCache> {
        let (heads, head_dim) = match &self.body {
            Body::Llama(m) => (m.config.num_key_value_heads, m.config.head_dim),
            Body::Gpt2(m) => (m.config.n_head, m.config.n_embd / m.config.n_head),
        };
        KvCache::new(
            self.config.num_layers(),
            batch,
            heads,
            head_dim,
            capacity,
            self.kind,
            self.device,
        )
    }

    /// Final hidden states `[B, T, H]` (after the last norm) of the new tokens `input_ids
    /// [B, T]`, given the mask over cached and new positions; appends to `cache` when given.
    pub fn forward_hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let size = input_ids.size();
        if size.len() != 2 || size[1] == 0 {
            return Err(Error::Parameter {
                name: "input_ids shape",
                value: format!("{size:?}"),
                expected: "[B, T] with T >= 1".into(),
            });
        }
        let t = size[1];
        let cached = cache.as_ref().map_or(0, |c| c.len());
        let input_ids = input_ids.f_to_device(self.device)?;
        let vocab = self.config.vocab_size();
        let (lo, hi) = (
            input_ids.f_min()?.f_int64_value(&[])?,
            input_ids.f_max()?.f_int64_value(&[])?,
        );
        if lo < 0 || hi >= vocab {
            return Err(Error::Parameter {
                name: "token id",
                value: if lo < 0 { lo } else { hi }.to_string(),
                expected: format!("within the vocabulary 0..{vocab}"),
            });
        }
        let step = Step::new(attention_mask, t, cached, self.device)?;
        let hidden = match &self.body {
            Body::Llama(m) => m.forward(&input_ids, &step, cache)?,
            Body::Gpt2(m) => m.forward(&input_ids, &step, cache)?,
        };
        Ok(hidden)
    }

    /// The LM head's weight `[V, H]` (the embedding when tied).
    pub fn lm_head_weight(&self) -> &Tensor {
        match &self.body {
            Body::Llama(m) => m.lm_head_weight(),
            Body::Gpt2(m) => m.lm_head_weight(),
        }
    }

    /// Logits `[..., V]` of hidden states `[..., H]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = self.lm_head_weight();
        let size = hidden.size();
        let rows: i64 = size[..size.len().saturating_sub(1)].iter().product();
        if let Some(logits) = linear_few_rows(hidden, head, None)? {
            return Ok(logits);
        }
        if self.device == Device::Cpu && (2..=SMALL_HEAD_BATCH).contains(&rows) {
            // A few rows (a decoding step): `W h^T` streams the [V, H] head once and measured
            // 1.4-1.9x faster than `h W^T` on CPU at 8 rows (SmolLM2, V = 49152).
            let flat = hidden.f_reshape([rows, size[size.len() - 1]])?;
            let mut shape = size.clone();
            *shape.last_mut().unwrap_or(&mut 0) = head.size()[0];
            return Ok(head
                .f_mm(&flat.f_transpose(0, 1)?)?
                .f_transpose(0, 1)?
                .f_contiguous()?
                .f_view(shape.as_slice())?);
        }
        Ok(hidden.f_linear::<Tensor>(head, None)?)
    }

    /// Logits `[B, T, V]` of a whole padded batch (no cache).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let hidden = self.forward_hidden(input_ids, attention_mask, None)?;
        self.logits(&hidden)
    }
}

/// Up to this many hidden rows, CPU logits are computed as `W h^T` (see [`CausalLm::logits`]).
const SMALL_HEAD_BATCH: i64 = 16;

/// `x @ w^T (+ b)`; a decoding step's few rows on the CPU through hone-kernels' loop, which
/// streams `w` at 2-3x the speed of libtorch's GEMM there.
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    if let Some(y) = linear_few_rows(x, w, b)? {
        return Ok(y);
    }
    Ok(x.f_linear(w, b)?)
}
