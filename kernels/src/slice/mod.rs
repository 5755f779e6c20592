//! Pure-Rust kernels over `f32` slices: advantages and returns of a rollout, running
//! statistics for observation and reward normalisation, and the few-row products of decoding.

pub mod advantage;
pub mod few_rows;
pub mod running_stats;
