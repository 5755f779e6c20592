//! hone-kernels integration tests (one test binary; one module per kernel family). Every kernel
//! is checked against the naive float64 code in `hone_kernels::reference` or written here.

mod adam;
mod few_rows;
mod kl;
mod masked;
mod running_stats;
mod sampling;
mod slice_advantage;
mod support;
mod tensor_advantage;
mod token;
