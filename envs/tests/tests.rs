//! hone-envs integration tests (one test binary; one module per area).

mod conformance;
mod limits;
#[cfg(feature = "mujoco")]
mod mujoco;
mod pool;
mod recorded;
mod snapshot;
