//! hone-trainer: the learner runtime (run directories, checkpoints, telemetry) and PPO.

pub mod config;
mod error;
pub mod fuzz;
pub mod optim;
pub mod params;
pub mod policy;
pub mod ppo;
pub mod run_dir;

pub use error::{Error, Result};
