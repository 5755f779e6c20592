//! `hone rlhf --config run.toml`: one scripted, resumable RLHF run. The run file names the
//! policy, the reference (default: the initial policy), the reward (a rule, the base model's
//! self-reward, or a reward-model checkpoint), the prompts, generation settings and the
//! algorithm; the run directory holds `config.toml`, `metrics.jsonl` and Hugging Face-layout
//! checkpoints (`checkpoints/step-*`, each with the optimiser state for `--resume`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hone_kernels::SamplingFilter;
// `hone train`'s device parser: it checks that a CUDA device exists, so `cuda` on a machine
// without one is a one-line error before any model is loaded (not libtorch's C++ backtrace).
use hone_trainer::ppo::parse_device;
use hone_trainer::run_dir::{CheckpointStore, RunDir};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{Checkpoint, GenerationDefaults, write_checkpoint_files};
use crate::config::ModelConfig;
use crate::error::{Error, Result, io_error};
use crate::generate::{GenerateConfig, generate, generate_repeated};
use crate::model::CausalLm;
use crate::ppo::{Critic, CriticKind, KlController, PpoConfig};
use crate::remax::{self, RemaxConfig};
use crate::rollout::{
    RewardSource, check_finite, decode_responses, response_logprobs, select_rows,
};
use crate::tasks::{Rule, SplitMix};
use crate::tokenizer::{Tokenizer, left_pad};
use crate::train::Optimiser;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Remax,
    Ppo,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Remax => "remax",
            Algorithm::Ppo => "ppo",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// `reward.rule` on the response and the prompt's answer.
    Rule,
    /// The reference (base) model's log π(y|x): sharpening.
    #[serde(rename = "self")]
    SelfReward,
    /// The reward-model checkpoint at `reward.model`.
    Model,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    pub kind: RewardKind,
    pub rule: Rule,
    pub model: Option<PathBuf>,
    /// Self-reward: the mean log-probability per response token instead of the sum.
    pub length_normalised: bool,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            kind: RewardKind::Rule,
            rule: Rule::ExactMatch,
            model: None,
            length_normalised: false,
        }
    }
}

/// Sampling of the policy's responses (ReMax's baseline response is always greedy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    pub max_new_tokens: i64,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
}

impl Default for GenerationSettings {
    /// The ReMax reference: temperature 1, top-p 0.9, answers of up to 256 tokens.
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 1.0,
            top_p: Some(0.9),
            top_k: None,
        }
    }
}

impl GenerationSettings {
    pub fn sampled(&self) -> GenerateConfig {
        GenerateConfig {
            max_new_tokens: self.max_new_tokens,
            sampling: Some(SamplingFilter {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            }),
            use_cache: true,
        }
    }

    pub fn greedy(&self) -> GenerateConfig {
        GenerateConfig {
            max_new_tokens: self.max_new_tokens,
            sampling: None,
            use_cache: true,
        }
    }
}

/// Greedy accuracy on prompts with answers, measured before training, every `every` steps and
/// at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// JSONL with `prompt` and `answer` (none: no evaluation).
    pub data: Option<PathBuf>,
    /// 0: only before and after training.
    pub every: u64,
    /// Evaluate on the first this many prompts (0: all).
    pub max_prompts: usize,
    pub rule: Rule,
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            data: None,
            every: 0,
            max_prompts: 0,
            rule: Rule::ExactMatch,
            batch_size: 64,
        }
    }
}

/// A run file of `hone rlhf` (unknown keys are errors naming the key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The policy's starting checkpoint (Hugging Face layout).
    pub policy: PathBuf,
    /// The KL reference and the self-reward's base model (default: `policy`).
    pub reference: Option<PathBuf>,
    /// Prompts: JSONL with `prompt` and an optional `answer`.
    pub data: PathBuf,
    /// Wrap prompts in the tokenizer's chat template.
    pub chat: bool,
    pub algorithm: Algorithm,
    /// RLHF steps (one batch of prompts generated, scored and learned from).
    pub steps: u64,
    pub prompts_per_step: usize,
    pub learning_rate: f64,
    pub adam_eps: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N.
    pub device: String,
    /// Checkpoint every this many steps (0: only at the end).
    pub save_every: u64,
    pub keep_checkpoints: usize,
    pub generation: GenerationSettings,
    pub reward: RewardConfig,
    pub eval: EvalConfig,
    pub remax: RemaxConfig,
    pub ppo: PpoConfig,
    /// A step whose kl_to_reference exceeds this raises the dashboard's alert (none: no alert).
    pub alert_kl: Option<f64>,
}

impl Default for RunConfig {
    /// The ReMax reference's settings where they apply (actor learning rate 1e-6, gradient
    /// clipping at 1.0).
    fn default() -> Self {
        Self {
            policy: PathBuf::new(),
            reference: None,
            data: PathBuf::new(),
            chat: false,
            algorithm: Algorithm::Remax,
            steps: 100,
            prompts_per_step: 8,
            learning_rate: 1e-6,
            adam_eps: 1e-8,
            max_grad_norm: 1.0,
            seed: 0,
            device: "auto".into(),
            save_every: 0,
            keep_checkpoints: 2,
            generation: GenerationSettings::default(),
            reward: RewardConfig::default(),
            eval: EvalConfig::default(),
            remax: RemaxConfig::default(),
            ppo: PpoConfig::default(),
            alert_kl: None,
        }
    }
}

fn bad(name: &'static str, value: impl ToString, expected: &str) -> Error {
    Error::Parameter {
        name,
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

fn check_checkpoint_dir(name: &'static str, dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(bad(name, "\"\"", "a checkpoint folder"));
    }
    if !dir.join(crate::checkpoint::CONFIG).is_file() {
        return Err(Error::Io {
            path: dir.to_owned(),
            cause: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name}: not a checkpoint folder (no config.json)"),
            ),
        });
    }
    Ok(())
}

