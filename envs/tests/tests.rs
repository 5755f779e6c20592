//! hone-envs integration tests (one test binary; one module per area).

#[cfg(feature = "atari")]
mod atari;
#[cfg(feature = "atari")]
mod atari_envpool;
#[cfg(feature = "atari")]
mod atari_pool;
mod conformance;
mod image;
mod limits;
#[cfg(feature = "mujoco")]
mod mujoco;
mod pool;
mod recorded;
mod snapshot;
