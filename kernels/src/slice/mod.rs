//! Pure-Rust kernels over `f32` slices: advantages and returns of a rollout, and running
//! statistics for observation and reward normalisation.

pub mod advantage;
pub mod running_stats;