impl RunConfig {
    /// Checks values and that the named files exist (the datasets are read in [`Prompts`]).
    pub fn validate(&self) -> Result<()> {
        check_checkpoint_dir("policy", &self.policy)?;
        if let Some(reference) = &self.reference {
            check_checkpoint_dir("reference", reference)?;
        }
        if self.data.as_os_str().is_empty() {
            return Err(bad("data", "\"\"", "a JSONL file of prompts"));
        }
        if self.steps == 0 {
            return Err(bad("steps", 0, "at least 1"));
        }
        if self.prompts_per_step == 0 {
            return Err(bad("prompts_per_step", 0, "at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(bad("learning_rate", self.learning_rate, "> 0"));
        }
        crate::train::check_optimiser_settings(self.adam_eps, self.max_grad_norm)?;
        let g = &self.generation;
        if g.max_new_tokens < 1 {
            return Err(bad(
                "generation.max_new_tokens",
                g.max_new_tokens,
                "at least 1",
            ));
        }
        if !(g.temperature > 0.0 && g.temperature.is_finite()) {
            return Err(bad("generation.temperature", g.temperature, "> 0"));
        }
        if let Some(p) = g.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(bad("generation.top_p", p, "in (0, 1]"));
        }
        if let Some(k) = g.top_k
            && k < 1
        {
            return Err(bad("generation.top_k", k, "at least 1"));
        }
        if self.reward.kind == RewardKind::Model {
            match &self.reward.model {
                None => {
                    return Err(bad(
                        "reward.model",
                        "none",
                        "a reward-model checkpoint for reward.kind = \"model\"",
                    ));
                }
                Some(dir) => check_checkpoint_dir("reward.model", dir)?,
            }
        }
        let r = &self.remax;
        if !(r.kl_coef >= 0.0 && r.kl_coef.is_finite()) {
            return Err(bad("remax.kl_coef", r.kl_coef, ">= 0"));
        }
        if r.reward_clip.is_nan() || r.reward_clip <= 0.0 {
            return Err(bad("remax.reward_clip", r.reward_clip, "> 0"));
        }
        if !(r.gamma > 0.0 && r.gamma <= 1.0) {
            return Err(bad("remax.gamma", r.gamma, "in (0, 1]"));
        }
        if r.samples_per_prompt < 1 {
            return Err(bad(
                "remax.samples_per_prompt",
                r.samples_per_prompt,
                ">= 1",
            ));
        }
        self.validate_ppo()?;
        if let Some(t) = self.alert_kl
            && !(t > 0.0 && t.is_finite())
        {
            return Err(bad("alert_kl", t, "> 0 (leave it out for no alert)"));
        }
        if self.eval.batch_size == 0 {
            return Err(bad("eval.batch_size", 0, "at least 1"));
        }
        parse_device(&self.device)?;
        Ok(())
    }

    fn validate_ppo(&self) -> Result<()> {
        let p = &self.ppo;
        if !(p.kl_coef >= 0.0 && p.kl_coef.is_finite()) {
            return Err(bad("ppo.kl_coef", p.kl_coef, ">= 0"));
        }
        if !(p.kl_target > 0.0 && p.kl_target.is_finite()) {
            return Err(bad("ppo.kl_target", p.kl_target, "> 0"));
        }
        if !(p.kl_horizon > 0.0 && p.kl_horizon.is_finite()) {
            return Err(bad("ppo.kl_horizon", p.kl_horizon, "> 0"));
        }
        if p.epochs == 0 {
            return Err(bad("ppo.epochs", 0, "at least 1"));
        }
        if p.minibatches == 0 || p.minibatches > self.prompts_per_step {
            return Err(bad(
                "ppo.minibatches",
                p.minibatches,
                &format!("in 1..={} (prompts_per_step)", self.prompts_per_step),
            ));
        }
        for (name, value) in [
            ("ppo.clip_range", p.clip_range),
            ("ppo.value_clip_range", p.value_clip_range),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(bad(name, value, "> 0"));
            }
        }
        if !(p.vf_coef >= 0.0 && p.vf_coef.is_finite()) {
            return Err(bad("ppo.vf_coef", p.vf_coef, ">= 0"));
        }
        for (name, value) in [("ppo.gamma", p.gamma), ("ppo.lam", p.lam)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(bad(name, value, "in [0, 1]"));
            }
        }
        if let Some(c) = p.reward_clip
            && (c.is_nan() || c <= 0.0)
        {
            return Err(bad("ppo.reward_clip", c, "> 0"));
        }
        if let Some(lr) = p.critic_learning_rate
            && !(lr > 0.0 && lr.is_finite())
        {
            return Err(bad("ppo.critic_learning_rate", lr, "> 0"));
        }
        if let Some(dir) = &p.critic_model {
            if p.critic == CriticKind::Shared {
                return Err(bad(
                    "ppo.critic_model",
                    dir.display(),
                    "no critic_model with critic = \"shared\" (the value head sits on the policy)",
                ));
            }
            check_checkpoint_dir("ppo.critic_model", dir)?;
        }
        Ok(())
    }

    pub fn reference_dir(&self) -> &Path {
        self.reference.as_deref().unwrap_or(&self.policy)
    }

    /// Where a new separate critic starts: `ppo.critic_model`, else the reward model, else the
    /// policy (TRL starts its value model from the reward model).
    pub fn critic_dir(&self) -> &Path {
        match (&self.ppo.critic_model, &self.reward.model, self.reward.kind) {
            (Some(dir), _, _) => dir,
            (None, Some(dir), RewardKind::Model) => dir,
            _ => &self.policy,
        }
    }
}

/// Prompts of a dataset, tokenised, with their answers where given.
#[derive(Clone, Debug)]
pub struct Prompts {
    /// The prompts as written in the dataset.
    pub texts: Vec<String>,
    pub ids: Vec<Vec<i64>>,
    pub answers: Vec<Option<String>>,
}

