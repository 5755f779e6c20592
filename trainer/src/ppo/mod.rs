//! PPO for discrete and continuous control, after CleanRL's `ppo.py` and
//! `ppo_continuous_action.py` (and "The 37 Implementation Details of PPO").
//!
//! One [`Ppo`] owns the env pool (sync mode, same-step autoreset), the agent, the optimiser and
//! the trainer's random generator. [`Ppo::iterate`] collects one rollout and runs one update,
//! returning its telemetry; [`Ppo::save`] and [`Ppo::load`] write and read a checkpoint folder
//! that restores the run exactly (parameters, optimiser, normaliser statistics, random
//! generators, the envs' states and the step counters).

mod checkpoint;
pub mod config;
mod evaluate;
mod loss;
pub mod run;
pub mod sampling;

use std::time::Instant;

use hone_envs::rng::Pcg64;
use hone_envs::{Actions, AutoReset, EnvPool, PoolConfig, Space};
use hone_kernels::{GaeParams, RewardNormalizer, Rollout, RunningMeanStd, Truncation};
use hone_telemetry::{EpisodeStats, LossStats, PhaseTiming, UpdateEvent};
use tch::{Device, Kind, Tensor};

pub use config::{PpoConfig, TruncationMode, parse_device};
pub use evaluate::{EVAL_ENVS, evaluate_policy};

use crate::optim::{Adam, clip_grad_norm};
use crate::policy::{ActionKind, ActorCritic};
use crate::{Error, Result};

/// gymnasium's `NormalizeObservation`/`NormalizeReward` epsilon.
const NORMALIZE_EPSILON: f64 = 1e-8;

/// What one minibatch of an update saw (read by the tests).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone)]
struct MinibatchProbe {
    epoch: usize,
    indices: Vec<i64>,
    ratio: Vec<f32>,
    approx_kl: f64,
    advantages: Vec<f32>,
}

