//! Supervised fine-tuning (loss on response tokens only) and reward-model training
//! (Bradley–Terry on chosen/rejected pairs), in run directories like the trainer's:
//! `config.toml`, `hone.log`, `checkpoints/step-*` in the Hugging Face layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hone_trainer::run_dir::{CheckpointStore, RunDir};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{Checkpoint, write_checkpoint_files};
use crate::error::{Error, Result};
use crate::reward::RewardModel;
use crate::tokenizer::{Tokenizer, left_pad};

/// Settings of `hone sft` and `hone rm` (one TOML run file; unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The starting checkpoint folder (Hugging Face layout).
    pub model: PathBuf,
    /// JSONL: `{"prompt", "response"}` for SFT, `{"prompt", "chosen", "rejected"}` for RM.
    pub data: PathBuf,
    /// Wrap prompts in the tokenizer's chat template.
    pub chat: bool,
    pub learning_rate: f64,
    pub adam_eps: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Stop after this many optimiser steps (0: run all epochs).
    pub max_steps: u64,
    /// Sequences (prompt + response) are cut to this many tokens.
    pub max_length: usize,
    pub max_grad_norm: f64,
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N.
    pub device: String,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    pub keep_checkpoints: usize,
}

impl Default for TrainConfig {
    /// TRL's SFT defaults where they apply (learning rate 2e-5, gradient clipping at 1.0).
    fn default() -> Self {
        Self {
            model: PathBuf::new(),
            data: PathBuf::new(),
            chat: false,
            learning_rate: 2e-5,
            adam_eps: 1e-8,
            batch_size: 8,
            epochs: 1,
            max_steps: 0,
            max_length: 1024,
            max_grad_norm: 1.0,
            seed: 0,
            device: "auto".into(),
            checkpoint_every: 0,
            keep_checkpoints: 2,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, expected: &str| Error::Parameter {
            name,
            value,
            expected: expected.to_owned(),
        };
        if self.model.as_os_str().is_empty() {
            return Err(bad("model", "\"\"".into(), "a checkpoint folder"));
        }
        if self.data.as_os_str().is_empty() {
            return Err(bad("data", "\"\"".into(), "a JSONL file"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(bad("learning_rate", self.learning_rate.to_string(), "> 0"));
        }
        if self.batch_size == 0 {
            return Err(bad("batch_size", "0".into(), "at least 1"));
        }
        if self.epochs == 0 {
            return Err(bad("epochs", "0".into(), "at least 1"));
        }
        if self.max_length < 2 {
            return Err(bad("max_length", self.max_length.to_string(), "at least 2"));
        }
        check_optimiser_settings(self.adam_eps, self.max_grad_norm)?;
        parse_device(&self.device)?;
        Ok(())
    }
}

/// `adam_eps` >= 0 and `max_grad_norm` > 0 (infinite: no clipping), as [`Optimiser`] needs.
pub(crate) fn check_optimiser_settings(eps: f64, max_grad_norm: f64) -> Result<()> {
    let bad = |name: &'static str, value: f64, expected: &str| Error::Parameter {
        name,
        value: value.to_string(),
        expected: expected.to_owned(),
    };
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(bad("adam_eps", eps, ">= 0"));
    }
    if max_grad_norm.is_nan() || max_grad_norm <= 0.0 {
        return Err(bad("max_grad_norm", max_grad_norm, "> 0"));
    }
    Ok(())
}

/// `auto` (CUDA when available), `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(text: &str) -> Result<Device> {
    let bad = || Error::Parameter {
        name: "device",
        value: text.to_owned(),
        expected: "auto, cpu, cuda or cuda:N".into(),
    };
    match text {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(bad),
    }
}

/// Reads a JSONL file of objects with the string fields `fields`.
pub fn read_jsonl(path: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let text = crate::tasks::read_data_file(path)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let error = |message: String| Error::Dataset {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| error(format!("invalid JSON: {e}")))?;
        let row = fields
            .iter()
            .map(|f| {
                value[*f]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| error(format!("field `{f}` is missing or not a string")))
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::Dataset {
            path: path.to_owned(),
            line: 0,
            message: "no examples".into(),
        });
    }
    Ok(rows)
}