impl Prompts {
    /// Reads `path` (JSONL: `prompt`, optional `answer`); `max_prompts` 0 reads all. Errors:
    /// an empty file, a bad line, a prompt whose tokens plus `max_new_tokens` exceed
    /// `context` positions, a missing answer when `need_answers`.
    pub fn load(
        path: &Path,
        tokenizer: &Tokenizer,
        chat: bool,
        context: i64,
        max_new_tokens: i64,
        need_answers: bool,
        max_prompts: usize,
    ) -> Result<Self> {
        let text = crate::tasks::read_data_file(path)?;
        let mut prompts = Self {
            texts: Vec::new(),
            ids: Vec::new(),
            answers: Vec::new(),
        };
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if max_prompts > 0 && prompts.ids.len() == max_prompts {
                break;
            }
            let error = |message: String| Error::Dataset {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| error(format!("invalid JSON: {e}")))?;
            let prompt = value["prompt"]
                .as_str()
                .ok_or_else(|| error("field `prompt` is missing or not a string".into()))?;
            let answer = match &value["answer"] {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            if need_answers && answer.is_none() {
                return Err(error(
                    "field `answer` is missing (a rule reward and evaluation need it)".into(),
                ));
            }
            let ids = if chat {
                tokenizer.encode_chat(prompt)?
            } else {
                tokenizer.encode(prompt, true)?
            };
            if ids.is_empty() {
                return Err(error("the prompt has no tokens".into()));
            }
            if ids.len() as i64 + max_new_tokens > context {
                return Err(error(format!(
                    "the prompt has {} tokens; with generation.max_new_tokens = {max_new_tokens} \
                     that exceeds the model's context of {context} positions",
                    ids.len()
                )));
            }
            prompts.texts.push(prompt.to_owned());
            prompts.ids.push(ids);
            prompts.answers.push(answer);
        }
        if prompts.ids.is_empty() {
            return Err(Error::Dataset {
                path: path.to_owned(),
                line: 0,
                message: "no prompts".into(),
            });
        }
        Ok(prompts)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn max_len(&self) -> usize {
        self.ids.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// The dataset indices of step `step`'s batch: consecutive slices of a per-epoch shuffle,
    /// so a resumed run draws the batches the uninterrupted one would have.
    pub fn batch_indices(&self, step: u64, batch: usize, seed: u64) -> Vec<usize> {
        let n = self.len();
        let mut epoch_order: Option<(u64, Vec<usize>)> = None;
        (0..batch)
            .map(|k| {
                let global = step as usize * batch + k;
                let epoch = (global / n) as u64;
                if epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    epoch_order = Some((epoch, shuffled(n, seed.wrapping_add(epoch))));
                }
                epoch_order
                    .as_ref()
                    .map_or(0, |(_, order)| order[global % n])
            })
            .collect()
    }
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Special tokens generation needs.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub eos: Vec<i64>,
    pub pad: i64,
}

impl Tokens {
    pub fn of(generation: &GenerationDefaults) -> Self {
        let eos = generation.eos_token_ids.clone();
        let pad = generation
            .pad_token_id
            .or(eos.first().copied())
            .unwrap_or(0);
        Self { eos, pad }
    }
}

/// Greedy responses of `model` to every prompt, scored by `rule` against the answers: the
/// fraction right.
pub fn greedy_accuracy(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &Prompts,
    rule: Rule,
    tokens: &Tokens,
    max_new_tokens: i64,
    batch_size: usize,
) -> Result<f64> {
    let mut right = 0.0;
    let config = GenerateConfig {
        max_new_tokens,
        sampling: None,
        use_cache: true,
    };
    for (chunk, answers) in prompts
        .ids
        .chunks(batch_size.max(1))
        .zip(prompts.answers.chunks(batch_size.max(1)))
    {
        let (ids, mask) = left_pad(chunk, tokens.pad, model.device())?;
        let out = generate(model, &ids, &mask, &tokens.eos, tokens.pad, &config)?;
        let (_, texts) = decode_responses(tokenizer, &out)?;
        for (text, answer) in texts.iter().zip(answers) {
            let answer = answer.as_deref().ok_or_else(|| {
                bad(
                    "answer",
                    "missing",
                    "every evaluation prompt to have an answer",
                )
            })?;
            right += rule.score(text, answer);
        }
    }
    Ok(right / prompts.len() as f64)
}

/// What trains: the policy with its optimiser (which also holds a shared value head), and PPO's
/// critic and KL controller.
pub struct Learner {
    pub policy: CausalLm,
    pub actor: Optimiser,
    pub critic: Option<Critic>,
    pub kl: KlController,
}

pub const OPTIMISER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";

impl Learner {
    /// The policy (and critic) of `config`, from `checkpoint` when resuming (its optimiser
    /// states too) or from the run file's models.
    pub fn new(
        mut policy: CausalLm,
        config: &RunConfig,
        checkpoint: Option<&Path>,
        device: Device,
    ) -> Result<Self> {
        let lr = config.learning_rate;
        let (eps, clip) = (config.adam_eps, config.max_grad_norm);
        let mut named = policy.named_parameters();
        let shared = config.algorithm == Algorithm::Ppo && config.ppo.critic == CriticKind::Shared;
        if shared {
            let head = Critic::shared_head(checkpoint, policy.config().hidden_size(), device)?;
            named.extend(head.named_parameters());
        }
        let (mut actor, mut leaves) = Optimiser::new(named, device, lr, eps, clip)?;
        let mut critic = match config.algorithm {
            Algorithm::Remax => None,
            Algorithm::Ppo if shared => {
                let mut take = |name: &str| {
                    leaves
                        .remove(name)
                        .ok_or_else(|| bad("value head", name, "a tensor the optimiser was given"))
                };
                let weight = take(crate::reward::ValueHead::WEIGHT)?;
                let bias = take(crate::reward::ValueHead::BIAS)?;
                Some(Critic::Shared(crate::reward::ValueHead { weight, bias }))
            }
            Algorithm::Ppo => {
                let dir = match checkpoint {
                    Some(c) => c.join(crate::ppo::CRITIC_DIR),
                    None => config.critic_dir().to_owned(),
                };
                let critic_lr = config.ppo.critic_learning_rate.unwrap_or(lr);
                Some(Critic::separate(&dir, device, critic_lr, eps, clip)?)
            }
        };
        policy.set_parameters(leaves, "policy parameters")?;
        if let Some(dir) = checkpoint {
            let path = dir.join(OPTIMISER_FILE);
            let tensors = crate::safetensors::read(&path)?.into_iter().collect();
            actor.load_state(&tensors, &path.display().to_string())?;
            if let Some(critic) = &mut critic {
                critic.load_optimiser_state(dir)?;
            }
        }
        Ok(Self {
            policy,
            actor,
            critic,
            kl: KlController::new(&config.ppo),
        })
    }