/// The rollout of one iteration, `[T, N]` step-major, on the host.
#[derive(Debug, Default)]
struct RolloutBuffer {
    obs: Vec<f32>,
    discrete_actions: Vec<i64>,
    continuous_actions: Vec<f32>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

/// Episodes finished during an iteration.
#[derive(Debug, Default)]
struct EpisodeTally {
    returns: Vec<f64>,
    lengths: Vec<u32>,
}

impl EpisodeTally {
    fn stats(&self) -> EpisodeStats {
        let n = self.returns.len();
        if n == 0 {
            return EpisodeStats::default();
        }
        EpisodeStats {
            count: n as u64,
            return_mean: Some(self.returns.iter().sum::<f64>() / n as f64),
            return_min: self.returns.iter().copied().reduce(f64::min),
            return_max: self.returns.iter().copied().reduce(f64::max),
            length_mean: Some(self.lengths.iter().map(|&l| f64::from(l)).sum::<f64>() / n as f64),
        }
    }
}

#[derive(Debug)]
pub struct Ppo {
    pub config: PpoConfig,
    device: Device,
    pool: EnvPool,
    agent: ActorCritic,
    optimizer: Adam,
    rng: Pcg64,
    obs_stats: Option<RunningMeanStd>,
    reward_normalizer: Option<RewardNormalizer>,
    obs_dim: usize,
    /// Bounds of a continuous action space, for clipping at the env.
    action_low: Vec<f32>,
    action_high: Vec<f32>,
    /// The observation the policy acts on next (normalised), `[N, obs_dim]`.
    next_obs: Vec<f32>,
    buffer: RolloutBuffer,
    /// Scratch: the env actions of one step (clipped, for continuous spaces).
    env_actions: Vec<f32>,
    env_discrete_actions: Vec<i64>,
    scratch: Vec<f32>,
    permutation: Vec<i64>,
    /// Filled by the update when set: what each minibatch saw (for tests of the algorithm).
    probe: Option<Vec<MinibatchProbe>>,
    pub global_step: u64,
    pub iteration: u64,
    /// Wall time of earlier sessions of this run (resumes continue the clock).
    elapsed_before: f64,
    session_start: Instant,
}

impl Ppo {
    /// A fresh run: builds the pool, resets it, and initialises the agent from `config.seed`.
    pub fn new(config: PpoConfig) -> Result<Self> {
        config.validate()?;
        let device = parse_device(&config.device)?;
        set_torch_threads(config.torch_threads);
        let mut pool_config = PoolConfig::new(config.env_id.clone(), config.num_envs)
            .num_threads(config.env_threads)
            .seed(config.seed)
            .autoreset(AutoReset::SameStep);
        if let Some(steps) = config.max_episode_steps {
            pool_config = pool_config.max_episode_steps(steps);
        }
        check_rollout_fits(&config)?;
        let pool = hone_envs::registry::make(&config.env_id, pool_config)?;
        let obs_dim = match pool.observation_space() {
            Space::Box { shape, .. } => shape.iter().product::<usize>(),
            other => {
                return Err(Error::Config(format!(
                    "{}: PPO needs a Box observation space, the env has {other:?}",
                    config.env_id
                )));
            }
        };
        let (action, action_low, action_high) = match pool.action_space() {
            Space::Discrete { n } => (ActionKind::Categorical { n: *n }, Vec::new(), Vec::new()),
            Space::Box { low, high, .. } => (
                ActionKind::Gaussian {
                    dim: low.len() as i64,
                },
                low.clone(),
                high.clone(),
            ),
            Space::MultiDiscrete { .. } => {
                return Err(Error::Config(format!(
                    "{}: PPO here supports Discrete and Box action spaces, not MultiDiscrete",
                    config.env_id
                )));
            }
        };
        // CleanRL seeds torch with the run's seed before building the agent.
        tch::manual_seed(config.seed as i64);
        let agent = ActorCritic::new(obs_dim as i64, action, &config.hidden_sizes, device);
        let optimizer = Adam::new(&agent.params, config.adam_eps);
        let obs_stats = config
            .normalize_observation
            .then(|| RunningMeanStd::new(obs_dim));
        let reward_normalizer = if config.normalize_reward {
            Some(RewardNormalizer::new(
                config.num_envs,
                config.gamma,
                NORMALIZE_EPSILON,
            )?)
        } else {
            None
        };
        let mut ppo = Self {
            device,
            pool,
            agent,
            optimizer,
            // The trainer's stream is independent of the envs' (seeded seed + i).
            rng: Pcg64::from_seed(config.seed ^ 0x9e37_79b9_7f4a_7c15),
            obs_stats,
            reward_normalizer,
            obs_dim,
            action_low,
            action_high,
            next_obs: Vec::new(),
            buffer: RolloutBuffer::default(),
            env_actions: Vec::new(),
            env_discrete_actions: Vec::new(),
            scratch: Vec::new(),
            permutation: Vec::new(),
            probe: None,
            global_step: 0,
            iteration: 0,
            elapsed_before: 0.0,
            session_start: Instant::now(),
            config,
        };
        let batch = ppo.pool.reset()?;
        ppo.next_obs.extend_from_slice(batch.observations);
        if let Some(stats) = &mut ppo.obs_stats {
            stats.update(&ppo.next_obs)?;
            stats.normalize(
                &mut ppo.next_obs,
                NORMALIZE_EPSILON,
                Some(ppo.config.clip_observation),
            )?;
        }
        ppo.allocate_buffers();
        Ok(ppo)
    }