/// Prompt tokens (chat template or plain with the post-processor) and completion tokens.
fn encode_pair(
    tokenizer: &Tokenizer,
    chat: bool,
    prompt: &str,
    completion: &str,
    eos: Option<i64>,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let prompt_ids = if chat {
        tokenizer.encode_chat(prompt)?
    } else {
        tokenizer.encode(prompt, true)?
    };
    let mut completion_ids = tokenizer.encode(completion, false)?;
    completion_ids.extend(eos);
    Ok((prompt_ids, completion_ids))
}

/// One row of a training batch: tokens and which of them the loss covers.
struct Example {
    ids: Vec<i64>,
    /// Per token: 1 where the token is a target (a response token).
    targets: Vec<i64>,
}

fn sft_example(
    prompt: Vec<i64>,
    response: Vec<i64>,
    max_length: usize,
    path: &Path,
    line: usize,
) -> Result<Example> {
    if prompt.len() + 1 > max_length {
        return Err(Error::Dataset {
            path: path.to_owned(),
            line,
            message: format!(
                "the prompt has {} tokens, leaving no room for the response within max_length = {max_length}",
                prompt.len()
            ),
        });
    }
    let mut ids = prompt.clone();
    ids.extend(&response);
    ids.truncate(max_length);
    let mut targets = vec![0; prompt.len()];
    targets.resize(ids.len(), 1);
    Ok(Example { ids, targets })
}

/// Deterministic shuffles (SplitMix64 + Fisher–Yates): reproducible from the seed alone.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Adam (as `torch.optim.Adam`, no weight decay) and gradient-norm clipping over separate
/// leaf tensors. Not the trainer's flat buffer: autograd's backward of each view into a flat
/// leaf materialises a zero tensor of the whole buffer, which for an LLM's few hundred
/// parameters of 10^8 elements costs far more than the model itself.
pub struct Optimiser {
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    steps: i32,
    learning_rate: f64,
    eps: f64,
    max_grad_norm: f64,
}

impl Optimiser {
    /// Returns the optimiser and the leaf tensors to install in the model, by name.
    pub fn new(
        named: Vec<(String, Tensor)>,
        device: Device,
        learning_rate: f64,
        eps: f64,
        max_grad_norm: f64,
    ) -> Result<(Self, HashMap<String, Tensor>)> {
        check_optimiser_settings(eps, max_grad_norm)?;
        if !(learning_rate >= 0.0 && learning_rate.is_finite()) {
            return Err(Error::Parameter {
                name: "learning_rate",
                value: learning_rate.to_string(),
                expected: ">= 0".into(),
            });
        }
        let mut params = Vec::with_capacity(named.len());
        let mut names = Vec::with_capacity(named.len());
        let mut leaves = HashMap::with_capacity(named.len());
        for (name, t) in named {
            if t.kind() != Kind::Float {
                return Err(Error::Tensor {
                    source_name: "training".into(),
                    tensor: name,
                    message: format!("is {:?}; training runs in f32", t.kind()),
                });
            }
            let source = t.f_detach()?.f_to_device(device)?;
            let mut leaf = source.f_empty_like()?;
            leaf.f_copy_(&source)?;
            let leaf = leaf.set_requires_grad(true);
            params.push(leaf.shallow_clone());
            names.push(name.clone());
            leaves.insert(name, leaf);
        }
        let zeros = |p: &Tensor| p.zeros_like();
        let exp_avg = params.iter().map(zeros).collect();
        let exp_avg_sq = params.iter().map(zeros).collect();
        Ok((
            Self {
                names,
                params,
                exp_avg,
                exp_avg_sq,
                steps: 0,
                learning_rate,
                eps,
                max_grad_norm,
            },
            leaves,
        ))
    }