    /// Trained parameters: the policy's and the critic's.
    pub fn trained_parameters(&self) -> i64 {
        CausalLm::count_parameters(&self.policy.named_parameters())
            + self.critic.as_ref().map_or(0, Critic::parameter_count)
    }
}

/// Rough peak memory of a step in bytes: weights, gradients and Adam moments of the trained
/// models (`params`), the frozen ones, the activations of `backbones` forwards with gradients
/// over `grad_rows × tokens` positions, and the generation caches of `cache_rows` rows.
pub fn estimate_peak_bytes(
    config: &ModelConfig,
    params: i64,
    frozen_params: i64,
    (grad_rows, cache_rows, backbones): (i64, i64, i64),
    tokens: i64,
) -> i64 {
    let (h, l) = (config.hidden_size(), config.num_layers());
    // In i128 and clamped: a run file's batch settings may be large enough to overflow i64.
    let product = |factors: &[i64]| factors.iter().map(|&f| i128::from(f)).product::<i128>();
    let weights = product(&[4, params.saturating_mul(4).saturating_add(frozen_params)]);
    // Per layer and position: ~16 saved [H]-sized activations for backward (norms,
    // projections, attention output, MLP), rounded up for the MLP's wider ones.
    let activations = product(&[4, backbones, grad_rows, tokens, l, 24, h]);
    let caches = product(&[4, 2, cache_rows, tokens, l, h]);
    i64::try_from(weights + activations + caches).unwrap_or(i64::MAX)
}

/// The rows of a step's largest tensors, from the run file alone: `(grad_rows, cache_rows,
/// backbones)` of [`estimate_peak_bytes`].
fn step_rows(config: &RunConfig) -> (i64, i64, i64) {
    let b = i64::try_from(config.prompts_per_step).unwrap_or(i64::MAX);
    match config.algorithm {
        Algorithm::Remax => {
            let n = i64::try_from(config.remax.samples_per_prompt).unwrap_or(i64::MAX);
            (
                n.saturating_mul(b),
                n.saturating_add(1).saturating_mul(b),
                1,
            )
        }
        Algorithm::Ppo => {
            let m = i64::try_from(config.ppo.minibatches.max(1)).unwrap_or(i64::MAX);
            let backbones = if config.ppo.critic == CriticKind::Separate {
                2
            } else {
                1
            };
            (b.saturating_add(m - 1) / m, b, backbones)
        }
    }
}

/// An error when a step's `estimated` peak memory exceeds what this machine has available,
/// naming the run file's batch settings; nothing when it fits, when `force` is set, off the
/// CPU (the estimate is then of the GPU's memory, which `MemAvailable` does not measure) or
/// where the available memory is unknown.
fn check_memory(config: &RunConfig, device: Device, estimated: i64, force: bool) -> Result<()> {
    if force || device != Device::Cpu {
        return Ok(());
    }
    let per_prompt = match config.algorithm {
        Algorithm::Remax => format!(
            "remax.samples_per_prompt = {}",
            config.remax.samples_per_prompt
        ),
        Algorithm::Ppo => format!("ppo.critic = {:?}", config.ppo.critic).to_lowercase(),
    };
    let what = format!(
        "a step of prompts_per_step = {} ({per_prompt}, generation.max_new_tokens = {})",
        config.prompts_per_step, config.generation.max_new_tokens
    );
    match hone_envs::memory::does_not_fit(&what, u64::try_from(estimated).ok()) {
        None => Ok(()),
        Some(message) => Err(Error::DoesNotFit(format!(
            "{message}; lower these settings, or pass --force to start anyway"
        ))),
    }
}

fn gib(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// Seconds per phase of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RlhfTiming {
    pub generate_s: f64,
    pub reference_s: f64,
    pub reward_s: f64,
    pub update_s: f64,
}

/// One step's numbers: written to metrics.jsonl as `{"event": "rlhf", ...}` with the fields of
/// hone-telemetry's `RlhfEvent` (plus the loss, gradient norm and evaluation accuracy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RlhfStep {
    pub step: u64,
    pub elapsed_s: f64,
    pub reward_mean: f64,
    pub reward_std: Option<f64>,
    pub baseline_reward_mean: Option<f64>,
    pub kl_to_reference: f64,
    pub response_length_mean: f64,
    pub tokens_per_s: f64,
    pub timing: RlhfTiming,
    pub policy_loss: Option<f64>,
    /// PPO: the value loss, the fractions of clipped ratios and values, ½ (log ratio)², and
    /// the KL coefficient β the step used.
    pub value_loss: Option<f64>,
    pub clip_fraction: Option<f64>,
    pub value_clip_fraction: Option<f64>,
    pub approx_kl: Option<f64>,
    pub kl_coef: Option<f64>,
    /// ReMax: how many sampled responses the update read (fewer than sampled with `skip_ties`).
    pub trained_responses: Option<u64>,
    pub learning_rate: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// The process's peak resident memory so far.
    pub peak_rss_bytes: Option<u64>,
    pub gpu_memory_bytes: Option<u64>,
    pub grad_norm: f64,
    /// Greedy accuracy on the evaluation prompts, when evaluated after this step.
    pub eval_accuracy: Option<f64>,
    /// The run file's `alert_kl`, for the dashboard's alert.
    pub alert_kl: Option<f64>,
}

