//! hone-kernels: advantage, statistics and token-level kernels, each checked against a naive
//! float64 reference ([`reference`](mod@reference)).
//!
//! - [`slice`](mod@slice): pure Rust over `f32` slices — GAE and discounted returns of a
//!   `[T, N]` rollout, running mean/variance and reward scaling for normalisation.
//! - [`tensor`]: tch tensors on any device — masked statistics, chunked per-token log-probs and
//!   entropies, KL estimators, sampling filters, GAE for rollouts on the GPU.

pub mod error;
pub mod reference;
pub mod slice;
pub mod tensor;

pub use error::{Error, Result};
pub use slice::advantage::{
    Advantages, GaeParams, Rollout, Truncation, discounted_returns, discounted_returns_into, gae,
    gae_into,
};
pub use slice::running_stats::{RewardNormalizer, RunningMeanStd};
pub use tensor::adam::{Adam, adam_step};
pub use tensor::few_rows::{MAX_FEW_ROWS, linear_few_rows};
pub use tensor::kl::{KlEstimator, kl_per_token};
pub use tensor::masked::{masked_mean, masked_mean_dim, masked_var, masked_whiten};
pub use tensor::sampling::{SamplingFilter, sample, top_k_filter, top_p_filter};
pub use tensor::token::{token_entropy, token_logprobs, token_logprobs_from_hidden};
