//! hone-envs integration tests (one test binary; one module per area).

mod conformance;
mod pool;
mod snapshot;
