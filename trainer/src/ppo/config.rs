//! PPO's config. The defaults are CleanRL's: `ppo.py` for discrete actions
//! ([`PpoConfig::default`]) and `ppo_continuous_action.py` for continuous ones
//! ([`PpoConfig::continuous`]).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a time-limit truncation enters the value targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationMode {
    /// Bootstrap from the value of the truncated episode's final observation.
    #[default]
    Bootstrap,
    /// Treat truncation as termination, as CleanRL does.
    Termination,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoConfig {
    pub env_id: String,
    pub seed: u64,
    pub total_timesteps: u64,
    pub learning_rate: f64,
    pub num_envs: usize,
    /// Steps per env per rollout.
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    pub gamma: f64,
    pub gae_lambda: f64,
    pub num_minibatches: usize,
    pub update_epochs: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    pub clip_coef: f64,
    pub clip_vloss: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
    pub max_grad_norm: f64,
    /// Stop an update's epochs early once approx_kl exceeds this.
    pub target_kl: Option<f64>,
    pub adam_eps: f64,
    pub hidden_sizes: Vec<i64>,
    pub truncation: TruncationMode,
    /// Running mean/std observation normalisation (gymnasium's `NormalizeObservation`).
    pub normalize_observation: bool,
    /// Reward scaling by the std of the discounted return (gymnasium's `NormalizeReward`).
    pub normalize_reward: bool,
    pub clip_observation: f64,
    pub clip_reward: f64,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Threads stepping environments; 0 = one per core.
    pub env_threads: usize,
    /// libtorch intra-op threads; 0 = one per core. Small policies run fastest on one.
    pub torch_threads: usize,
    /// Overrides the task's time limit.
    pub max_episode_steps: Option<u32>,
    /// Checkpoint every this many updates (and always at the end); 0 = only at the end.
    pub checkpoint_every: u64,
    /// Checkpoints kept besides `best`.
    pub keep_checkpoints: usize,
}

impl Default for PpoConfig {
    /// CleanRL's `ppo.py`.
    fn default() -> Self {
        Self {
            env_id: "CartPole-v1".to_owned(),
            seed: 1,
            total_timesteps: 500_000,
            learning_rate: 2.5e-4,
            num_envs: 4,
            num_steps: 128,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            adam_eps: 1e-5,
            hidden_sizes: vec![64, 64],
            truncation: TruncationMode::Bootstrap,
            normalize_observation: false,
            normalize_reward: false,
            clip_observation: 10.0,
            clip_reward: 10.0,
            device: "auto".to_owned(),
            env_threads: 0,
            torch_threads: 1,
            max_episode_steps: None,
            checkpoint_every: 50,
            keep_checkpoints: 3,
        }
    }
}

impl PpoConfig {
    /// CleanRL's `ppo_continuous_action.py`.
    pub fn continuous() -> Self {
        Self {
            env_id: "Pendulum-v1".to_owned(),
            total_timesteps: 1_000_000,
            learning_rate: 3e-4,
            num_envs: 1,
            num_steps: 2048,
            num_minibatches: 32,
            update_epochs: 10,
            ent_coef: 0.0,
            normalize_observation: true,
            normalize_reward: true,
            checkpoint_every: 10,
            ..Self::default()
        }
    }

    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    /// CleanRL's `batch_size // num_minibatches`; a remainder forms one more, smaller minibatch.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches
    }

    /// Updates in the run: `total_timesteps // batch_size`, as CleanRL.
    pub fn num_iterations(&self) -> u64 {
        self.total_timesteps / self.batch_size() as u64
    }

    /// Checks what serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        let positive = [
            ("num_envs", self.num_envs),
            ("num_steps", self.num_steps),
            ("num_minibatches", self.num_minibatches),
            ("update_epochs", self.update_epochs),
        ];
        for (name, value) in positive {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if self.num_envs.checked_mul(self.num_steps).is_none() {
            return fail(format!(
                "num_envs × num_steps = {} × {} overflows",
                self.num_envs, self.num_steps
            ));
        }
        for (name, threads) in [
            ("torch_threads", self.torch_threads),
            ("env_threads", self.env_threads),
        ] {
            hone_envs::memory::check_threads(name, threads).map_err(Error::Config)?;
        }
        if self.num_minibatches > self.batch_size() {
            return fail(format!(
                "num_minibatches = {} exceeds the batch size num_envs × num_steps = {}",
                self.num_minibatches,
                self.batch_size()
            ));
        }
        if self.num_iterations() == 0 {
            return fail(format!(
                "total_timesteps = {} is less than one batch (num_envs × num_steps = {})",
                self.total_timesteps,
                self.batch_size()
            ));
        }
        for (name, value) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&value) {
                return fail(format!("{name} = {value} is outside [0, 1]"));
            }
        }
        let non_negative = [
            ("learning_rate", self.learning_rate),
            ("clip_coef", self.clip_coef),
            ("ent_coef", self.ent_coef),
            ("vf_coef", self.vf_coef),
            ("max_grad_norm", self.max_grad_norm),
            ("adam_eps", self.adam_eps),
            ("clip_observation", self.clip_observation),
            ("clip_reward", self.clip_reward),
        ];
        for (name, value) in non_negative {
            if !(value >= 0.0 && value.is_finite()) {
                return fail(format!("{name} = {value} must be a finite number ≥ 0"));
            }
        }
        if let Some(kl) = self.target_kl
            && !(kl >= 0.0 && kl.is_finite())
        {
            return fail(format!("target_kl = {kl} must be a finite number ≥ 0"));
        }
        if self.hidden_sizes.iter().any(|&h| h <= 0) {
            return fail(format!(
                "hidden_sizes = {:?} must all be ≥ 1",
                self.hidden_sizes
            ));
        }
        if self.keep_checkpoints == 0 {
            return fail("keep_checkpoints must be at least 1".to_owned());
        }
        parse_device(&self.device)?;
        Ok(())
    }
}