/// What the run loop reports besides steps.
#[derive(Clone, Debug)]
pub enum RunMessage {
    /// The resolved batch hierarchy and the memory estimate, before any work.
    Plan(String),
    Step(RlhfStep),
    /// Greedy accuracy on the evaluation set (`step` 0: before training).
    Eval {
        step: u64,
        accuracy: f64,
    },
    Checkpoint(PathBuf),
    /// Every event as written to metrics.jsonl (what the dashboard draws).
    Telemetry(hone_telemetry::Event),
}

#[derive(Debug)]
pub struct RunSummary {
    pub steps: u64,
    pub last_checkpoint: Option<PathBuf>,
    pub initial_accuracy: Option<f64>,
    pub final_accuracy: Option<f64>,
}

/// metrics.jsonl, one JSON object a line (hone-telemetry's schema for start/checkpoint/finish).
struct Metrics(std::fs::File, PathBuf);

impl Metrics {
    fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        Ok(Self(file, path.to_owned()))
    }

    fn write(&mut self, value: serde_json::Value) -> Result<()> {
        let mut line = value.to_string();
        line.push('\n');
        self.0.write_all(line.as_bytes()).map_err(io_error(&self.1))
    }

    fn event(&mut self, event: &hone_telemetry::Event) -> Result<()> {
        let value = serde_json::to_value(event)
            .map_err(|e| crate::error::malformed(&self.1, e.to_string()))?;
        self.write(value)
    }
}

/// Writes `event` to metrics.jsonl and hands it to the caller.
fn record(
    metrics: &mut Metrics,
    on_message: &mut dyn FnMut(&RunMessage),
    event: hone_telemetry::Event,
) -> Result<()> {
    metrics.event(&event)?;
    on_message(&RunMessage::Telemetry(event));
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    elapsed_s: f64,
    /// PPO's (possibly adapted) KL coefficient.
    #[serde(default)]
    kl_coef: Option<f64>,
}

/// The resolved batch hierarchy, the models and the memory estimate, printed before any work;
/// and the estimate in bytes.
fn plan(
    config: &RunConfig,
    prompts: &Prompts,
    learner: &Learner,
    trained: i64,
    frozen: i64,
) -> (String, i64) {
    let b = config.prompts_per_step;
    let seq = prompts.max_len() as i64 + config.generation.max_new_tokens;
    let (grad_rows, cache_rows, backbones) = step_rows(config);
    let (generations, updates, critic) = match config.algorithm {
        Algorithm::Remax => {
            let n = config.remax.samples_per_prompt;
            let trained = if config.remax.skip_ties {
                " (responses that tie with the greedy one left out)"
            } else {
                ""
            };
            (
                format!(
                    "{b} prompts per step x {n} sampled response{} (+1 greedy baseline) = \
                     {cache_rows} generations",
                    if n == 1 { "" } else { "s" },
                ),
                format!(
                    "1 minibatch of up to {grad_rows} responses{trained}, 1 optimiser step per \
                     step"
                ),
                "",
            )
        }
        Algorithm::Ppo => {
            let (m, e) = (config.ppo.minibatches, config.ppo.epochs);
            let critic = match learner.critic {
                Some(Critic::Separate { .. }) => {
                    ", critic: separate backbone + value head (trained)"
                }
                _ => ", critic: value head on the policy (trained with it)",
            };
            (
                format!("{b} prompts per step x 1 sampled response = {b} generations"),
                format!(
                    "{e} epochs x {m} minibatches of ~{} responses = {} optimiser steps per step",
                    b / m.max(1),
                    e.saturating_mul(m)
                ),
                critic,
            )
        }
    };
    let estimated = estimate_peak_bytes(
        learner.policy.config(),
        trained,
        frozen,
        (grad_rows, cache_rows, backbones),
        seq,
    );
    let text = format!(
        "batch: {generations}; {updates}; up to {} tokens per step ({seq} per sequence: \
         prompt <= {} + response <= {}); {} steps over {} prompts ({:.2} epochs)\n\
         models: policy{critic}: {trained} parameters trained; reference (and reward model) \
         {frozen} frozen; estimated peak memory {}",
        cache_rows.saturating_mul(seq),
        prompts.max_len(),
        config.generation.max_new_tokens,
        config.steps,
        prompts.len(),
        config.steps as f64 * b as f64 / prompts.len() as f64,
        gib(estimated),
    );
    (text, estimated)
}

/// How [`run_rlhf`] starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Continue the run from its latest checkpoint.
    pub resume: bool,
    /// Start even when a step's estimated peak memory exceeds what the machine has available
    /// (`hone rlhf --force`).
    pub force: bool,
}

