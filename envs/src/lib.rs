//! hone-envs: an envpool-style engine — worker threads, contiguous batch buffers — and gymnasium-exact environments.

pub mod classic;
pub mod env;
pub mod rng;
pub mod space;

pub use classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
pub use env::{Action, Env, StepOutcome};
pub use space::Space;
