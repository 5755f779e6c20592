//! hone-kernels: advantage, statistics and token-level kernels, each with a naive reference.