/// Runs (or, with `start.resume`, continues) the RLHF run of `config` in `run`; `control` is
/// read between steps (stop → checkpoint and return).
pub fn run_rlhf(
    run: &RunDir,
    config: &RunConfig,
    start: StartOptions,
    control: Option<&hone_telemetry::RunControl>,
    on_message: &mut dyn FnMut(&RunMessage),
) -> Result<RunSummary> {
    let StartOptions { resume, force } = start;
    config.validate()?;
    let device = parse_device(&config.device)?;
    let store = CheckpointStore::new(run.checkpoints_dir(), config.keep_checkpoints);
    // A run stopped before its first checkpoint starts again from the run file's models.
    let resume_from = if resume { store.latest()? } else { None };
    let policy_dir = resume_from.clone().unwrap_or_else(|| config.policy.clone());
    // Before any model is loaded: the batch's activations and caches alone, for the shortest
    // sequences (one prompt token) and no weights, from the policy's config.json. The whole
    // estimate is checked again once the models and prompts are known.
    let lower_bound = estimate_peak_bytes(
        &ModelConfig::load(&policy_dir)?,
        0,
        0,
        step_rows(config),
        1 + config.generation.max_new_tokens,
    );
    check_memory(config, device, lower_bound, force)?;
    let Checkpoint {
        model: policy,
        tokenizer,
        generation,
        ..
    } = Checkpoint::load(&policy_dir, device, Kind::Float)?;
    let tokenizer = tokenizer.ok_or_else(|| Error::Io {
        path: policy_dir.join(crate::tokenizer::TOKENIZER),
        cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no tokenizer"),
    })?;
    let tokens = Tokens::of(&generation);
    let context = policy.config().max_positions();
    let need_answers = config.reward.kind == RewardKind::Rule;
    let prompts = Prompts::load(
        &config.data,
        &tokenizer,
        config.chat,
        context,
        config.generation.max_new_tokens,
        need_answers,
        0,
    )?;
    let eval_prompts = match &config.eval.data {
        Some(path) => Some(Prompts::load(
            path,
            &tokenizer,
            config.chat,
            context,
            config.generation.max_new_tokens,
            true,
            config.eval.max_prompts,
        )?),
        None => None,
    };
    let reference = Checkpoint::load(config.reference_dir(), device, Kind::Float)?.model;
    if reference.config().vocab_size() != policy.config().vocab_size() {
        return Err(bad(
            "reference",
            format!("a vocabulary of {}", reference.config().vocab_size()),
            &format!(
                "the policy's vocabulary of {}",
                policy.config().vocab_size()
            ),
        ));
    }
    let reward = match config.reward.kind {
        RewardKind::Rule => RewardSource::Rule(config.reward.rule),
        RewardKind::SelfReward => RewardSource::SelfReward {
            length_normalised: config.reward.length_normalised,
        },
        RewardKind::Model => {
            let dir = config.reward.model.as_deref().unwrap_or(Path::new(""));
            RewardSource::load_model(dir, device)?
        }
    };

    // The critic's new value head (or a shared one) is random: seed it with the run.
    tch::manual_seed(config.seed as i64);
    let mut learner = Learner::new(policy, config, resume_from.as_deref(), device)?;
    let trained = learner.trained_parameters();
    let mut frozen = CausalLm::count_parameters(&reference.named_parameters());
    if let RewardSource::Model(m) = &reward {
        frozen += CausalLm::count_parameters(&m.named_parameters());
    }
    let (plan, estimated) = plan(config, &prompts, &learner, trained, frozen);
    on_message(&RunMessage::Plan(plan));
    check_memory(config, device, estimated, force)?;

    let (mut step, mut elapsed_before) = (0u64, 0.0);
    if let Some(dir) = &resume_from {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        let state: TrainerState = serde_json::from_str(&text)
            .map_err(|e| crate::error::malformed(&path, e.to_string()))?;
        step = state.step;
        elapsed_before = state.elapsed_s;
        if let Some(kl_coef) = state.kl_coef {
            learner.kl.value = kl_coef;
        }
    } else {
        let text = hone_trainer::config::to_toml(config)?;
        crate::checkpoint::write_file(&run.config_path(), text.as_bytes())?;
    }
    if resume {
        // What was logged after the checkpoint is done again: the metrics read as one run.
        run.truncate_metrics((step > 0).then_some(step))?;
    }
    let mut metrics = Metrics::open(&run.metrics_path())?;
    let started = Instant::now();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    record(
        &mut metrics,
        on_message,
        hone_telemetry::Event::Start(hone_telemetry::RunInfo {
            run: run.name(),
            algorithm: config.algorithm.name().into(),
            target: config.policy.display().to_string(),
            device: format!("{device:?}"),
            total_steps: config.steps,
            global_step: step,
            started_at: unix_now,
            pid: std::process::id(),
        }),
    )?;

    // Writes a checkpoint, records it in metrics.jsonl and tells the caller.
    let save = |step: u64,
                learner: &Learner,
                metrics: &mut Metrics,
                on_message: &mut dyn FnMut(&RunMessage)|
     -> Result<PathBuf> {
        let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        let policy = &learner.policy;
        let tensors: Vec<(String, Tensor)> = tch::no_grad(|| {
            policy
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect()
        });
        let kl_coef = (config.algorithm == Algorithm::Ppo).then_some(learner.kl.value);
        let state = serde_json::to_vec_pretty(&TrainerState {
            step,
            elapsed_s,
            kl_coef,
        })
        .map_err(|e| Error::Diverged(format!("cannot serialise the trainer state: {e}")))?;
        let path = store.save(step, None, |dir| {
            let write = || -> Result<()> {
                write_checkpoint_files(
                    dir,
                    policy.config(),
                    &tensors,
                    &generation,
                    Some(&tokenizer),
                )?;
                let bytes = crate::safetensors::serialize(&learner.actor.state_tensors())?;
                crate::checkpoint::write_file(&dir.join(OPTIMISER_FILE), &bytes)?;
                if let Some(critic) = &learner.critic {
                    critic.write(dir, Some(&tokenizer))?;
                }
                crate::checkpoint::write_file(&dir.join(STATE_FILE), &state)
            };
            write().map_err(|e| hone_trainer::Error::Checkpoint(e.to_string()))
        })?;
        record(
            metrics,
            on_message,
            hone_telemetry::Event::Checkpoint {
                global_step: step,
                path: path.display().to_string(),
            },
        )?;
        on_message(&RunMessage::Checkpoint(path.clone()));
        Ok(path)
    };

    let evaluate = |policy: &CausalLm| -> Result<Option<f64>> {
        eval_prompts
            .as_ref()
            .map(|p| {
                greedy_accuracy(
                    policy,
                    &tokenizer,
                    p,
                    config.eval.rule,
                    &tokens,
                    config.generation.max_new_tokens,
                    config.eval.batch_size,
                )
            })
            .transpose()
    };
    let initial_accuracy = evaluate(&learner.policy)?;
    if let Some(accuracy) = initial_accuracy {
        on_message(&RunMessage::Eval { step, accuracy });
    }
    let mut final_accuracy = initial_accuracy;
    let mut last_checkpoint = None;
    let mut finish_reason = "done".to_owned();
    let result = loop {
        if step >= config.steps {
            break Ok(());
        }
        // Paused from the dashboard: wait between steps (a stop request ends the wait).
        while control.is_some_and(|c| c.is_paused() && !c.stop_requested()) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if control.is_some_and(|c| c.stop_requested()) {
            finish_reason = "stopped".into();
            break Ok(());
        }
        tch::manual_seed(config.seed.wrapping_add(step) as i64);
        let indices = prompts.batch_indices(step, config.prompts_per_step, config.seed);
        let batch_ids: Vec<Vec<i64>> = indices.iter().map(|&i| prompts.ids[i].clone()).collect();
        let answers: Vec<Option<&str>> = indices
            .iter()
            .map(|&i| prompts.answers[i].as_deref())
            .collect();
        let outcome = match (config.algorithm, &mut learner) {
            (
                Algorithm::Ppo,
                Learner {
                    policy,
                    actor,
                    critic: Some(critic),
                    kl,
                },
            ) => crate::ppo::ppo_step(
                policy, actor, critic, kl, &reference, &reward, &tokenizer, &tokens, &batch_ids,
                &answers, config,
            ),
            (_, learner) => remax_step(
                &learner.policy,
                &mut learner.actor,
                &reference,
                &reward,
                &tokenizer,
                &tokens,
                &batch_ids,
                &answers,
                config,
            ),
        };
        let mut report = match outcome {
            Ok(report) => report,
            Err(err) => break Err(err),
        };
        step += 1;
        report.step = step;
        report.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        report.learning_rate = Some(config.learning_rate);
        report.rss_bytes = hone_trainer::ppo::resident_memory();
        report.peak_rss_bytes = hone_trainer::ppo::peak_resident_memory();
        report.alert_kl = config.alert_kl;
        if config.eval.every > 0 && step % config.eval.every == 0 && step < config.steps {
            match evaluate(&learner.policy) {
                Ok(Some(accuracy)) => {
                    report.eval_accuracy = Some(accuracy);
                    final_accuracy = Some(accuracy);
                    on_message(&RunMessage::Eval { step, accuracy });
                }
                Ok(None) => {}
                Err(err) => break Err(err),
            }
        }
        let mut line = serde_json::to_value(&report)
            .map_err(|e| crate::error::malformed(&run.metrics_path(), e.to_string()))?;
        line["event"] = "rlhf".into();
        let event: hone_telemetry::Event = serde_json::from_value(line.clone())
            .map_err(|e| crate::error::malformed(&run.metrics_path(), e.to_string()))?;
        metrics.write(line)?;
        on_message(&RunMessage::Telemetry(event));
        on_message(&RunMessage::Step(report));
        let checkpoint_now = control.is_some_and(|c| c.take_checkpoint_request());
        if checkpoint_now || (config.save_every > 0 && step % config.save_every == 0) {
            let path = save(step, &learner, &mut metrics, on_message)?;
            last_checkpoint = Some(path);
        }
    };
    if let Err(err) = result {
        // The last good checkpoint stays; nothing of the failed step is saved.
        record(
            &mut metrics,
            on_message,
            hone_telemetry::Event::Finish {
                global_step: step,
                reason: format!("error: {err}"),
            },
        )?;
        return Err(err);
    }
    if last_checkpoint
        .as_ref()
        .is_none_or(|p| !p.ends_with(format!("step-{step:012}")))
    {
        let path = save(step, &learner, &mut metrics, on_message)?;
        last_checkpoint = Some(path);
    }
    if finish_reason == "done" {
        final_accuracy = evaluate(&learner.policy)?;
        if let Some(accuracy) = final_accuracy {
            on_message(&RunMessage::Eval { step, accuracy });
        }
    }
    record(
        &mut metrics,
        on_message,
        hone_telemetry::Event::Finish {
            global_step: step,
            reason: finish_reason,
        },
    )?;
    Ok(RunSummary {
        steps: step,
        last_checkpoint,
        initial_accuracy,
        final_accuracy,
    })
}

