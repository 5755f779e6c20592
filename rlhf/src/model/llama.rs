//! The Llama decoder: RMSNorm, rotary embeddings (theta and scaling from the config),
//! grouped-query attention, SwiGLU, tied or untied LM head. Names and numerics follow
//! transformers' `LlamaForCausalLM`.

use std::f64::consts::PI;

use tch::{Kind, Tensor};

use super::{KvCache, Step, WeightSource, linear};
use crate::config::{LlamaConfig, RopeScaling};
use crate::error::Result;

#[derive(Debug)]
struct Layer {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    q_bias: Option<Tensor>,
    k_bias: Option<Tensor>,
    v_bias: Option<Tensor>,
    o_bias: Option<Tensor>,
    post_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    gate_bias: Option<Tensor>,
    up_bias: Option<Tensor>,
    down_bias: Option<Tensor>,
    /// `[q; k; v]` and `[gate; up]` rows in one buffer each, made when the weights are frozen
    /// and bias-free: one matmul instead of three (two) per token. `q`..`up` are then views
    /// into these buffers, so in-place updates of either stay in sync.
    qkv: Option<Tensor>,
    gate_up: Option<Tensor>,
}

impl Layer {
    /// The fused `[q; k; v]` weight unless a part has since been made to require grad (then
    /// the fused buffer, which does not, would cut the gradient).
    fn frozen_qkv(&self) -> Option<&Tensor> {
        let trained = self.q.requires_grad() || self.k.requires_grad() || self.v.requires_grad();
        self.qkv.as_ref().filter(|_| !trained)
    }

    fn frozen_gate_up(&self) -> Option<&Tensor> {
        let trained = self.gate.requires_grad() || self.up.requires_grad();
        self.gate_up.as_ref().filter(|_| !trained)
    }
}

/// Rows of `parts` in one new buffer, and views of it in the parts' places; `None` when any
/// part requires grad (training needs the separate leaves).
fn fuse_rows(parts: &mut [&mut Tensor]) -> Result<Option<Tensor>> {
    if parts.iter().any(|t| t.requires_grad()) {
        return Ok(None);
    }
    let fused = Tensor::f_cat(&parts.iter().map(|t| &**t).collect::<Vec<_>>(), 0)?;
    let mut start = 0;
    for part in parts.iter_mut() {
        let rows = part.size()[0];
        **part = fused.f_narrow(0, start, rows)?;
        start += rows;
    }
    Ok(Some(fused))
}

#[derive(Debug)]
pub struct Llama {
    pub(crate) config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// `None` when tied to the embedding.
    lm_head: Option<Tensor>,
    /// `[head_dim / 2]` f32 rotary frequencies after scaling.
    inv_freq: Tensor,
}

/// The rotary inverse frequencies as transformers computes them (f32), scaled per the config.
pub fn rope_inv_freq(config: &LlamaConfig) -> Vec<f32> {
    let dim = config.head_dim;
    let base = config.rope_theta;
    let plain = (0..dim).step_by(2).map(|i| {
        let exponent = (i as f32) / (dim as f32);
        (1.0 / base.powf(exponent as f64)) as f32
    });
    match config.rope_scaling {
        RopeScaling::None => plain.collect(),
        RopeScaling::Linear { factor } => plain.map(|f| (f as f64 / factor) as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old_context,
        } => {
            let low_freq_wavelen = old_context / low_freq_factor;
            let high_freq_wavelen = old_context / high_freq_factor;
            plain
                .map(|f| {
                    let f = f as f64;
                    let wavelen = 2.0 * PI / f;
                    let scaled = if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        f
                    };
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    if medium {
                        let smooth = (old_context / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        ((1.0 - smooth) * scaled / factor + smooth * scaled) as f32
                    } else {
                        scaled as f32
                    }
                })
                .collect()
        }
    }
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    // transformers' LlamaRMSNorm: the statistics in f32, the weight applied in the input kind.
    let kind = x.kind();
    let x32 = x.f_to_kind(Kind::Float)?;
    let variance = x32.f_square()?.f_mean_dim(-1, true, Kind::Float)?;
    let normed = x32.f_mul(&variance.f_add_scalar(eps)?.f_rsqrt()?)?;
    Ok(weight.f_mul(&normed.f_to_kind(kind)?)?)
}

fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.size()[3] / 2;
    let x1 = x.f_narrow(3, 0, half)?;
    let x2 = x.f_narrow(3, half, half)?;
    Ok(Tensor::f_cat(&[x2.f_neg()?, x1], 3)?)
}

fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    Ok(x.f_mul(cos)?.f_add(&rotate_half(x)?.f_mul(sin)?)?)
}

impl Llama {
    pub fn new(config: &LlamaConfig, w: &mut WeightSource) -> Result<Self> {
        let c = config;
        let (h, v) = (c.hidden_size, c.vocab_size);
        let q_out = c.num_attention_heads * c.head_dim;
        let kv_out = c.num_key_value_heads * c.head_dim;
        let embed = w.take("model.embed_tokens.weight", &[v, h])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers as usize);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut bias = |name: &str, n: i64, on: bool| -> Result<Option<Tensor>> {
                if on {
                    w.take(&format!("{p}.{name}.bias"), &[n]).map(Some)
                } else {
                    Ok(None)
                }
            };
            let q_bias = bias("self_attn.q_proj", q_out, c.attention_bias)?;
            let k_bias = bias("self_attn.k_proj", kv_out, c.attention_bias)?;
            let v_bias = bias("self_attn.v_proj", kv_out, c.attention_bias)?;
            let o_bias = bias("self_attn.o_proj", h, c.attention_bias)?;
            let gate_bias = bias("mlp.gate_proj", c.intermediate_size, c.mlp_bias)?;
            let up_bias = bias("mlp.up_proj", c.intermediate_size, c.mlp_bias)?;
            let down_bias = bias("mlp.down_proj", h, c.mlp_bias)?;
            let mut q = w.take(&format!("{p}.self_attn.q_proj.weight"), &[q_out, h])?;
            let mut k = w.take(&format!("{p}.self_attn.k_proj.weight"), &[kv_out, h])?;
            let mut v = w.take(&format!("{p}.self_attn.v_proj.weight"), &[kv_out, h])?;
            let mut gate = w.take(
                &format!("{p}.mlp.gate_proj.weight"),
                &[c.intermediate_size, h],
            )?;
            let mut up = w.take(
                &format!("{p}.mlp.up_proj.weight"),
                &[c.intermediate_size, h],
            )?;
            let qkv = match c.attention_bias {
                false => fuse_rows(&mut [&mut q, &mut k, &mut v])?,
                true => None,
            };
            let gate_up = match c.mlp_bias {
                false => fuse_rows(&mut [&mut gate, &mut up])?,
                true => None,
            };
            layers.push(Layer {
                input_norm: w.take(&format!("{p}.input_layernorm.weight"), &[h])?,
                q,
                k,
                v,
                o: w.take(&format!("{p}.self_attn.o_proj.weight"), &[h, q_out])?,
                q_bias,
                k_bias,
                v_bias,
                o_bias,
                post_norm: w.take(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
                gate,
                up,
                down: w.take(
                    &format!("{p}.mlp.down_proj.weight"),
                    &[h, c.intermediate_size],
                )?,
                gate_bias,
                up_bias,
                down_bias,
                qkv,
                gate_up,
            });
            // Buffers some older checkpoints carry; recomputed from the config.
            w.discard(&format!("{p}.self_attn.rotary_emb.inv_freq"));
        }
        let norm = w.take("model.norm.weight", &[h])?;
        let lm_head = if c.tie_word_embeddings {
            w.discard("lm_head.weight");
            None
        } else {
            Some(w.take("lm_head.weight", &[v, h])?)
        };
        let inv_freq = Tensor::from_slice(&rope_inv_freq(c)).f_to_device(embed.device())?;
        Ok(Self {
            config: c.clone(),
            embed,
            layers,
            norm,
            lm_head,
            inv_freq,
        })
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "model.embed_tokens.weight".to_owned(),
            self.embed.shallow_clone(),
        )];
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let mut push =
                |name: &str, t: &Tensor| out.push((format!("{p}.{name}"), t.shallow_clone()));
            push("input_layernorm.weight", &l.input_norm);
            push("self_attn.q_proj.weight", &l.q);
            push("self_attn.k_proj.weight", &l.k);
            push("self_attn.v_proj.weight", &l.v);
            push("self_attn.o_proj.weight", &l.o);
            for (name, b) in [
                ("self_attn.q_proj.bias", &l.q_bias),
                ("self_attn.k_proj.bias", &l.k_bias),
                ("self_attn.v_proj.bias", &l.v_bias),
                ("self_attn.o_proj.bias", &l.o_bias),
                ("mlp.gate_proj.bias", &l.gate_bias),
                ("mlp.up_proj.bias", &l.up_bias),
                ("mlp.down_proj.bias", &l.down_bias),
            ] {
                if let Some(b) = b {
                    push(name, b);
                }
            }
            push("post_attention_layernorm.weight", &l.post_norm);
            push("mlp.gate_proj.weight", &l.gate);
            push("mlp.up_proj.weight", &l.up);
            push("mlp.down_proj.weight", &l.down);
        }
        out.push(("model.norm.weight".to_owned(), self.norm.shallow_clone()));
        if let Some(head) = &self.lm_head {
            out.push(("lm_head.weight".to_owned(), head.shallow_clone()));
        }
        out
    }

    pub fn lm_head_weight(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// `cos`, `sin` `[B, 1, T, D]` for the positions `[B, T]`.
    fn rotary(&self, positions: &Tensor, kind: Kind) -> Result<(Tensor, Tensor)> {
        let freqs = positions
            .f_to_kind(Kind::Float)?
            .f_unsqueeze(-1)?
            .f_mul(&self.inv_freq.f_view([1, 1, -1])?)?;
        let emb = Tensor::f_cat(&[&freqs, &freqs], -1)?.f_unsqueeze(1)?;
        Ok((emb.f_cos()?.f_to_kind(kind)?, emb.f_sin()?.f_to_kind(kind)?))
    }

    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        step: &Step,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = (input_ids.size()[0], input_ids.size()[1]);
        let mut x = Tensor::f_embedding(&self.embed, input_ids, -1, false, false)?;
        let (cos, sin) = self.rotary(&step.positions, x.kind())?;
        let grouped = c.num_key_value_heads != c.num_attention_heads;
        for (i, l) in self.layers.iter().enumerate() {
            let hn = rms_norm(&x, &l.input_norm, c.rms_norm_eps)?;
            let heads = |w: &Tensor, bias: &Option<Tensor>, n: i64| -> Result<Tensor> {
                Ok(linear(&hn, w, bias.as_ref())?
                    .f_view([b, t, n, c.head_dim])?
                    .f_transpose(1, 2)?)
            };
            let (q, k, v) = match l.frozen_qkv() {
                Some(qkv) => {
                    let (nh, nkv) = (c.num_attention_heads, c.num_key_value_heads);
                    let all = linear(&hn, qkv, None)?.f_view([b, t, nh + 2 * nkv, c.head_dim])?;
                    let part = |start: i64, n: i64| -> Result<Tensor> {
                        Ok(all.f_narrow(2, start, n)?.f_transpose(1, 2)?)
                    };
                    (part(0, nh)?, part(nh, nkv)?, part(nh + nkv, nkv)?)
                }
                None => (
                    heads(&l.q, &l.q_bias, c.num_attention_heads)?,
                    heads(&l.k, &l.k_bias, c.num_key_value_heads)?,
                    heads(&l.v, &l.v_bias, c.num_key_value_heads)?,
                ),
            };
            let q = apply_rope(&q, &cos, &sin)?;
            let k = apply_rope(&k, &cos, &sin)?;
            let (k, v) = match cache.as_deref_mut() {
                Some(cache) => cache.append(i, &k, &v)?,
                None => (k, v),
            };
            let attn = step
                .pattern
                .attend(&q, &k, &v, grouped)?
                .f_transpose(1, 2)?
                .f_reshape([b, t, c.num_attention_heads * c.head_dim])?;
            x = x.f_add(&linear(&attn, &l.o, l.o_bias.as_ref())?)?;
            let hn = rms_norm(&x, &l.post_norm, c.rms_norm_eps)?;
            let (gate, up) = match l.frozen_gate_up() {
                Some(gate_up) => {
                    let both = linear(&hn, gate_up, None)?;
                    let n = c.intermediate_size;
                    (both.f_narrow(-1, 0, n)?, both.f_narrow(-1, n, n)?)
                }
                None => (
                    linear(&hn, &l.gate, l.gate_bias.as_ref())?,
                    linear(&hn, &l.up, l.up_bias.as_ref())?,
                ),
            };
            let gate = gate.f_silu()?;
            x = x.f_add(&linear(&gate.f_mul(&up)?, &l.down, l.down_bias.as_ref())?)?;
        }
        if let Some(cache) = cache {
            cache.advance(t);
        }
        rms_norm(&x, &self.norm, c.rms_norm_eps)
    }
}