    /// Backward of `loss`, clipping, one Adam step; returns the gradient norm before clipping.
    /// The gradients go straight to the step (autograd's `grad`, not the parameters' `.grad`),
    /// so nothing is zeroed or accumulated.
    pub fn step(&mut self, loss: &Tensor) -> Result<f64> {
        let grads = self.gradients(loss)?;
        self.apply(grads)
    }

    /// The gradients of `loss` with respect to the parameters, one per parameter (undefined
    /// where the loss does not depend on it), for [`Self::apply`]; the parameters' `.grad` is
    /// left alone.
    pub fn gradients(&self, loss: &Tensor) -> Result<Vec<Tensor>> {
        Ok(Tensor::f_run_backward(&[loss], &self.params, false, false)?)
    }

    /// Zeroes the gradients (before a backward whose gradients [`Self::update`] applies).
    pub fn zero_grad(&mut self) -> Result<()> {
        for p in &self.params {
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.f_zero_()?;
            }
        }
        Ok(())
    }

    /// Clipping and one Adam step with the gradients accumulated in the parameters' `.grad`
    /// since [`Self::zero_grad`]; returns the gradient norm before clipping (an error, and no
    /// step, when it is not finite). The step scales the gradients by the clipping factor in
    /// place: read them before, if at all.
    pub fn update(&mut self) -> Result<f64> {
        let grads = self.params.iter().map(Tensor::grad).collect();
        self.apply(grads)
    }

    /// Clipping (as `torch.nn.utils.clip_grad_norm_`) and one step of `torch.optim.Adam` with
    /// `grads`, one per parameter, through the fused kernel; returns the gradient norm before
    /// clipping. The gradients are scaled by the clipping factor in place. An undefined
    /// gradient (a parameter the loss does not reach) counts as zero, so its moments decay and
    /// their momentum still moves it, where `torch.optim.Adam` skips a parameter whose `.grad`
    /// is `None`.
    pub fn apply(&mut self, grads: Vec<Tensor>) -> Result<f64> {
        tch::no_grad(|| -> Result<f64> {
            if grads.len() != self.params.len() {
                return Err(Error::Parameter {
                    name: "gradients",
                    value: grads.len().to_string(),
                    expected: format!("one per parameter ({})", self.params.len()),
                });
            }
            // Autograd may hand two parameters the same tensor (the gradient of `a + b`); the
            // step scales each gradient in place, so each must have its own memory.
            let mut seen = std::collections::HashSet::new();
            let grads = grads
                .into_iter()
                .zip(&self.params)
                .map(|(g, p)| {
                    if !g.defined() {
                        return Ok(p.zeros_like());
                    }
                    let g = g.f_contiguous()?;
                    if seen.insert(g.data_ptr() as usize) {
                        return Ok(g);
                    }
                    let mut own = g.f_empty_like()?;
                    own.f_copy_(&g)?;
                    Ok(own)
                })
                .collect::<Result<Vec<_>>>()?;
            let norms = grads
                .iter()
                .map(|g| g.f_norm())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let norm = if norms.is_empty() {
                0.0
            } else {
                Tensor::f_stack(&norms, 0)?.f_norm()?.f_double_value(&[])?
            };
            if !norm.is_finite() {
                return Err(Error::Diverged(format!("gradient norm is {norm}")));
            }
            let clip = (self.max_grad_norm / (norm + 1e-6)).min(1.0);
            let hyper = hone_kernels::Adam {
                lr: self.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                eps: self.eps,
            };
            hone_kernels::adam_step(
                &self.params,
                &grads,
                &self.exp_avg,
                &self.exp_avg_sq,
                i64::from(self.steps) + 1,
                hyper,
                1.0 / clip,
            )?;
            self.steps += 1;
            if let Some(what) = self.first_non_finite()? {
                return Err(Error::Diverged(format!(
                    "{what} holds NaN or infinite values after optimiser step {} (learning_rate \
                     {}); nothing of this step is saved",
                    self.steps, self.learning_rate
                )));
            }
            Ok(norm)
        })
    }

    /// The first parameter or Adam moment that holds a NaN or an infinity, named.
    pub fn first_non_finite(&self) -> Result<Option<String>> {
        for (what, tensors) in [
            ("parameter", &self.params),
            ("Adam exp_avg of", &self.exp_avg),
            ("Adam exp_avg_sq of", &self.exp_avg_sq),
        ] {
            let named = self.names.iter().map(String::as_str).zip(tensors);
            if let Some(name) = hone_trainer::params::first_non_finite(named)? {
                return Ok(Some(format!("{what} `{name}`")));
            }
        }
        Ok(None)
    }

    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// The moments by parameter name (`<name>.exp_avg`, `<name>.exp_avg_sq`) and the step count
    /// (`step`), for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len() + 1);
        for ((name, m), v) in self.names.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
            out.push((format!("{name}.exp_avg"), m.shallow_clone()));
            out.push((format!("{name}.exp_avg_sq"), v.shallow_clone()));
        }
        out.push((STEP.to_owned(), Tensor::from_slice(&[self.steps as i64])));
        out
    }

    /// Restores what [`Self::state_tensors`] wrote; `source` names the file in errors. Every
    /// parameter's moments must be there with its shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, source: &str) -> Result<()> {
        let missing = |tensor: String, message: String| Error::Tensor {
            source_name: source.to_owned(),
            tensor,
            message,
        };
        let steps = tensors
            .get(STEP)
            .ok_or_else(|| missing(STEP.into(), "missing".into()))?
            .f_int64_value(&[0])?;
        let mut loaded = Vec::with_capacity(2 * self.names.len());
        for (name, p) in self.names.iter().zip(&self.params) {
            for moment in ["exp_avg", "exp_avg_sq"] {
                let key = format!("{name}.{moment}");
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| missing(key.clone(), "missing".into()))?;
                if t.size() != p.size() {
                    return Err(missing(
                        key,
                        format!("has shape {:?}, expected {:?}", t.size(), p.size()),
                    ));
                }
                loaded.push(
                    t.f_to_kind(Kind::Float)?
                        .f_to_device(p.device())?
                        .f_contiguous()?,
                );
            }
        }
        let mut loaded = loaded.into_iter();
        for (m, v) in self.exp_avg.iter_mut().zip(&mut self.exp_avg_sq) {
            if let (Some(a), Some(b)) = (loaded.next(), loaded.next()) {
                *m = a;
                *v = b;
            }
        }
        self.steps = i32::try_from(steps)
            .map_err(|_| missing(STEP.into(), format!("{steps} is not a valid step count")))?;
        Ok(())
    }
}

