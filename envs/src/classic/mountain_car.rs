//! MountainCar-v0, as gymnasium's `MountainCarEnv` (`classic_control/mountain_car.py`).

use crate::env::state_array;
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.5;
const GOAL_VELOCITY: f64 = 0.0;
const FORCE: f64 = 0.001;
const GRAVITY: f64 = 0.0025;
const RESET_LOW: f64 = -0.6;
const RESET_HIGH: f64 = -0.4;

/// A car in a valley that must rock back and forth to reach the flag on the right hill;
/// actions accelerate left (0), not at all (1) or right (2).
///
/// State `[position, velocity]` in f64. Reward -1 per step; terminated when position >= 0.5
/// with velocity >= 0. Reset draws the position from `uniform(-0.6, -0.4)`; velocity 0.
#[derive(Clone, Debug, Default)]
pub struct MountainCar {
    position: f64,
    velocity: f64,
}

impl MountainCar {
    /// The state `[position, velocity]` (gymnasium's `env.unwrapped.state`).
    #[doc(hidden)]
    pub fn state(&self) -> [f64; 2] {
        [self.position, self.velocity]
    }

    /// Sets the state as `env.unwrapped.state = np.array(state)` (float64) does.
    #[doc(hidden)]
    pub fn set_state(&mut self, state: [f64; 2]) {
        [self.position, self.velocity] = state;
    }

    #[inline]
    fn write_observation(&self, obs: &mut [f32]) {
        obs[..2].copy_from_slice(&[self.position as f32, self.velocity as f32]);
    }
}

impl Env for MountainCar {
    fn save_state(&self) -> Option<Vec<f64>> {
        Some(vec![self.position, self.velocity])
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        [self.position, self.velocity] = state_array(state)?;
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
        Space::Discrete { n: 3 }
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.position = rng.uniform(RESET_LOW, RESET_HIGH);
        self.velocity = 0.0;
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let direction = match action {
            Action::Discrete(index) => (index.clamp(0, 2) - 1) as f64,
            _ => 0.0,
        };
        // gymnasium: `velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)`.
        let mut velocity =
            self.velocity + (direction * FORCE + (3.0 * self.position).cos() * -GRAVITY);
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        let position = (self.position + velocity).clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        self.position = position;
        self.velocity = velocity;
        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        self.write_observation(obs);
        StepOutcome {
            reward: -1.0,
            terminated,
        }
    }
}