    fn allocate_buffers(&mut self) {
        let (t, n, d) = (self.config.num_steps, self.config.num_envs, self.obs_dim);
        let b = &mut self.buffer;
        b.obs = vec![0.0; t * n * d];
        match self.agent.action {
            ActionKind::Categorical { .. } => b.discrete_actions = vec![0; t * n],
            ActionKind::Gaussian { dim } => b.continuous_actions = vec![0.0; t * n * dim as usize],
        }
        for v in [
            &mut b.log_probs,
            &mut b.values,
            &mut b.rewards,
            &mut b.final_values,
            &mut b.advantages,
            &mut b.returns,
        ] {
            *v = vec![0.0; t * n];
        }
        b.terminated = vec![false; t * n];
        b.truncated = vec![false; t * n];
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn agent(&self) -> &ActorCritic {
        &self.agent
    }

    pub fn obs_stats(&self) -> Option<&RunningMeanStd> {
        self.obs_stats.as_ref()
    }

    /// Seconds of training over all sessions of the run.
    pub fn elapsed_s(&self) -> f64 {
        self.elapsed_before + self.session_start.elapsed().as_secs_f64()
    }

    pub fn is_done(&self) -> bool {
        self.iteration >= self.config.num_iterations()
    }

    /// The learning rate of the next update (CleanRL's linear annealing).
    pub fn learning_rate(&self) -> f64 {
        if self.config.anneal_lr {
            let frac = 1.0 - self.iteration as f64 / self.config.num_iterations() as f64;
            frac * self.config.learning_rate
        } else {
            self.config.learning_rate
        }
    }

    /// One rollout and one update.
    pub fn iterate(&mut self) -> Result<UpdateEvent> {
        let start = Instant::now();
        let lr = self.learning_rate();
        let mut timing = PhaseTiming::default();
        let mut episodes = EpisodeTally::default();
        self.collect_rollout(&mut timing, &mut episodes)?;
        let update_start = Instant::now();
        let losses = self.update(lr)?;
        timing.update_s = update_start.elapsed().as_secs_f64();
        self.iteration += 1;
        if let Some(what) = self.first_non_finite()? {
            return Err(Error::Diverged(format!(
                "{what} holds NaN or infinite values after update {} (learning_rate {lr})",
                self.iteration
            )));
        }
        for (name, value) in [
            ("policy loss", losses.policy_loss),
            ("value loss", losses.value_loss),
            ("entropy", losses.entropy),
        ] {
            if !value.is_finite() {
                return Err(Error::Diverged(format!(
                    "{name} is {value} at update {}",
                    self.iteration
                )));
            }
        }
        let steps = self.config.batch_size() as f64;
        Ok(UpdateEvent {
            update: self.iteration,
            global_step: self.global_step,
            elapsed_s: self.elapsed_s(),
            sps: steps / start.elapsed().as_secs_f64(),
            env_fps: steps / timing.env_step_s.max(1e-9),
            episodes: episodes.stats(),
            losses,
            timing,
            rss_bytes: resident_memory(),
        })
    }

    fn collect_rollout(
        &mut self,
        timing: &mut PhaseTiming,
        episodes: &mut EpisodeTally,
    ) -> Result<()> {
        let (n, d) = (self.config.num_envs, self.obs_dim);
        let bootstrap = self.config.truncation == TruncationMode::Bootstrap;
        // The log-std is fixed during a rollout.
        let std: Vec<f32> = match self.agent.log_std() {
            Some(log_std) => {
                Vec::<f32>::try_from(log_std.detach().exp().to_device(Device::Cpu).flatten(0, -1))?
            }
            None => Vec::new(),
        };
        for t in 0..self.config.num_steps {
            self.global_step += n as u64;
            let row = t * n;
            self.buffer.obs[row * d..(row + n) * d].copy_from_slice(&self.next_obs);

            let inference = Instant::now();
            let obs = Tensor::from_slice(&self.next_obs)
                .view([n as i64, d as i64])
                .to_device(self.device);
            let (out, value) = tch::no_grad(|| self.agent.actor_output_and_value(&obs));
            copy_to_host(&value, &mut self.buffer.values[row..row + n])?;
            match self.agent.action {
                ActionKind::Categorical { n: num_actions } => {
                    let log_p = tch::no_grad(|| out.log_softmax(-1, Kind::Float));
                    let width = num_actions as usize;
                    self.scratch.resize(n * width, 0.0);
                    copy_to_host(&log_p, &mut self.scratch)?;
                    self.env_discrete_actions.clear();
                    for i in 0..n {
                        let row_lp = &self.scratch[i * width..(i + 1) * width];
                        let a = sampling::categorical(&mut self.rng, row_lp);
                        self.buffer.discrete_actions[row + i] = a as i64;
                        self.buffer.log_probs[row + i] = row_lp[a];
                        self.env_discrete_actions.push(a as i64);
                    }
                }
                ActionKind::Gaussian { dim } => {
                    let dim = dim as usize;
                    self.scratch.resize(n * dim, 0.0);
                    copy_to_host(&out, &mut self.scratch)?;
                    self.env_actions.clear();
                    let sampled = &mut self.buffer.continuous_actions[row * dim..(row + n) * dim];
                    for (k, a) in sampled.iter_mut().enumerate() {
                        let j = k % dim;
                        let eps = sampling::standard_normal(&mut self.rng);
                        *a = (f64::from(self.scratch[k]) + f64::from(std[j]) * eps) as f32;
                        // The env gets the clipped action; the buffer keeps the sample.
                        self.env_actions
                            .push(a.clamp(self.action_low[j], self.action_high[j]));
                    }
                    // The log-probability as the update computes it, so the first ratio is 1.
                    let actions = Tensor::from_slice(sampled)
                        .view([n as i64, dim as i64])
                        .to_device(self.device);
                    let log_std = self
                        .agent
                        .log_std()
                        .expect("a Gaussian policy has a log-std");
                    let (log_prob, _) = tch::no_grad(|| {
                        crate::policy::gaussian_log_prob_entropy(&out, log_std, &actions)
                    });
                    copy_to_host(&log_prob, &mut self.buffer.log_probs[row..row + n])?;
                }
            }
            timing.inference_s += inference.elapsed().as_secs_f64();

            let env_start = Instant::now();
            let actions = match self.agent.action {
                ActionKind::Categorical { .. } => Actions::Int(&self.env_discrete_actions),
                ActionKind::Gaussian { .. } => Actions::Float(&self.env_actions),
            };
            let batch = self.pool.step(actions)?;
            timing.env_step_s += env_start.elapsed().as_secs_f64();

            let rewards = &mut self.buffer.rewards[row..row + n];
            rewards.copy_from_slice(batch.reward);
            self.buffer.terminated[row..row + n].copy_from_slice(batch.terminated);
            self.buffer.truncated[row..row + n].copy_from_slice(batch.truncated);
            if let Some(normalizer) = &mut self.reward_normalizer {
                // gymnasium's NormalizeReward resets the discounted return at episode ends.
                let ends: Vec<bool> = batch
                    .terminated
                    .iter()
                    .zip(batch.truncated)
                    .map(|(a, b)| *a || *b)
                    .collect();
                normalizer.normalize(rewards, &ends)?;
                let clip = self.config.clip_reward as f32;
                rewards.iter_mut().for_each(|r| *r = r.clamp(-clip, clip));
            }
            let eps = &batch.episodes;
            episodes.returns.extend_from_slice(eps.episode_return);
            episodes.lengths.extend_from_slice(eps.length);

            // Truncated episodes bootstrap from the value of their final observation.
            self.buffer.final_values[row..row + n].fill(0.0);
            let needs_value: Vec<usize> = (0..eps.len())
                .filter(|&k| {
                    let env = eps.env_id[k] as usize;
                    bootstrap && batch.truncated[env] && !batch.terminated[env]
                })
                .collect();
            if !needs_value.is_empty() {
                let inference = Instant::now();
                let mut final_obs = Vec::with_capacity(needs_value.len() * d);
                for &k in &needs_value {
                    final_obs.extend_from_slice(&eps.final_observation[k * d..(k + 1) * d]);
                }
                if let Some(stats) = &self.obs_stats {
                    stats.normalize(
                        &mut final_obs,
                        NORMALIZE_EPSILON,
                        Some(self.config.clip_observation),
                    )?;
                }
                let obs = Tensor::from_slice(&final_obs)
                    .view([needs_value.len() as i64, d as i64])
                    .to_device(self.device);
                let values = Vec::<f32>::try_from(
                    tch::no_grad(|| self.agent.value(&obs)).to_device(Device::Cpu),
                )?;
                for (&k, v) in needs_value.iter().zip(values) {
                    self.buffer.final_values[row + eps.env_id[k] as usize] = v;
                }
                timing.inference_s += inference.elapsed().as_secs_f64();
            }

            self.next_obs.copy_from_slice(batch.observations);
            if let Some(stats) = &mut self.obs_stats {
                stats.update(&self.next_obs)?;
                stats.normalize(
                    &mut self.next_obs,
                    NORMALIZE_EPSILON,
                    Some(self.config.clip_observation),
                )?;
            }
        }
        Ok(())
    }

    /// GAE, then `update_epochs` passes of minibatch PPO updates. Returns CleanRL's logged
    /// statistics: the last minibatch's losses and KLs, the mean clip fraction over all
    /// minibatches, the explained variance of the values.
    fn update(&mut self, lr: f64) -> Result<LossStats> {
        let (t, n, d) = (self.config.num_steps, self.config.num_envs, self.obs_dim);
        let obs = Tensor::from_slice(&self.next_obs)
            .view([n as i64, d as i64])
            .to_device(self.device);
        let next_values =
            Vec::<f32>::try_from(tch::no_grad(|| self.agent.value(&obs)).to_device(Device::Cpu))?;
        let b = &mut self.buffer;
        let bootstrap = self.config.truncation == TruncationMode::Bootstrap;
        let rollout = Rollout {
            steps: t,
            envs: n,
            rewards: &b.rewards,
            terminated: &b.terminated,
            truncated: &b.truncated,
            final_values: bootstrap.then_some(&b.final_values[..]),
            next_values: &next_values,
        };
        let params = GaeParams {
            gamma: self.config.gamma as f32,
            lambda: self.config.gae_lambda as f32,
            truncation: if bootstrap {
                Truncation::Bootstrap
            } else {
                Truncation::AsTermination
            },
        };
        hone_kernels::slice::advantage::gae_into(
            &rollout,
            &b.values,
            params,
            &mut b.advantages,
            &mut b.returns,
        )?;

        let batch_size = t * n;
        let dev = self.device;
        let b_obs = Tensor::from_slice(&b.obs)
            .view([batch_size as i64, d as i64])
            .to_device(dev);
        let b_actions = match self.agent.action {
            ActionKind::Categorical { .. } => {
                Tensor::from_slice(&b.discrete_actions).to_device(dev)
            }
            ActionKind::Gaussian { dim } => Tensor::from_slice(&b.continuous_actions)
                .view([batch_size as i64, dim])
                .to_device(dev),
        };
        // One [B, 4] tensor of the per-sample scalars: one gather per epoch instead of four.
        let b_scalars = Tensor::stack(
            &[&b.log_probs, &b.advantages, &b.returns, &b.values].map(|v| Tensor::from_slice(v)),
            1,
        )
        .to_device(dev);
        let explained_variance = explained_variance(&b.values, &b.returns);

        let clip = self.config.clip_coef;
        let coefficients = loss::Coefficients {
            clip,
            clip_vloss: self.config.clip_vloss,
            ent_coef: self.config.ent_coef,
            vf_coef: self.config.vf_coef,
        };
        let minibatch = self.config.minibatch_size();
        let mut clipfracs = Vec::new();
        let mut grad_norms = Vec::new();
        let mut last = None;
        for epoch in 0..self.config.update_epochs {
            sampling::permutation(&mut self.rng, batch_size, &mut self.permutation);
            // Shuffle once per epoch; minibatches are then contiguous slices (views).
            let perm = Tensor::from_slice(&self.permutation).to_device(dev);
            let (e_obs, e_actions) = (
                b_obs.index_select(0, &perm),
                b_actions.index_select(0, &perm),
            );
            let e_scalars = b_scalars.index_select(0, &perm);
            let mut starts = (0..batch_size).step_by(minibatch).peekable();
            while let Some(start) = starts.next() {
                let epoch_ends = starts.peek().is_none();
                let end = (start + minibatch).min(batch_size);
                let len = (end - start) as i64;
                let mb_scalars = e_scalars.narrow(0, start as i64, len);
                let column = |c: i64| mb_scalars.select(1, c);
                let mut advantages = column(1);
                if self.config.norm_adv && end - start > 1 {
                    advantages = (&advantages - advantages.mean(Kind::Float))
                        / (advantages.std(true) + 1e-8);
                }
                let mb_obs = e_obs.narrow(0, start as i64, len);
                let mb_actions = e_actions.narrow(0, start as i64, len);
                let mb = loss::Minibatch {
                    actions: &mb_actions,
                    old_log_prob: column(0),
                    advantages,
                    returns: column(2),
                    old_values: column(3),
                };
                // The loss's gradient written out (`loss`, `ActorCritic::backward`): what
                // autograd gives, in about half the libtorch calls.
                let terms = tch::no_grad(|| {
                    let pass = self.agent.forward_pass(&mb_obs);
                    let (grads, terms) = loss::gradients(&self.agent, &pass, &mb, coefficients);
                    self.agent.backward(
                        &mb_obs,
                        &pass,
                        &grads.out,
                        &grads.value,
                        grads.log_std.as_ref(),
                    );
                    terms
                });
                let (log_ratio, ratio) = (&terms.log_ratio, &terms.ratio);
                let kls = || {
                    tch::no_grad(|| {
                        let old = (-log_ratio).mean(Kind::Float);
                        let approx = ((ratio - 1.0) - log_ratio).mean(Kind::Float);
                        (old, approx)
                    })
                };
                clipfracs.push(tch::no_grad(|| {
                    (ratio - 1.0)
                        .abs()
                        .gt(clip)
                        .to_kind(Kind::Float)
                        .mean(Kind::Float)
                }));
                if let Some(probe) = &mut self.probe {
                    probe.push(MinibatchProbe {
                        epoch,
                        indices: self.permutation[start..end].to_vec(),
                        ratio: Vec::<f32>::try_from(ratio.to_device(Device::Cpu))?,
                        approx_kl: kls().1.double_value(&[]),
                        advantages: Vec::<f32>::try_from(mb.advantages.to_device(Device::Cpu))?,
                    });
                }
                let grad = self.agent.grad();
                grad_norms.push(clip_grad_norm(grad, self.config.max_grad_norm));
                self.optimizer.step(&self.agent.params, grad, lr);
                // What CleanRL logs comes from the last minibatch; each epoch's last one is
                // kept (the KL early stop reads it).
                if epoch_ends {
                    let (pg, v, h) = tch::no_grad(|| terms.losses());
                    let (old_kl, kl) = kls();
                    last = Some((pg, v, h, old_kl, kl));
                }
            }
            if let (Some(target), Some((.., approx_kl))) = (self.config.target_kl, &last)
                && approx_kl.double_value(&[]) > target
            {
                break;
            }
        }
        let (pg, v, h, old_kl, kl) = last.expect("at least one minibatch ran");
        Ok(LossStats {
            policy_loss: pg.double_value(&[]),
            value_loss: v.double_value(&[]),
            entropy: h.double_value(&[]),
            approx_kl: kl.double_value(&[]),
            old_approx_kl: old_kl.double_value(&[]),
            clipfrac: Tensor::stack(&clipfracs, 0)
                .mean(Kind::Float)
                .double_value(&[]),
            explained_variance,
            learning_rate: lr,
            grad_norm: Tensor::stack(&grad_norms, 0)
                .mean(Kind::Float)
                .double_value(&[]),
        })
    }

    /// Runs the deterministic policy (argmax / mean action, observation statistics frozen) for
    /// `episodes` episodes on fresh envs seeded from `seed`, returning each episode's return.
    pub fn evaluate(&self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        self.evaluate_with_progress(episodes, seed, &mut |_| {})
    }

    /// [`Ppo::evaluate`], calling `progress` with the episodes done after each round of
    /// [`EVAL_ENVS`] envs.
    pub fn evaluate_with_progress(
        &self,
        episodes: usize,
        seed: u64,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f64>> {
        evaluate_policy(
            &self.agent,
            &self.config,
            self.obs_stats.as_ref(),
            episodes,
            seed,
            progress,
        )
    }
}

/// The rollout's host buffers and their tensor copies for the update (about three copies of
/// every row), checked against the memory available before the pool or any buffer is made
/// (the spaces come from a one-env pool).
pub fn check_rollout_fits(config: &PpoConfig) -> Result<()> {
    let probe = hone_envs::registry::make(
        &config.env_id,
        PoolConfig::new(config.env_id.clone(), 1).num_threads(1),
    )?;
    let row_len = probe.observation_space().flat_len() + probe.action_space().flat_len() + 10;
    let (t, n) = (config.num_steps, config.num_envs);
    let bytes = t
        .checked_mul(n)
        .and_then(|rows| rows.checked_mul(row_len * 3 * std::mem::size_of::<f32>()))
        .and_then(|b| u64::try_from(b).ok());
    let what = format!("a rollout of num_steps × num_envs = {t} × {n}");
    match hone_envs::memory::does_not_fit(&what, bytes) {
        Some(message) => Err(Error::Config(message)),
        None => Ok(()),
    }
}

/// 1 − Var(returns − values) / Var(returns), as CleanRL (NaN when the returns are constant).
fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let n = returns.len() as f64;
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = xs.collect();
        let mean = xs.iter().sum::<f64>() / n;
        xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
    };
    let var_y = var(&mut returns.iter().map(|&r| f64::from(r)));
    if var_y == 0.0 {
        return f64::NAN;
    }
    let var_diff = var(&mut returns
        .iter()
        .zip(values)
        .map(|(&r, &v)| f64::from(r) - f64::from(v)));
    1.0 - var_diff / var_y
}

fn copy_to_host(tensor: &Tensor, out: &mut [f32]) -> Result<()> {
    let host = tensor
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    if host.numel() != out.len() {
        return Err(Error::Torch(tch::TchError::Shape(format!(
            "expected {} values from the policy, got {}",
            out.len(),
            host.numel()
        ))));
    }
    host.f_copy_data(out, out.len())?;
    Ok(())
}

/// Sets libtorch's intra-op threads (0 = one per core).
pub fn set_torch_threads(threads: usize) {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    tch::set_num_threads(threads as i32);
}

/// Resident memory of this process in bytes (Linux).
pub fn resident_memory() -> Option<u64> {
    process_status_bytes("VmRSS:")
}

/// The process's peak resident memory so far in bytes (Linux: VmHWM), when known.
pub fn peak_resident_memory() -> Option<u64> {
    process_status_bytes("VmHWM:")
}

fn process_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn small(env: &str, continuous: bool) -> PpoConfig {
        let base = if continuous {
            PpoConfig::continuous()
        } else {
            PpoConfig::default()
        };
        PpoConfig {
            env_id: env.into(),
            num_envs: 4,
            num_steps: 32,
            num_minibatches: 4,
            update_epochs: 3,
            total_timesteps: 4 * 32 * 10,
            device: "cpu".into(),
            env_threads: 1,
            ..base
        }
    }