/// The step count's name in [`Optimiser::state_tensors`].
const STEP: &str = "step";

/// One optimiser step's numbers, for progress output.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: u64,
    pub epoch: usize,
    pub loss: f64,
    /// RM: the fraction of pairs whose chosen response scored higher.
    pub accuracy: Option<f64>,
    pub grad_norm: f64,
    pub tokens: i64,
    pub seconds: f64,
}

#[derive(Debug)]
pub struct TrainSummary {
    pub steps: u64,
    pub last_checkpoint: Option<PathBuf>,
    pub final_loss: f64,
}

fn check_finite(what: &str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::Diverged(format!("{what} is {value}")))
    }
}

fn write_run_config(run: &RunDir, config: &TrainConfig) -> Result<()> {
    let text = hone_trainer::config::to_toml(config)?;
    crate::checkpoint::write_file(&run.config_path(), text.as_bytes())
}

/// `hone sft`: trains the checkpoint `config.model` on prompt/response pairs, the loss on
/// response tokens only (mean over them), saving checkpoints into `run`.
pub fn run_sft(
    run: &RunDir,
    config: &TrainConfig,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<TrainSummary> {
    config.validate()?;
    write_run_config(run, config)?;
    let device = parse_device(&config.device)?;
    tch::manual_seed(config.seed as i64);
    let ckpt = Checkpoint::load(&config.model, device, Kind::Float)?;
    ckpt.tokenizer()?;
    let Checkpoint {
        mut model,
        tokenizer,
        generation,
        ..
    } = ckpt;
    let tokenizer = tokenizer
        .as_ref()
        .ok_or_else(|| Error::Tokenizer("missing".into()))?;
    let eos = generation.eos_token_ids.first().copied();
    let pad = generation.pad_token_id.or(eos).unwrap_or(0);
    let rows = read_jsonl(&config.data, &["prompt", "response"])?;
    let examples = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (p, r) = encode_pair(tokenizer, config.chat, &row[0], &row[1], eos)?;
            sft_example(p, r, config.max_length, &config.data, i + 1)
        })
        .collect::<Result<Vec<_>>>()?;
    let (mut optimiser, views) = Optimiser::new(
        model.named_parameters(),
        device,
        config.learning_rate,
        config.adam_eps,
        config.max_grad_norm,
    )?;
    model.set_parameters(views, "training parameters")?;
    let store = CheckpointStore::new(run.checkpoints_dir(), config.keep_checkpoints);
    let save = |step: u64, model: &crate::model::CausalLm| -> Result<PathBuf> {
        let tensors: Vec<(String, Tensor)> = tch::no_grad(|| {
            model
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect()
        });
        Ok(store.save(step, None, |dir| {
            write_checkpoint_files(dir, model.config(), &tensors, &generation, Some(tokenizer))
                .map_err(|e| hone_trainer::Error::Checkpoint(e.to_string()))
        })?)
    };
    train_batches(
        config,
        "SFT",
        examples.len(),
        &mut optimiser,
        on_step,
        &mut |batch| {
            let ids: Vec<Vec<i64>> = batch.iter().map(|&i| examples[i].ids.clone()).collect();
            let targets: Vec<Vec<i64>> =
                batch.iter().map(|&i| examples[i].targets.clone()).collect();
            let (input, mask) = left_pad(&ids, pad, device)?;
            let (target_mask, _) = left_pad(&targets, 0, device)?;
            let loss = sft_loss(&model, &input, &mask, &target_mask)?;
            Ok(BatchLoss {
                loss,
                accuracy: None,
                tokens: mask.f_sum(Kind::Int64)?.f_int64_value(&[])?,
            })
        },
        &mut |step| save(step, &model),
    )
}

