//! hone-envs: an envpool-style engine — worker threads, contiguous batch buffers — and gymnasium-exact environments.

#[cfg(feature = "atari")]
pub mod atari;
pub mod batch;
pub mod bench;
pub mod classic;
pub mod env;
pub mod error;
pub mod image;
pub mod memory;
#[cfg(feature = "mujoco")]
pub mod mujoco;
pub mod pool;
pub mod registry;
pub mod rng;
pub mod space;

pub use batch::{Actions, Batch, Episodes};
pub use classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
pub use env::{Action, Env, Obs, StepInfo, StepOutcome};
pub use error::{Error, Result};
pub use pool::{AutoReset, EnvOption, EnvPool, EnvSnapshot, PoolConfig, PoolSnapshot};
pub use registry::{Registry, make, register};
pub use space::{Dtype, Space};
