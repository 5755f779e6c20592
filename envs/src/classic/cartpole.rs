//! CartPole-v1, as gymnasium's `CartPoleEnv` (`classic_control/cartpole.py`).

use crate::env::state_array;
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
/// Half the pole's length.
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
/// gymnasium's `12 * 2 * math.pi / 360`, evaluated in the same order.
const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
const RESET_BOUND: f64 = 0.05;

/// A pole balanced on a cart; actions push the cart left (0) or right (1) with a fixed force.
///
/// State `[x, x_dot, theta, theta_dot]` in f64, explicit Euler integration, reward 1 per step
/// (including the terminating one), terminated when `|x| > 2.4` or `|theta| > 12°`. Reset draws
/// each state element from `uniform(-0.05, 0.05)`, in order.
#[derive(Clone, Debug, Default)]
pub struct CartPole {
    state: [f64; 4],
    /// gymnasium's `steps_beyond_terminated is not None`: stepping on after termination pays 0.
    terminated_before: bool,
}

impl CartPole {
    /// The f64 state `[x, x_dot, theta, theta_dot]` (gymnasium's `env.unwrapped.state`).
    #[doc(hidden)]
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the state as `env.unwrapped.state = ...` does, for replaying recorded episodes.
    #[doc(hidden)]
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.terminated_before = false;
    }

    #[inline]
    fn write_observation(&self, obs: &mut [f32]) {
        obs[..4].copy_from_slice(&self.state.map(|value| value as f32));
    }
}

impl Env for CartPole {
    fn save_state(&self) -> Option<Vec<f64>> {
        Some(vec![
            self.state[0],
            self.state[1],
            self.state[2],
            self.state[3],
            f64::from(u8::from(self.terminated_before)),
        ])
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        let [x, x_dot, theta, theta_dot, terminated_before] = state_array(state)?;
        self.state = [x, x_dot, theta, theta_dot];
        self.terminated_before = terminated_before != 0.0;
        Ok(())
    }

    fn observation_space(&self) -> Space {
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD_RADIANS * 2.0) as f32,
            f32::INFINITY,
        ];
        Space::Box {
            low: high.map(|h| -h).to_vec(),
            high: high.to_vec(),
            shape: vec![4],
            dtype: crate::space::Dtype::Float32,
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 2 }
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.state = std::array::from_fn(|_| rng.uniform(-RESET_BOUND, RESET_BOUND));
        self.terminated_before = false;
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let push_right = matches!(action, Action::Discrete(1));
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if push_right { FORCE_MAG } else { -FORCE_MAG };
        let cos_theta = theta.cos();
        let sin_theta = theta.sin();
        // Same operations in the same order as gymnasium, so every rounding matches.
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin_theta) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin_theta - cos_theta * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * (cos_theta * cos_theta) / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_theta / TOTAL_MASS;

        let x = x + TAU * x_dot;
        let x_dot = x_dot + TAU * x_acc;
        let theta = theta + TAU * theta_dot;
        let theta_dot = theta_dot + TAU * theta_acc;
        self.state = [x, x_dot, theta, theta_dot];

        // Comparisons rather than range tests: a NaN state does not terminate, as in Python.
        #[allow(clippy::manual_range_contains)]
        let terminated = x < -X_THRESHOLD
            || x > X_THRESHOLD
            || theta < -THETA_THRESHOLD_RADIANS
            || theta > THETA_THRESHOLD_RADIANS;
        let reward = if !terminated {
            1.0
        } else if !self.terminated_before {
            self.terminated_before = true;
            1.0
        } else {
            0.0
        };
        self.write_observation(obs);
        StepOutcome { reward, terminated }
    }
}