/// A batch's loss, its accuracy where there is one (reward models), and its tokens.
struct BatchLoss {
    loss: Tensor,
    accuracy: Option<f64>,
    tokens: i64,
}

/// The loop SFT and reward-model training share: epochs of seeded shuffles of `examples`
/// items in batches, one optimiser step on each batch's loss (from `batch_loss`), reported to `on_step`, saved every
/// `checkpoint_every` steps and at the end; stops after `max_steps` when set.
fn train_batches(
    config: &TrainConfig,
    what: &str,
    examples: usize,
    optimiser: &mut Optimiser,
    on_step: &mut dyn FnMut(&StepReport),
    batch_loss: &mut dyn FnMut(&[usize]) -> Result<BatchLoss>,
    save: &mut dyn FnMut(u64) -> Result<PathBuf>,
) -> Result<TrainSummary> {
    let mut step = 0u64;
    let mut last_checkpoint = None;
    let mut final_loss = f64::NAN;
    'epochs: for epoch in 0..config.epochs {
        let order = shuffled(examples, config.seed.wrapping_add(epoch as u64));
        for batch in order.chunks(config.batch_size) {
            let started = Instant::now();
            let BatchLoss {
                loss,
                accuracy,
                tokens,
            } = batch_loss(batch)?;
            final_loss = check_finite(&format!("the {what} loss"), loss.f_double_value(&[])?)?;
            let grad_norm = optimiser.step(&loss)?;
            step += 1;
            on_step(&StepReport {
                step,
                epoch,
                loss: final_loss,
                accuracy,
                grad_norm,
                tokens,
                seconds: started.elapsed().as_secs_f64(),
            });
            tracing::info!(what, step, loss = final_loss, accuracy, grad_norm, "step");
            if config.checkpoint_every > 0 && step.is_multiple_of(config.checkpoint_every) {
                last_checkpoint = Some(save(step)?);
            }
            if config.max_steps > 0 && step >= config.max_steps {
                break 'epochs;
            }
        }
    }
    if last_checkpoint
        .as_ref()
        .is_none_or(|p| !p.ends_with(format!("step-{step:012}")))
    {
        last_checkpoint = Some(save(step)?);
    }
    Ok(TrainSummary {
        steps: step,
        last_checkpoint,
        final_loss,
    })
}

