//! Acrobot-v1, as gymnasium's `AcrobotEnv` (`classic_control/acrobot.py`).

use std::f64::consts::PI;

use super::pow::pow2;
use crate::env::state_array;
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

/// Integration time step, seconds.
const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const GRAVITY: f64 = 9.8;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
/// gymnasium's `AVAIL_TORQUE`, indexed by the action.
const TORQUES: [f64; 3] = [-1.0, 0.0, 1.0];
const RESET_BOUND: f64 = 0.1;

/// Two links hanging from a fixed joint, the second joint actuated with torque -1, 0 or +1;
/// the goal is to swing the tip above the height of one link over the fixed joint.
///
/// State `[theta1, theta2, dtheta1, dtheta2]` in f64, integrated over one 0.2 s step with
/// gymnasium's fixed-step `rk4` on the "book" dynamics (gymnasium's default `book_or_nips`),
/// angles wrapped to `[-pi, pi]`, velocities bounded to `4 pi` and `9 pi`. Reward -1 per step,
/// 0 on the terminating step. Reset draws each state element from `uniform(-0.1, 0.1)` and
/// rounds it to f32, as gymnasium's `.astype(np.float32)` does.
#[derive(Clone, Debug, Default)]
pub struct Acrobot {
    state: [f64; 4],
}

impl Acrobot {
    /// The state `[theta1, theta2, dtheta1, dtheta2]` (gymnasium's `env.unwrapped.state`).
    #[doc(hidden)]
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the state as `env.unwrapped.state = np.array(state)` (float64) does.
    #[doc(hidden)]
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
    }

    /// gymnasium's `_get_ob`: cos and sin of both angles, then both velocities. Returns
    /// `cos(theta1)`, which the termination test needs too.
    #[inline]
    fn write_observation(&self, obs: &mut [f32]) -> f64 {
        let [theta1, theta2, dtheta1, dtheta2] = self.state;
        let cos_theta1 = theta1.cos();
        let values = [
            cos_theta1,
            theta1.sin(),
            theta2.cos(),
            theta2.sin(),
            dtheta1,
            dtheta2,
        ];
        obs[..6].copy_from_slice(&values.map(|value| value as f32));
        cos_theta1
    }
}

/// gymnasium's `_dsdt` ("book" variant): the time derivative of the state under `torque`.
/// Every expression keeps gymnasium's operations and their order (`x**2` is C's `pow`), so the
/// chaotic dynamics round exactly as they do there.
#[inline(always)]
fn derivatives(state: &[f64; 4], torque: f64) -> [f64; 4] {
    const M1: f64 = LINK_MASS_1;
    const M2: f64 = LINK_MASS_2;
    const L1: f64 = LINK_LENGTH_1;
    const LC1: f64 = LINK_COM_POS_1;
    const LC2: f64 = LINK_COM_POS_2;
    const I1: f64 = LINK_MOI;
    const I2: f64 = LINK_MOI;
    let [theta1, theta2, dtheta1, dtheta2] = *state;
    let cos_theta2 = theta2.cos();
    let sin_theta2 = theta2.sin();
    let d1 = M1 * (LC1 * LC1) + M2 * (L1 * L1 + LC2 * LC2 + 2.0 * L1 * LC2 * cos_theta2) + I1 + I2;
    let d2 = M2 * (LC2 * LC2 + L1 * LC2 * cos_theta2) + I2;
    let phi2 = M2 * LC2 * GRAVITY * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -M2 * L1 * LC2 * pow2(dtheta2) * sin_theta2
        - 2.0 * M2 * L1 * LC2 * dtheta2 * dtheta1 * sin_theta2
        + (M1 * LC1 + M2 * L1) * GRAVITY * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (torque + d2 / d1 * phi1 - M2 * L1 * LC2 * pow2(dtheta1) * sin_theta2 - phi2)
        / (M2 * (LC2 * LC2) + I2 - pow2(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

/// gymnasium's `rk4(_dsdt, s_augmented, [0, dt])`: one classical Runge-Kutta step, elementwise
/// as numpy evaluates `y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)`. The torque, the augmented
/// fifth element, has derivative 0 and stays as it is.
#[inline(always)]
fn runge_kutta_step(y0: &[f64; 4], torque: f64) -> [f64; 4] {
    const HALF_DT: f64 = DT / 2.0;
    const SIXTH_DT: f64 = DT / 6.0;
    let k1 = derivatives(y0, torque);
    let k2 = derivatives(&std::array::from_fn(|i| y0[i] + HALF_DT * k1[i]), torque);
    let k3 = derivatives(&std::array::from_fn(|i| y0[i] + HALF_DT * k2[i]), torque);
    let k4 = derivatives(&std::array::from_fn(|i| y0[i] + DT * k3[i]), torque);
    std::array::from_fn(|i| y0[i] + SIXTH_DT * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// gymnasium's `wrap(x, -pi, pi)`.
#[inline]
fn wrap_angle(mut x: f64) -> f64 {
    const TURN: f64 = PI - -PI;
    while x > PI {
        x -= TURN;
    }
    while x < -PI {
        x += TURN;
    }
    x
}

/// gymnasium's `bound(x, -limit, limit)`: Python's `min(max(x, -limit), limit)`.
#[inline]
fn bound(x: f64, limit: f64) -> f64 {
    let at_least_low = if -limit > x { -limit } else { x };
    if limit < at_least_low {
        limit
    } else {
        at_least_low
    }
}

impl Env for Acrobot {
    fn save_state(&self) -> Option<Vec<f64>> {
        Some(self.state.to_vec())
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        self.state = state_array(state)?;
        Ok(())
    }

    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Space::Box {
            low: high.map(|h: f32| -h).to_vec(),
            high: high.to_vec(),
            shape: vec![6],
            dtype: crate::space::Dtype::Float32,
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.state =
            std::array::from_fn(|_| f64::from(rng.uniform(-RESET_BOUND, RESET_BOUND) as f32));
        // gymnasium computes this first observation's cos/sin in float32 (the state is a
        // float32 array until the first step); numpy's float32 cos/sin are within one float32
        // ulp of the correctly rounded values computed here.
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let torque = match action {
            Action::Discrete(index) => TORQUES[index.clamp(0, 2) as usize],
            _ => 0.0,
        };
        let next = runge_kutta_step(&self.state, torque);
        self.state = [
            wrap_angle(next[0]),
            wrap_angle(next[1]),
            bound(next[2], MAX_VEL_1),
            bound(next[3], MAX_VEL_2),
        ];
        let cos_theta1 = self.write_observation(obs);
        let [theta1, theta2, ..] = self.state;
        let terminated = -cos_theta1 - (theta2 + theta1).cos() > 1.0;
        StepOutcome {
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
        }
    }
}
