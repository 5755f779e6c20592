//! gymnasium's classic-control environments, step for step.
//!
//! Each env reproduces gymnasium 1.x's Python: the same state precision (f64, except where
//! gymnasium itself keeps float32, see [`MountainCarContinuous`]), the same operations in the
//! same order (so every rounding agrees), the same reward, termination, observation bounds and
//! action spaces, and the clipping of continuous actions that gymnasium does. Observations are
//! written as f32, as gymnasium's float32 observation arrays. Time limits are not the env's: the
//! pool truncates at `max_episode_steps` (CartPole-v1 500, Acrobot-v1 500, MountainCar-v0 200,
//! MountainCarContinuous-v0 999, Pendulum-v1 200).
//!
//! # How reset states are drawn
//!
//! `reset` draws from the [`Pcg64`](crate::rng::Pcg64) it is given exactly as gymnasium's
//! `reset` draws from `self.np_random` (numpy's `Generator.uniform`, `low + (high - low) * u`
//! with `u` the next 53-bit double), same calls, same order:
//!
//! | env | initial state |
//! |-----|---------------|
//! | [`CartPole`] | `[x, x_dot, theta, theta_dot]`, each `uniform(-0.05, 0.05)` |
//! | [`Acrobot`] | `[theta1, theta2, dtheta1, dtheta2]`, each `uniform(-0.1, 0.1)` rounded to f32 |
//! | [`MountainCar`] | position `uniform(-0.6, -0.4)`, velocity 0 |
//! | [`MountainCarContinuous`] | position `uniform(-0.6, -0.4)`, velocity 0 |
//! | [`Pendulum`] | theta `uniform(-pi, pi)`, then theta_dot `uniform(-1, 1)` |
//!
//! With a generator from `Pcg64::from_seed(seed)` the first reset lands on the state of
//! gymnasium's `env.reset(seed=seed)`, and later resets from the same generator on those of the
//! unseeded `env.reset()` calls that follow it.
//!
//! # Floating point
//!
//! Rust's `sin`/`cos` and the `pow` used for Python's `x ** 2` (see `pow.rs`) are the C
//! library's, as numpy's and CPython's are on x86-64 Linux (numpy 2.x's float64 sin/cos without
//! AVX-512 agree with glibc's bit for bit). The reference trajectories were recorded with glibc;
//! a C library whose `sin`, `cos` or `pow` round differently would make the chaotic Acrobot drift
//! from them. The one known difference left: Acrobot's first observation after a reset,
//! which gymnasium computes with numpy's float32 `cos`/`sin` (within one f32 ulp of the correctly
//! rounded values written here).

mod acrobot;
mod cartpole;
mod mountain_car;
mod mountain_car_continuous;
mod pendulum;
mod pow;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::MountainCar;
pub use mountain_car_continuous::MountainCarContinuous;
pub use pendulum::Pendulum;