/// Mean negative log-likelihood of the target tokens (`target_mask [B, T]` = 1 at tokens the
/// loss covers; each is predicted from the position before it). The logits are materialised
/// (hone-kernels' fused log-softmax-gather keeps only them for backward); see
/// [`sft_loss_low_memory`] for the variant that never holds them.
pub fn sft_loss(
    model: &crate::model::CausalLm,
    input: &Tensor,
    mask: &Tensor,
    target_mask: &Tensor,
) -> Result<Tensor> {
    let t = input.size()[1];
    let hidden = model.forward_hidden(input, mask, None)?;
    let logits = model.logits(&hidden.f_narrow(1, 0, t - 1)?)?;
    let logprobs = hone_kernels::token_logprobs(&logits, &input.f_narrow(1, 1, t - 1)?)?;
    masked_nll(&logprobs, target_mask, t)
}

/// [`sft_loss`] through `token_logprobs_from_hidden`: the `[B, T, V]` logits are made chunk by
/// chunk in forward and again in backward (one more LM-head matmul, far less memory).
pub fn sft_loss_low_memory(
    model: &crate::model::CausalLm,
    input: &Tensor,
    mask: &Tensor,
    target_mask: &Tensor,
) -> Result<Tensor> {
    let t = input.size()[1];
    let hidden = model.forward_hidden(input, mask, None)?;
    let logprobs = hone_kernels::token_logprobs_from_hidden(
        &hidden.f_narrow(1, 0, t - 1)?,
        model.lm_head_weight(),
        &input.f_narrow(1, 1, t - 1)?,
    )?;
    masked_nll(&logprobs, target_mask, t)
}

fn masked_nll(logprobs: &Tensor, target_mask: &Tensor, t: i64) -> Result<Tensor> {
    let weights = target_mask.f_narrow(1, 1, t - 1)?.f_to_kind(Kind::Float)?;
    let count = weights.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
    Ok(logprobs
        .f_mul(&weights)?
        .f_sum(Kind::Float)?
        .f_neg()?
        .f_div(&count)?)
}

/// Bradley–Terry loss `-log σ(r_chosen - r_rejected)` (mean) and the pair accuracy.
pub fn bradley_terry(chosen: &Tensor, rejected: &Tensor) -> Result<(Tensor, f64)> {
    let margin = chosen.f_sub(rejected)?;
    let loss = margin.f_log_sigmoid()?.f_mean(Kind::Float)?.f_neg()?;
    let accuracy = margin
        .f_gt(0.0)?
        .f_to_kind(Kind::Float)?
        .f_mean(Kind::Float)?
        .f_double_value(&[])?;
    Ok((loss, accuracy))
}

