//! hone-trainer: the learner runtime (run directories, checkpoints, telemetry) and PPO.
