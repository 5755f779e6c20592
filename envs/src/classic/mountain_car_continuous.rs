//! MountainCarContinuous-v0, as gymnasium's `Continuous_MountainCarEnv`
//! (`classic_control/continuous_mountain_car.py`).

use super::pow::pow2;
use crate::env::state_array;
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

const MIN_ACTION: f32 = -1.0;
const MAX_ACTION: f32 = 1.0;
const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.45;
const POWER: f64 = 0.0015;
const GRAVITY: f64 = 0.0025;
const RESET_LOW: f64 = -0.6;
const RESET_HIGH: f64 = -0.4;

/// The constants as numpy casts a Python float meeting a float32 (NEP 50): rounded to f32.
const MIN_POSITION_F32: f32 = MIN_POSITION as f32;
const MAX_POSITION_F32: f32 = MAX_POSITION as f32;
const MAX_SPEED_F32: f32 = MAX_SPEED as f32;
const GOAL_POSITION_F32: f32 = GOAL_POSITION as f32;
const POWER_F32: f32 = POWER as f32;

/// MountainCar with a continuous force in `[-1, 1]`; reaching the flag pays 100, and every
/// step costs `0.1 * action²` (of the unclipped action).
///
/// gymnasium stores the state as a float64 array after a reset and as a float32 array after
/// every step, and mixes float32 actions with Python floats, so under NumPy 2's promotion rules
/// (NEP 50) some of its arithmetic runs in float32; this port performs each operation at the
/// precision numpy does. Terminated when position >= 0.45 with velocity >= 0. Reset draws the
/// position from `uniform(-0.6, -0.4)`; velocity 0.
#[derive(Clone, Debug, Default)]
pub struct MountainCarContinuous {
    position: f64,
    velocity: f64,
    /// The state is a float32 array (after a step) rather than float64 (after a reset); the
    /// values are then exactly representable in f32.
    float32_state: bool,
}

/// gymnasium's `min(max(action[0], -1.0), 1.0)` returns a Python float (not the float32
/// action) exactly when it clips. Written as comparisons, not a range test, so that a NaN
/// action stays unclipped, as in Python.
#[allow(clippy::manual_range_contains)]
#[inline]
fn action_is_clipped(action: f32) -> bool {
    action < MIN_ACTION || action > MAX_ACTION
}

impl MountainCarContinuous {
    /// The state `[position, velocity]` (gymnasium's `env.unwrapped.state`).
    #[doc(hidden)]
    pub fn state(&self) -> [f64; 2] {
        [self.position, self.velocity]
    }

    /// Sets the state as `env.unwrapped.state = np.array(state)` (float64) does.
    #[doc(hidden)]
    pub fn set_state(&mut self, state: [f64; 2]) {
        [self.position, self.velocity] = state;
        self.float32_state = false;
    }

    #[inline]
    fn write_observation(&self, obs: &mut [f32]) {
        obs[..2].copy_from_slice(&[self.position as f32, self.velocity as f32]);
    }

    /// One step from a float64 state: numpy float64 scalars, so float64 arithmetic except for
    /// the velocity change, which is float32 when the force is the float32 action itself.
    fn step_from_float64(&self, action: f32) -> (f64, f64) {
        let gravity_pull = GRAVITY * (3.0 * self.position).cos();
        let velocity_change = if action_is_clipped(action) {
            let force = if action < MIN_ACTION { -1.0 } else { 1.0 };
            force * POWER - gravity_pull
        } else {
            f64::from(action * POWER_F32 - gravity_pull as f32)
        };
        let mut velocity = (self.velocity + velocity_change).clamp(-MAX_SPEED, MAX_SPEED);
        let position = (self.position + velocity).clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        (position, velocity)
    }

    /// One step from a float32 state: numpy float32 scalars, so float32 arithmetic and
    /// comparisons against the Python constants rounded to f32; only the cosine is float64.
    fn step_from_float32(&self, action: f32) -> (f32, f32) {
        let position = self.position as f32;
        let gravity_pull = GRAVITY * f64::from(3.0 * position).cos();
        let velocity_change = if action_is_clipped(action) {
            let force = if action < MIN_ACTION { -1.0 } else { 1.0 };
            (force * POWER - gravity_pull) as f32
        } else {
            action * POWER_F32 - gravity_pull as f32
        };
        let mut velocity =
            (self.velocity as f32 + velocity_change).clamp(-MAX_SPEED_F32, MAX_SPEED_F32);
        let position = (position + velocity).clamp(MIN_POSITION_F32, MAX_POSITION_F32);
        if position == MIN_POSITION_F32 && velocity < 0.0 {
            velocity = 0.0;
        }
        (position, velocity)
    }
}

impl Env for MountainCarContinuous {
    fn save_state(&self) -> Option<Vec<f64>> {
        Some(vec![
            self.position,
            self.velocity,
            f64::from(u8::from(self.float32_state)),
        ])
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        let [position, velocity, float32_state] = state_array(state)?;
        (self.position, self.velocity, self.float32_state) =
            (position, velocity, float32_state != 0.0);
        Ok(())
    }

    fn observation_space(&self) -> Space {
        Space::Box {
            low: vec![MIN_POSITION as f32, -MAX_SPEED as f32],
            high: vec![MAX_POSITION as f32, MAX_SPEED as f32],
            shape: vec![2],
            dtype: crate::space::Dtype::Float32,
        }
    }

    fn action_space(&self) -> Space {
        Space::uniform_box(MIN_ACTION, MAX_ACTION, &[1])
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.position = rng.uniform(RESET_LOW, RESET_HIGH);
        self.velocity = 0.0;
        self.float32_state = false;
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let action = match action {
            Action::Continuous(values) => values.first().copied().unwrap_or(0.0),
            _ => 0.0,
        };
        let terminated = if self.float32_state {
            let (position, velocity) = self.step_from_float32(action);
            self.position = f64::from(position);
            self.velocity = f64::from(velocity);
            position >= GOAL_POSITION_F32 && velocity >= 0.0
        } else {
            let (position, velocity) = self.step_from_float64(action);
            self.position = f64::from(position as f32);
            self.velocity = f64::from(velocity as f32);
            position >= GOAL_POSITION && velocity >= 0.0
        };
        self.float32_state = true;
        // gymnasium: `reward = 100.0 if terminated else 0; reward -= math.pow(action[0], 2) * 0.1`.
        let bonus = if terminated { 100.0 } else { 0.0 };
        let reward = bonus - pow2(f64::from(action)) * 0.1;
        self.write_observation(obs);
        StepOutcome { reward, terminated }
    }
}
