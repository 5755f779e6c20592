//! Kernels over tch tensors, on any device (the same code runs on CPU and CUDA): masked
//! statistics, per-token log-probabilities, entropies and KL estimates, sampling filters, and
//! GAE for rollouts that live on the GPU; and the CPU few-row `x Wᵀ` of decoding.

pub mod advantage;
pub mod few_rows;
pub mod kl;
pub mod masked;
pub mod sampling;
pub mod token;

mod checks;
