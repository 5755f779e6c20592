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
