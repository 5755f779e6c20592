//! GPT-2: learned position embeddings, pre-LayerNorm blocks, fused QKV in `Conv1D` layout
//! (`[in, out]` weights), tanh-GELU MLP, LM head tied to the token embedding. Names and numerics
//! follow transformers' `GPT2LMHeadModel`.

use tch::Tensor;

use super::{KvCache, Step, WeightSource};
use crate::config::Gpt2Config;
use crate::error::{Error, Result};

#[derive(Debug)]
struct Block {
    ln_1: (Tensor, Tensor),
    c_attn: (Tensor, Tensor),
    c_proj: (Tensor, Tensor),
    ln_2: (Tensor, Tensor),
    c_fc: (Tensor, Tensor),
    mlp_proj: (Tensor, Tensor),
}

#[derive(Debug)]
pub struct Gpt2 {
    pub(crate) config: Gpt2Config,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
}

/// `x @ w + b` with a `Conv1D` weight `[in, out]`.
fn conv1d(x: &Tensor, (w, b): &(Tensor, Tensor)) -> Result<Tensor> {
    Ok(x.f_matmul(w)?.f_add(b)?)
}

fn layer_norm(x: &Tensor, (w, b): &(Tensor, Tensor), eps: f64) -> Result<Tensor> {
    let n = w.size()[0];
    Ok(x.f_layer_norm([n], Some(w), Some(b), eps, false)?)
}

impl Gpt2 {
    pub fn new(config: &Gpt2Config, w: &mut WeightSource) -> Result<Self> {
        let c = config;
        let e = c.n_embd;
        let mut pair = |name: &str, weight: &[i64], bias: i64| -> Result<(Tensor, Tensor)> {
            Ok((
                w.take(&format!("{name}.weight"), weight)?,
                w.take(&format!("{name}.bias"), &[bias])?,
            ))
        };
        let mut blocks = Vec::with_capacity(c.n_layer as usize);
        for i in 0..c.n_layer {
            let p = format!("transformer.h.{i}");
            blocks.push(Block {
                ln_1: pair(&format!("{p}.ln_1"), &[e], e)?,
                c_attn: pair(&format!("{p}.attn.c_attn"), &[e, 3 * e], 3 * e)?,
                c_proj: pair(&format!("{p}.attn.c_proj"), &[e, e], e)?,
                ln_2: pair(&format!("{p}.ln_2"), &[e], e)?,
                c_fc: pair(&format!("{p}.mlp.c_fc"), &[e, c.n_inner], c.n_inner)?,
                mlp_proj: pair(&format!("{p}.mlp.c_proj"), &[c.n_inner, e], e)?,
            });
        }
        let ln_f = pair("transformer.ln_f", &[e], e)?;
        let wte = w.take("transformer.wte.weight", &[c.vocab_size, e])?;
        let wpe = w.take("transformer.wpe.weight", &[c.n_positions, e])?;
        w.discard("lm_head.weight");
        for i in 0..c.n_layer {
            // Causal-mask buffers of older checkpoints.
            w.discard(&format!("transformer.h.{i}.attn.bias"));
            w.discard(&format!("transformer.h.{i}.attn.masked_bias"));
        }
        Ok(Self {
            config: c.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
        })
    }

    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![
            (
                "transformer.wte.weight".to_owned(),
                self.wte.shallow_clone(),
            ),
            (
                "transformer.wpe.weight".to_owned(),
                self.wpe.shallow_clone(),
            ),
        ];
        let mut push = |name: String, (w, b): &(Tensor, Tensor)| {
            out.push((format!("{name}.weight"), w.shallow_clone()));
            out.push((format!("{name}.bias"), b.shallow_clone()));
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("transformer.h.{i}");
            push(format!("{p}.ln_1"), &b.ln_1);
            push(format!("{p}.attn.c_attn"), &b.c_attn);
            push(format!("{p}.attn.c_proj"), &b.c_proj);
            push(format!("{p}.ln_2"), &b.ln_2);
            push(format!("{p}.mlp.c_fc"), &b.c_fc);
            push(format!("{p}.mlp.c_proj"), &b.mlp_proj);
        }
        push("transformer.ln_f".to_owned(), &self.ln_f);
        out
    }

    pub fn lm_head_weight(&self) -> &Tensor {
        &self.wte
    }

    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        step: &Step,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = (input_ids.size()[0], input_ids.size()[1]);
        let max_position = step.positions.f_max()?.f_int64_value(&[])?;
        if max_position >= c.n_positions {
            return Err(Error::Parameter {
                name: "position",
                value: max_position.to_string(),
                expected: format!("below n_positions = {}", c.n_positions),
            });
        }
        let heads = c.n_head;
        let d = c.n_embd / heads;
        let mut x = Tensor::f_embedding(&self.wte, input_ids, -1, false, false)?.f_add(
            &Tensor::f_embedding(&self.wpe, &step.positions, -1, false, false)?,
        )?;
        for (i, blk) in self.blocks.iter().enumerate() {
            let hn = layer_norm(&x, &blk.ln_1, c.layer_norm_epsilon)?;
            let qkv = conv1d(&hn, &blk.c_attn)?.f_view([b, t, 3, heads, d])?;
            let part = |j: i64| -> Result<Tensor> { Ok(qkv.f_select(2, j)?.f_transpose(1, 2)?) };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let (k, v) = match cache.as_deref_mut() {
                Some(cache) => cache.append(i, &k, &v)?,
                None => (k, v),
            };
            let attn = step
                .pattern
                .attend(&q, &k, &v, false)?
                .f_transpose(1, 2)?
                .f_reshape([b, t, c.n_embd])?;
            x = x.f_add(&conv1d(&attn, &blk.c_proj)?)?;
            let hn = layer_norm(&x, &blk.ln_2, c.layer_norm_epsilon)?;
            let inner = conv1d(&hn, &blk.c_fc)?.f_gelu("tanh")?;
            x = x.f_add(&conv1d(&inner, &blk.mlp_proj)?)?;
        }
        if let Some(cache) = cache {
            cache.advance(t);
        }
        layer_norm(&x, &self.ln_f, c.layer_norm_epsilon)
    }
}