/// `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(name: &str) -> Result<tch::Device> {
    let cuda_count = || {
        if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        }
    };
    match name {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" | "cuda:0" if cuda_count() > 0 => Ok(tch::Device::Cuda(0)),
        other => {
            if let Some(index) = other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                && index < cuda_count()
            {
                return Ok(tch::Device::Cuda(index));
            }
            if other == "cuda" || other.starts_with("cuda:") {
                return Err(Error::Config(format!(
                    "device `{other}` is not available: this machine has {} CUDA device(s)",
                    cuda_count()
                )));
            }
            Err(Error::Config(format!(
                "unknown device `{other}`; use auto, cpu, cuda or cuda:N"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_cleanrl_ppo_py() {
        let c = PpoConfig::default();
        assert_eq!(
            (
                c.total_timesteps,
                c.learning_rate,
                c.num_envs,
                c.num_steps,
                c.num_minibatches,
                c.update_epochs
            ),
            (500_000, 2.5e-4, 4, 128, 4, 4)
        );
        assert_eq!(
            (
                c.gamma,
                c.gae_lambda,
                c.clip_coef,
                c.ent_coef,
                c.vf_coef,
                c.max_grad_norm
            ),
            (0.99, 0.95, 0.2, 0.01, 0.5, 0.5)
        );
        assert!(c.anneal_lr && c.norm_adv && c.clip_vloss && c.target_kl.is_none());
        assert_eq!(
            (c.batch_size(), c.minibatch_size(), c.num_iterations()),
            (512, 128, 976)
        );
    }

    #[test]
    fn continuous_defaults_are_cleanrl_ppo_continuous_action_py() {
        let c = PpoConfig::continuous();
        assert_eq!(
            (
                c.total_timesteps,
                c.learning_rate,
                c.num_envs,
                c.num_steps,
                c.num_minibatches,
                c.update_epochs
            ),
            (1_000_000, 3e-4, 1, 2048, 32, 10)
        );
        assert_eq!(c.ent_coef, 0.0);
        assert!(c.normalize_observation && c.normalize_reward);
        assert_eq!((c.clip_observation, c.clip_reward), (10.0, 10.0));
        assert_eq!(c.minibatch_size(), 64);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = |f: fn(&mut PpoConfig)| {
            let mut c = PpoConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.num_envs = 0).contains("num_envs must be at least 1"));
        assert!(bad(|c| c.gamma = 1.5).contains("gamma = 1.5 is outside [0, 1]"));
        assert!(bad(|c| c.total_timesteps = 100).contains("less than one batch"));
        assert!(bad(|c| c.num_minibatches = 10_000).contains("exceeds the batch size"));
        assert!(bad(|c| c.device = "tpu".into()).contains("unknown device `tpu`"));
        assert!(bad(|c| c.learning_rate = f64::NAN).contains("learning_rate"));
    }
}