/// `hone rm`: a reward model (the checkpoint's backbone + a new scalar head) trained with the
/// Bradley–Terry loss on prompt/chosen/rejected triples; checkpoints in transformers'
/// sequence-classification layout.
pub fn run_rm(
    run: &RunDir,
    config: &TrainConfig,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<TrainSummary> {
    config.validate()?;
    write_run_config(run, config)?;
    let device = parse_device(&config.device)?;
    tch::manual_seed(config.seed as i64);
    let tokenizer = Tokenizer::load(&config.model)?;
    let mut model = RewardModel::from_causal_lm(&config.model, device, Kind::Float)?;
    let pad = tokenizer
        .special_token_id("pad_token")
        .or(model.backbone.config().pad_token_id)
        .unwrap_or(0);
    let rows = read_jsonl(&config.data, &["prompt", "chosen", "rejected"])?;
    let mut pairs = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let encode = |completion: &str| -> Result<Vec<i64>> {
            let (mut p, r) = encode_pair(&tokenizer, config.chat, &row[0], completion, None)?;
            p.extend(r);
            if p.len() > config.max_length {
                return Err(Error::Dataset {
                    path: config.data.clone(),
                    line: i + 1,
                    message: format!(
                        "{} tokens exceed max_length = {} (a reward needs the whole response)",
                        p.len(),
                        config.max_length
                    ),
                });
            }
            Ok(p)
        };
        pairs.push((encode(&row[1])?, encode(&row[2])?));
    }
    let (mut optimiser, views) = Optimiser::new(
        model.named_parameters(),
        device,
        config.learning_rate,
        config.adam_eps,
        config.max_grad_norm,
    )?;
    model.set_parameters(views, "training parameters")?;
    let store = CheckpointStore::new(run.checkpoints_dir(), config.keep_checkpoints);
    let save = |step: u64, model: &RewardModel| -> Result<PathBuf> {
        Ok(store.save(step, None, |dir| {
            model
                .write(dir, Some(&tokenizer))
                .map_err(|e| hone_trainer::Error::Checkpoint(e.to_string()))
        })?)
    };
    train_batches(
        config,
        "reward-model",
        pairs.len(),
        &mut optimiser,
        on_step,
        &mut |batch| {
            // Chosen rows first, then rejected, in one padded batch.
            let seqs: Vec<Vec<i64>> = batch
                .iter()
                .map(|&i| pairs[i].0.clone())
                .chain(batch.iter().map(|&i| pairs[i].1.clone()))
                .collect();
            let (input, mask) = left_pad(&seqs, pad, device)?;
            let rewards = model.rewards(&input, &mask)?;
            let n = batch.len() as i64;
            let (loss, accuracy) =
                bradley_terry(&rewards.f_narrow(0, 0, n)?, &rewards.f_narrow(0, n, n)?)?;
            let tokens = mask.f_sum(Kind::Int64)?.f_int64_value(&[])?;
            Ok(BatchLoss {
                loss,
                accuracy: Some(accuracy),
                tokens,
            })
        },
        &mut |step| save(step, &model),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_seeded() {
        let a = shuffled(50, 7);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, shuffled(50, 7));
        assert_ne!(a, shuffled(50, 8));
    }

    #[test]
    fn sft_targets_cover_the_response_only() {
        let ex = sft_example(vec![1, 2, 3], vec![4, 5, 9], 5, Path::new("d"), 1).unwrap();
        assert_eq!(ex.ids, [1, 2, 3, 4, 5]);
        assert_eq!(ex.targets, [0, 0, 0, 1, 1]);
        let err = sft_example(vec![1; 5], vec![4], 5, Path::new("d.jsonl"), 3)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("d.jsonl:3:"), "{err}");
    }

    /// torch.optim.Adam after clip_grad_norm_, in f64 over all parameters (clipping as a scale
    /// of the naive Adam step of hone-kernels).
    fn reference_adam(p: &mut [f64], grads: &[Vec<f64>], lr: f64, eps: f64, max_norm: f64) {
        let mut m = vec![0.0; p.len()];
        let mut v = vec![0.0; p.len()];
        for (t, g) in grads.iter().enumerate() {
            let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            let clip = (max_norm / (norm + 1e-6)).min(1.0);
            let hyper = (lr, 0.9, 0.999, eps);
            hone_kernels::reference::adam_step(
                p,
                g,
                &mut m,
                &mut v,
                t as i32 + 1,
                hyper,
                1.0 / clip,
            );
        }
    }

    /// Both ways of taking a step: `step(loss)` (autograd's gradients straight to the step) and
    /// `zero_grad`, `backward`, `update` (the parameters' accumulated `.grad`, as PPO-RLHF does).
    #[test]
    fn optimiser_matches_clipped_adam() {
        for accumulate in [false, true] {
            let start = [0.5f32, -1.5, 2.0, 0.25];
            let named = vec![
                ("a".to_owned(), Tensor::from_slice(&start[..3])),
                ("b".to_owned(), Tensor::from_slice(&start[3..])),
            ];
            let (mut opt, leaves) = Optimiser::new(named, Device::Cpu, 3e-2, 1e-8, 0.5).unwrap();
            // The first gradient (norm ~0.39) is not clipped, the others are.
            let grads = vec![
                vec![0.1, -0.2, 0.3, 0.05],
                vec![-0.5, 0.4, 1e-3, 2.0],
                vec![2.0, 0.0, -0.7, -1.0],
            ];
            for g in &grads {
                let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
                let loss = |from: usize, to: usize, leaf: &str| {
                    (&leaves[leaf] * Tensor::from_slice(&g32[from..to])).sum(Kind::Float)
                };
                let norm = if accumulate {
                    opt.zero_grad().unwrap();
                    // Two backward passes summed in `.grad`.
                    loss(0, 3, "a").backward();
                    loss(3, 4, "b").backward();
                    opt.update().unwrap()
                } else {
                    opt.step(&(loss(0, 3, "a") + loss(3, 4, "b"))).unwrap()
                };
                let want_norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!((norm - want_norm).abs() < 1e-5, "{norm} vs {want_norm}");
            }
            let mut want: Vec<f64> = start.iter().map(|&x| x as f64).collect();
            reference_adam(&mut want, &grads, 3e-2, 1e-8, 0.5);
            let mut got = Vec::<f32>::try_from(leaves["a"].detach()).unwrap();
            got.extend(Vec::<f32>::try_from(leaves["b"].detach()).unwrap());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5,
                    "accumulate {accumulate}: got {got:?}, want {want:?}"
                );
            }
        }
    }

    /// Gradients as autograd hands them out: one tensor for two parameters (the gradient of
    /// `a + b`), a broadcast one (stride 0, the gradient of `c.sum()`), and none at all for a
    /// parameter the loss does not reach (a zero gradient, as `reference_adam` takes it). The
    /// second step is clipped, so a gradient scaled twice in place would show.
    #[test]
    fn optimiser_takes_shared_broadcast_and_missing_gradients() {
        let start = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let named = ["a", "b", "c", "u"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    name.to_string(),
                    Tensor::from_slice(&start[2 * i..2 * i + 2]),
                )
            })
            .collect();
        let (mut opt, leaves) = Optimiser::new(named, Device::Cpu, 0.1, 1e-8, 1.0).unwrap();
        let mut grads = Vec::new();
        for (w, k) in [(0.1f32, 0.2f32), (3.0, -2.0)] {
            let shared = ((&leaves["a"] + &leaves["b"]) * Tensor::from_slice(&[w, 2.0 * w]))
                .sum(Kind::Float);
            let loss = shared + leaves["c"].sum(Kind::Float) * f64::from(k);
            opt.step(&loss).unwrap();
            let (w, k) = (f64::from(w), f64::from(k));
            grads.push(vec![w, 2.0 * w, w, 2.0 * w, k, k, 0.0, 0.0]);
        }
        let mut want: Vec<f64> = start.iter().map(|&x| f64::from(x)).collect();
        reference_adam(&mut want, &grads, 0.1, 1e-8, 1.0);
        let got: Vec<f32> = ["a", "b", "c", "u"]
            .iter()
            .flat_map(|name| Vec::<f32>::try_from(leaves[*name].detach()).unwrap())
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn bradley_terry_matches_its_formula() {
        let chosen = Tensor::from_slice(&[1.0f32, -0.5, 2.0]);
        let rejected = Tensor::from_slice(&[0.0f32, 0.5, 3.0]);
        let (loss, acc) = bradley_terry(&chosen, &rejected).unwrap();
        let want: f64 = [1.0f64, -1.0, -1.0]
            .iter()
            .map(|m| (1.0 + (-m).exp()).ln())
            .sum::<f64>()
            / 3.0;
        assert!((loss.double_value(&[]) - want).abs() < 1e-6);
        assert!((acc - 1.0 / 3.0).abs() < 1e-6, "{acc}");
    }
}