/// One ReMax step on a batch of prompts: generate (sampled and greedy), score both, reference
/// log-probs, the REINFORCE update.
#[allow(clippy::too_many_arguments)]
pub fn remax_step(
    policy: &CausalLm,
    optimiser: &mut Optimiser,
    reference: &CausalLm,
    reward: &RewardSource,
    tokenizer: &Tokenizer,
    tokens: &Tokens,
    prompts: &[Vec<i64>],
    answers: &[Option<&str>],
    config: &RunConfig,
) -> Result<RlhfStep> {
    let device = policy.device();
    let (ids, mask) = left_pad(prompts, tokens.pad, device)?;
    let n = config.remax.samples_per_prompt as i64;
    let t0 = Instant::now();
    let (sampling, greedy_config) = (config.generation.sampled(), config.generation.greedy());
    let mut runs = generate_repeated(
        policy,
        &ids,
        &mask,
        &tokens.eos,
        tokens.pad,
        &[(&sampling, n), (&greedy_config, 1)],
    )?;
    let greedy = runs
        .pop()
        .ok_or(Error::Diverged("no greedy responses".into()))?;
    let sampled = runs
        .pop()
        .ok_or(Error::Diverged("no sampled responses".into()))?;
    let generate_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    // Each prompt's answer for each of its n sampled rows.
    let sampled_answers: Vec<Option<&str>> = answers
        .iter()
        .flat_map(|a| std::iter::repeat_n(*a, n as usize))
        .collect();
    let (_, sampled_texts) = decode_responses(tokenizer, &sampled)?;
    let (_, greedy_texts) = decode_responses(tokenizer, &greedy)?;
    let rewards = reward.score(
        &sampled,
        &sampled_texts,
        &sampled_answers,
        reference,
        tokens.pad,
    )?;
    let baseline = reward.score(&greedy, &greedy_texts, answers, reference, tokens.pad)?;
    check_finite("the sampled responses' rewards", &rewards)?;
    check_finite("the greedy responses' rewards", &baseline)?;
    let baselines = baseline.f_repeat_interleave_self_int(n, 0, None)?;
    let reward_s = t1.elapsed().as_secs_f64();

    // The rows the update reads: all, or (skip_ties) those whose advantage is not 0, with
    // their rewards and baselines.
    let rows = if config.remax.skip_ties {
        Some(rewards.f_ne_tensor(&baselines)?.f_nonzero()?.f_view([-1])?)
            .filter(|rows| rows.size()[0] < rewards.size()[0])
    } else {
        None
    };
    let (trained, batch_rewards, batch_baselines) = match &rows {
        Some(rows) => (
            Some(select_rows(&sampled, rows)?),
            rewards.f_index_select(0, rows)?,
            baselines.f_index_select(0, rows)?,
        ),
        None => (None, rewards.shallow_clone(), baselines.shallow_clone()),
    };
    let trained_rows = batch_rewards.size()[0];
    let (mut reference_s, mut update_s, mut kl, mut loss, mut grad_norm) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    if trained_rows > 0 {
        let batch = trained.as_ref().unwrap_or(&sampled);
        let t2 = Instant::now();
        let ref_logprobs = tch::no_grad(|| response_logprobs(reference, batch))?;
        reference_s = t2.elapsed().as_secs_f64();

        let t3 = Instant::now();
        let logprobs = response_logprobs(policy, batch)?;
        let returns = remax::returns(
            &logprobs,
            &ref_logprobs,
            &batch.mask,
            &batch_rewards,
            &batch_baselines,
            &config.remax,
        )?;
        let loss_t = remax::loss(&logprobs, &returns, &batch.mask)?;
        check_finite("the ReMax loss", &loss_t)?;
        grad_norm = optimiser.step(&loss_t)?;
        update_s = t3.elapsed().as_secs_f64();
        loss = loss_t.f_double_value(&[])?;

        let maskf = batch.mask.f_to_kind(Kind::Float)?;
        kl = logprobs
            .f_detach()?
            .f_sub(&ref_logprobs)?
            .f_mul(&maskf)?
            .f_sum_dim_intlist(1, false, Kind::Float)?
            .f_mean(Kind::Float)?
            .f_double_value(&[])?;
    }
    let sampled_tokens = sampled.mask.f_sum(Kind::Float)?.f_double_value(&[])?;
    let generated = sampled_tokens + greedy.mask.f_sum(Kind::Float)?.f_double_value(&[])?;
    let total = t0.elapsed().as_secs_f64();
    Ok(RlhfStep {
        reward_mean: rewards.f_mean(Kind::Float)?.f_double_value(&[])?,
        reward_std: (rewards.size()[0] > 1)
            .then(|| rewards.f_std(true).and_then(|t| t.f_double_value(&[])))
            .transpose()?,
        baseline_reward_mean: Some(baseline.f_mean(Kind::Float)?.f_double_value(&[])?),
        kl_to_reference: kl,
        response_length_mean: sampled_tokens / rewards.size()[0] as f64,
        tokens_per_s: generated / total.max(1e-9),
        timing: RlhfTiming {
            generate_s,
            reference_s,
            reward_s,
            update_s,
        },
        policy_loss: Some(loss),
        grad_norm,
        trained_responses: Some(trained_rows as u64),
        ..RlhfStep::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_beyond_the_machine_are_refused_unless_forced() {
        let model = crate::init::model_config(&crate::init::InitSpec::default(), 259).unwrap();
        let mut config = RunConfig::default();
        let estimate =
            |config: &RunConfig| estimate_peak_bytes(&model, 0, 0, step_rows(config), 65);
        let small = estimate(&config);
        assert!(check_memory(&config, Device::Cpu, small, false).is_ok());
        config.prompts_per_step = 100_000_000;
        let large = estimate(&config);
        let err = check_memory(&config, Device::Cpu, large, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a step of prompts_per_step = 100000000 (remax.samples_per_prompt")
                && err.contains("GiB of memory")
                && err.ends_with("or pass --force to start anyway"),
            "{err}"
        );
        assert!(check_memory(&config, Device::Cpu, large, true).is_ok());
        // Settings beyond i64 saturate instead of wrapping to a small (or negative) estimate.
        config.prompts_per_step = usize::MAX;
        assert_eq!(estimate(&config), i64::MAX);
        config.algorithm = Algorithm::Ppo;
        assert_eq!(estimate(&config), i64::MAX);
    }

    #[test]
    fn a_step_line_parses_as_the_dashboards_rlhf_event() {
        let step = RlhfStep {
            step: 7,
            reward_mean: 0.25,
            baseline_reward_mean: Some(0.5),
            kl_to_reference: 0.125,
            grad_norm: 1.5,
            eval_accuracy: Some(0.75),
            ..RlhfStep::default()
        };
        let mut line = serde_json::to_value(&step).unwrap();
        line["event"] = "rlhf".into();
        match serde_json::from_value::<hone_telemetry::Event>(line).unwrap() {
            hone_telemetry::Event::Rlhf(event) => {
                assert_eq!(event.step, 7);
                assert_eq!(event.reward_mean, 0.25);
                assert_eq!(event.baseline_reward_mean, Some(0.5));
                assert_eq!(event.kl_to_reference, 0.125);
            }
            other => panic!("not an RLHF event: {other:?}"),
        }
    }

    #[test]
    fn batches_cover_each_epoch_once_and_resume_identically() {
        let prompts = Prompts {
            texts: vec![String::new(); 10],
            ids: (0..10).map(|i| vec![i]).collect(),
            answers: vec![None; 10],
        };
        let mut seen: Vec<usize> = (0..5)
            .flat_map(|s| prompts.batch_indices(s, 4, 3))
            .take(10)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(
            prompts.batch_indices(7, 4, 3),
            prompts.batch_indices(7, 4, 3)
        );
        assert_ne!(
            prompts.batch_indices(0, 4, 3),
            prompts.batch_indices(0, 4, 4)
        );
    }

    #[test]
    fn run_files_with_unknown_keys_are_rejected_by_name() {
        let file = std::env::temp_dir().join(format!("hone-run-{}.toml", std::process::id()));
        std::fs::write(&file, "policy = \"p\"\n[remax]\nkl_coeff = 0.1\n").unwrap();
        let err = hone_trainer::config::resolve(&RunConfig::default(), Some(&file), &[])
            .unwrap_err()
            .to_string();
        let _ = std::fs::remove_file(&file);
        assert!(err.contains("kl_coeff"), "{err}");
    }
}