    fn probed_update(config: PpoConfig) -> Vec<MinibatchProbe> {
        let mut ppo = Ppo::new(config).unwrap();
        ppo.probe = Some(Vec::new());
        ppo.iterate().unwrap();
        ppo.probe.take().unwrap()
    }

    #[test]
    fn first_minibatch_ratio_is_one_and_approx_kl_zero() {
        for (env, continuous) in [("CartPole-v1", false), ("Pendulum-v1", true)] {
            let probes = probed_update(small(env, continuous));
            let first = &probes[0];
            assert_eq!(first.epoch, 0);
            for r in &first.ratio {
                assert!(
                    (r - 1.0).abs() < 1e-5,
                    "{env}: ratio {r} on the first minibatch"
                );
            }
            assert!(
                first.approx_kl.abs() < 1e-9,
                "{env}: approx_kl {}",
                first.approx_kl
            );
            // Later minibatches follow updated parameters: the ratio moves.
            let moved = probes[1..]
                .iter()
                .flat_map(|p| &p.ratio)
                .any(|r| (r - 1.0).abs() > 1e-4);
            assert!(moved, "{env}: the policy never changed");
        }
    }

    #[test]
    fn advantages_are_normalised_per_minibatch() {
        let probes = probed_update(small("CartPole-v1", false));
        for p in &probes {
            let n = p.advantages.len() as f64;
            let mean = p.advantages.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
            let var = p
                .advantages
                .iter()
                .map(|&a| (f64::from(a) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            assert!(mean.abs() < 1e-5, "minibatch mean {mean}");
            assert!(
                (var.sqrt() - 1.0).abs() < 1e-3,
                "minibatch std {}",
                var.sqrt()
            );
        }
        let raw = probed_update(PpoConfig {
            norm_adv: false,
            ..small("CartPole-v1", false)
        });
        let mean = raw[0].advantages.iter().map(|&a| f64::from(a)).sum::<f64>()
            / raw[0].advantages.len() as f64;
        assert!(
            mean.abs() > 1e-3,
            "without norm_adv the advantages are left as they are"
        );
    }

    #[test]
    fn every_sample_is_used_once_per_epoch() {
        // 4 × 30 = 120 samples in minibatches of 120 / 7 = 17: seven of 17 and a last one of 1.
        let config = PpoConfig {
            num_steps: 30,
            num_minibatches: 7,
            ..small("CartPole-v1", false)
        };
        let probes = probed_update(config);
        for epoch in 0..3 {
            let mut seen: Vec<i64> = probes
                .iter()
                .filter(|p| p.epoch == epoch)
                .flat_map(|p| p.indices.clone())
                .collect();
            seen.sort();
            assert_eq!(seen, (0..120).collect::<Vec<_>>(), "epoch {epoch}");
        }
        let first_epoch: Vec<&MinibatchProbe> = probes.iter().filter(|p| p.epoch == 0).collect();
        assert_eq!(first_epoch.len(), 8);
        assert_ne!(
            probes[0].indices,
            (0..17).collect::<Vec<_>>(),
            "samples are shuffled"
        );
    }

    #[test]
    fn target_kl_stops_the_epochs_early() {
        let config = PpoConfig {
            target_kl: Some(0.0),
            ..small("CartPole-v1", false)
        };
        let probes = probed_update(config);
        assert!(
            probes.iter().all(|p| p.epoch == 0),
            "a zero target stops after the first epoch"
        );
    }

    #[test]
    fn learning_rate_anneals_linearly_to_zero() {
        let mut ppo = Ppo::new(small("CartPole-v1", false)).unwrap();
        let lr = ppo.config.learning_rate;
        assert_eq!(ppo.learning_rate(), lr);
        ppo.iteration = 5;
        assert!((ppo.learning_rate() - lr * 0.5).abs() < 1e-12);
        ppo.config.anneal_lr = false;
        assert_eq!(ppo.learning_rate(), lr);
    }

    #[test]
    fn explained_variance_matches_its_definition() {
        assert!(explained_variance(&[1.0, 2.0], &[3.0, 3.0]).is_nan());
        assert!((explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        // values 0: 1 - Var(y)/Var(y) = 0.
        assert!(explained_variance(&[0.0, 0.0, 0.0], &[1.0, 2.0, 3.0]).abs() < 1e-12);
    }
}
