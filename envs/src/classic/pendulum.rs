//! Pendulum-v1, as gymnasium's `PendulumEnv` (`classic_control/pendulum.py`).

use std::f64::consts::PI;

use super::pow::{pow2, pow2_f32};
use crate::env::state_array;
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
const GRAVITY: f64 = 10.0;
const MASS: f64 = 1.0;
const LENGTH: f64 = 1.0;
/// gymnasium's `3 * g / (2 * l)`.
const GRAVITY_COEFFICIENT: f64 = 3.0 * GRAVITY / (2.0 * LENGTH);
/// gymnasium's `3.0 / (m * l**2)`, a Python float that numpy rounds to f32 against the
/// float32 torque (NEP 50).
const TORQUE_COEFFICIENT: f32 = (3.0 / (MASS * (LENGTH * LENGTH))) as f32;
/// `0.001 * u**2` with `u` float32: the Python float is rounded to f32.
const TORQUE_COST: f32 = 0.001_f64 as f32;

/// An inverted pendulum swung up by a torque in `[-2, 2]` (clipped); never terminates.
///
/// State `[theta, theta_dot]` in f64; the observation is `[cos theta, sin theta, theta_dot]`.
/// The cost `angle_normalize(theta)² + 0.1 theta_dot² + 0.001 u²` is paid as negative reward.
/// Reset draws theta from `uniform(-pi, pi)`, then theta_dot from `uniform(-1, 1)`.
#[derive(Clone, Debug, Default)]
pub struct Pendulum {
    state: [f64; 2],
    /// `sin(state[0])`, computed for the observation and reused by the next step's dynamics.
    sin_theta: f64,
}

impl Pendulum {
    /// The state `[theta, theta_dot]` (gymnasium's `env.unwrapped.state`).
    #[doc(hidden)]
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the state as `env.unwrapped.state = np.array(state)` (float64) does.
    #[doc(hidden)]
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
        self.sin_theta = state[0].sin();
    }

    #[inline]
    fn write_observation(&mut self, obs: &mut [f32]) {
        let [theta, theta_dot] = self.state;
        self.sin_theta = theta.sin();
        obs[..3].copy_from_slice(&[theta.cos() as f32, self.sin_theta as f32, theta_dot as f32]);
    }
}

/// gymnasium's `((x + np.pi) % (2 * np.pi)) - np.pi`, with numpy's float remainder (the sign of
/// the divisor, built on `fmod`).
#[inline]
fn angle_normalize(x: f64) -> f64 {
    const TURN: f64 = 2.0 * PI;
    // fmod takes the dividend's sign; numpy moves a negative remainder into [0, 2 pi).
    let remainder = (x + PI) % TURN;
    let remainder = if remainder < 0.0 {
        remainder + TURN
    } else {
        remainder
    };
    remainder - PI
}

impl Env for Pendulum {
    fn save_state(&self) -> Option<Vec<f64>> {
        Some(self.state.to_vec())
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        self.set_state(state_array(state)?);
        Ok(())
    }

    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, MAX_SPEED as f32];
        Space::Box {
            low: high.map(|h: f32| -h).to_vec(),
            high: high.to_vec(),
            shape: vec![3],
            dtype: crate::space::Dtype::Float32,
        }
    }

    fn action_space(&self) -> Space {
        Space::uniform_box(-MAX_TORQUE, MAX_TORQUE, &[1])
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        let theta = rng.uniform(-PI, PI);
        let theta_dot = rng.uniform(-1.0, 1.0);
        self.state = [theta, theta_dot];
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let torque = match action {
            Action::Continuous(values) => values.first().copied().unwrap_or(0.0),
            _ => 0.0,
        };
        // np.clip on the float32 action stays float32.
        let torque = torque.clamp(-MAX_TORQUE, MAX_TORQUE);
        let [theta, theta_dot] = self.state;
        let costs = pow2(angle_normalize(theta))
            + 0.1 * pow2(theta_dot)
            + f64::from(TORQUE_COST * pow2_f32(torque));
        let new_theta_dot = theta_dot
            + (GRAVITY_COEFFICIENT * self.sin_theta + f64::from(TORQUE_COEFFICIENT * torque)) * DT;
        let new_theta_dot = new_theta_dot.clamp(-MAX_SPEED, MAX_SPEED);
        let new_theta = theta + new_theta_dot * DT;
        self.state = [new_theta, new_theta_dot];
        self.write_observation(obs);
        StepOutcome {
            reward: -costs,
            terminated: false,
        }
    }
}
