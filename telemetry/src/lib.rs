//! hone-telemetry: the one schema of training telemetry, written by the trainers as
//! `metrics.jsonl` (one JSON event per line) and read by the dashboard. No libtorch types here.

mod error;
mod jsonl;

pub use error::{Error, Result};
pub use jsonl::{MetricsReader, MetricsWriter, read_events};

use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run started or resumed.
    Start(RunInfo),
    /// One PPO update on a control task.
    Update(UpdateEvent),
    /// A checkpoint was written.
    Checkpoint { global_step: u64, path: String },
    /// The run stopped; `reason` says why (done, interrupted, error message).
    Finish { global_step: u64, reason: String },
    /// One step of an RLHF run (PPO-RLHF, ReMax, sharpening).
    Rlhf(RlhfEvent),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run: String,
    pub algorithm: String,
    /// The env id or the model.
    pub target: String,
    pub device: String,
    pub total_steps: u64,
    /// The step the run starts (or resumes) from.
    pub global_step: u64,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub pid: u32,
}

/// What a control-task update reports. Rates are over this update; the dashboard averages them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateEvent {
    pub update: u64,
    pub global_step: u64,
    /// Seconds since the run started, summed over its sessions (resumes continue the clock).
    pub elapsed_s: f64,
    /// Agent steps per second of wall time over this update.
    pub sps: f64,
    /// Environment frames per second of time spent stepping environments.
    pub env_fps: f64,
    pub episodes: EpisodeStats,
    pub losses: LossStats,
    pub timing: PhaseTiming,
    /// Resident memory of the training process, when known.
    pub rss_bytes: Option<u64>,
}

/// Episodes that finished during the update; `None` where no episode finished.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    pub count: u64,
    pub return_mean: Option<f64>,
    pub return_min: Option<f64>,
    pub return_max: Option<f64>,
    pub length_mean: Option<f64>,
}

/// Means over the update's minibatches, as CleanRL logs them (the last epoch's for the losses).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub old_approx_kl: f64,
    pub clipfrac: f64,
    pub explained_variance: f64,
    pub learning_rate: f64,
    pub grad_norm: f64,
}

/// Seconds spent per phase during the update.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub env_step_s: f64,
    pub inference_s: f64,
    pub update_s: f64,
}

/// What an RLHF step reports. For these runs `RunInfo::total_steps` and `Checkpoint`/`Finish`
/// `global_step` count RLHF steps. Optional fields are what not every algorithm has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RlhfEvent {
    /// RLHF steps done (one batch of prompts generated, scored and learned from).
    pub step: u64,
    /// Seconds since the run started, summed over its sessions.
    pub elapsed_s: f64,
    /// Mean reward of the sampled responses.
    pub reward_mean: f64,
    #[serde(default)]
    pub reward_std: Option<f64>,
    /// Mean reward of the baseline responses (ReMax's greedy ones), where the algorithm has them.
    #[serde(default)]
    pub baseline_reward_mean: Option<f64>,
    /// Mean per-sequence KL of the policy to the reference model over the sampled responses.
    pub kl_to_reference: f64,
    /// Mean length of the sampled responses, in tokens.
    pub response_length_mean: f64,
    /// Generated tokens per second of wall time over this step.
    pub tokens_per_s: f64,
    pub timing: RlhfTiming,
    #[serde(default)]
    pub policy_loss: Option<f64>,
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// Resident memory of the training process, when known.
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    /// GPU memory held by the training process, when on CUDA and known.
    #[serde(default)]
    pub gpu_memory_bytes: Option<u64>,
    /// The run's alert threshold on `kl_to_reference` (`alert_kl` of the run file), when set:
    /// carried by every step so a dashboard attached at any time knows it.
    #[serde(default)]
    pub alert_kl: Option<f64>,
}

/// Seconds spent per phase during an RLHF step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RlhfTiming {
    pub generate_s: f64,
    /// Reference-model log-probs.
    pub reference_s: f64,
    pub reward_s: f64,
    pub update_s: f64,
}

/// What a dashboard (or a signal handler) asks of a running trainer, read between updates.
#[derive(Debug, Default)]
pub struct RunControl {
    stop: std::sync::atomic::AtomicBool,
    pause: std::sync::atomic::AtomicBool,
    save: std::sync::atomic::AtomicBool,
}

impl RunControl {
    /// Stop after the current update, writing a checkpoint. Returns whether a stop was already
    /// asked for.
    pub fn request_stop(&self) -> bool {
        self.stop.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pauses (true) or resumes (false) training between updates.
    pub fn set_paused(&self, paused: bool) {
        self.pause
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_paused(&self) -> bool {
        self.pause.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Write a checkpoint after the current update.
    pub fn request_checkpoint(&self) {
        self.save.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Takes a pending checkpoint request.
    pub fn take_checkpoint_request(&self) -> bool {
        self.save.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}
