//! The 3D walkers: Ant-v5 and Humanoid-v5 (gymnasium's `ant_v5.py`, `humanoid_v5.py`).
//!
//! Both measure their speed on body positions MuJoCo computed during the step (the torso's
//! `xpos`, the bodies' `xipos`), which lag `qpos` by one physics substep, so the position a step
//! starts from is the one the previous step (or reset) ended on: it is carried, and saved with
//! the state.

use super::env::{MujocoEnv, Task, TaskSpec, velocity};
use super::model::{Model, Simulation};
use super::numpy_ops::{norm, pairwise_sum_f64, sum_of_squares};
use super::planar::{add_normal_noise, add_uniform_noise, control_cost_f32, reset_uniform};
use crate::rng::Pcg64;

/// Ant-v5: a four-legged ant rewarded for walking forward (+x) while healthy.
///
/// Observation (105): `qpos[2..]` (13), `qvel` (14), then `cfrc_ext` of the 13 bodies after the
/// world body, clipped to ±1 (78). Reward: `x_velocity + healthy - 0.5 * sum(action²) - 5e-4 *
/// sum(clip(cfrc_ext, ±1)²)` (over every body), healthy = 1 while the state is finite and
/// 0.2 ≤ z ≤ 1; terminates when not healthy. The velocity is the torso's (`xpos`). Reset: `qpos0
/// + uniform(±0.1)`, `qvel = 0.1 * N(0, 1)`.
pub type Ant = MujocoEnv<AntTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct AntTask {
    /// gymnasium's `main_body`: body 1, the torso.
    torso: usize,
    /// The torso's x, y where the next step starts.
    xy: [f64; 2],
}

impl AntTask {
    fn torso_xy(&self, sim: &Simulation) -> [f64; 2] {
        let xpos = &sim.xpos()[3 * self.torso..];
        [xpos[0], xpos[1]]
    }
}

impl Task for AntTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Ant-v5",
        model_file: "ant.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/ant.xml")),
        frame_skip: 5,
        max_episode_steps: 1000,
        obs_len: 105,
        info_keys: &[
            "x_position",
            "y_position",
            "distance_from_origin",
            "x_velocity",
            "y_velocity",
            "reward_forward",
            "reward_ctrl",
            "reward_contact",
            "reward_survive",
        ],
    };
    const CARRIED_LEN: usize = 2;

    fn new(model: &Model) -> Result<Self, String> {
        if model.nbody() < 2 {
            return Err(format!("{}: no body 1 (the torso)", Self::SPEC.id));
        }
        Ok(Self {
            torso: 1,
            xy: [0.0; 2],
        })
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        let model = std::sync::Arc::clone(sim.model());
        add_uniform_noise(sim.qpos_mut(), Some(model.qpos0()), 0.1, rng);
        add_normal_noise(sim.qvel_mut(), 0.1, rng);
    }

    fn sync(&mut self, sim: &Simulation) {
        self.xy = self.torso_xy(sim);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        let frame_skip = Self::SPEC.frame_skip;
        let before = self.xy;
        sim.step(action, frame_skip);
        let after = self.torso_xy(sim);
        self.xy = after;
        let x_velocity = velocity(before[0], after[0], sim, frame_skip);
        let y_velocity = velocity(before[1], after[1], sim, frame_skip);

        let qpos = sim.qpos();
        let healthy = qpos.iter().chain(sim.qvel()).all(|v| v.is_finite())
            && 0.2 <= qpos[2]
            && qpos[2] <= 1.0;
        // forward_reward_weight is the int 1.
        let forward_reward = x_velocity;
        let healthy_reward = if healthy { 1.0 } else { 0.0 };
        let rewards = forward_reward + healthy_reward;
        let ctrl_cost = control_cost_f32(0.5, action);
        let contact_cost = 5e-4 * clipped_contact_sum_of_squares(sim.cfrc_ext());
        let costs = f64::from(ctrl_cost) + contact_cost;
        let reward = rewards - costs;
        info.copy_from_slice(&[
            qpos[0],
            qpos[1],
            norm(&qpos[..2]),
            x_velocity,
            y_velocity,
            forward_reward,
            f64::from(-ctrl_cost),
            -contact_cost,
            healthy_reward,
        ]);
        (reward, !healthy)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let qpos = &sim.qpos()[2..];
        let qvel = sim.qvel();
        let (head, contact) = obs.split_at_mut(qpos.len() + qvel.len());
        head[..qpos.len()].copy_from_slice(qpos);
        head[qpos.len()..].copy_from_slice(qvel);
        for (out, &force) in contact.iter_mut().zip(&sim.cfrc_ext()[6..]) {
            *out = force.clamp(-1.0, 1.0);
        }
    }

    fn carried(&self) -> [f64; 2] {
        self.xy
    }

    fn set_carried(&mut self, values: [f64; 2]) {
        self.xy = values;
    }
}

/// `np.sum(np.square(np.clip(cfrc_ext, -1, 1)))` over all `nbody x 6` values, pairwise as numpy.
fn clipped_contact_sum_of_squares(cfrc_ext: &[f64]) -> f64 {
    // Ant has 14 bodies: 84 values.
    let mut clipped = [0.0; 128];
    let n = cfrc_ext.len().min(clipped.len());
    for (out, &force) in clipped.iter_mut().zip(&cfrc_ext[..n]) {
        *out = force.clamp(-1.0, 1.0);
    }
    sum_of_squares(&clipped[..n])
}

/// Humanoid-v5: a 3D humanoid rewarded for walking forward while standing.
///
/// Observation (348): `qpos[2..]` (22), `qvel` (23), then for the 13 bodies after the world body
/// `cinert` (130) and `cvel` (78), then `qfrc_actuator[6..]` (17) and `cfrc_ext` (78). Reward:
/// `1.25 * x_velocity + 5 * healthy - 0.1 * sum(ctrl²) - min(5e-7 * sum(cfrc_ext²), 10)`, with the
/// velocity of the mass-weighted centre of the bodies' centres of mass (`xipos`), healthy while
/// 1 < z < 2; terminates when not healthy. Reset: `qpos0 + uniform(±0.01)`, `qvel =
/// uniform(±0.01)`. gymnasium's info also holds the tendon lengths and velocities, which are
/// arrays; `info` here has the numbers only.
pub type Humanoid = MujocoEnv<HumanoidTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct HumanoidTask {
    /// The mass centre's x, y where the next step starts.
    xy: [f64; 2],
}

/// gymnasium's `mass_center`: `einsum("b,bj->j", body_mass, xipos) / body_mass.sum()`, x and y.
fn mass_center(sim: &Simulation) -> [f64; 2] {
    let mass = sim.model().body_mass();
    let xipos = sim.xipos();
    let (mut x, mut y) = (0.0, 0.0);
    for (body, &m) in mass.iter().enumerate() {
        x += m * xipos[3 * body];
        y += m * xipos[3 * body + 1];
    }
    let total = pairwise_sum_f64(mass, false);
    [x / total, y / total]
}

impl Task for HumanoidTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Humanoid-v5",
        model_file: "humanoid.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/humanoid.xml")),
        frame_skip: 5,
        max_episode_steps: 1000,
        obs_len: 348,
        info_keys: &[
            "x_position",
            "y_position",
            "distance_from_origin",
            "x_velocity",
            "y_velocity",
            "reward_survive",
            "reward_forward",
            "reward_ctrl",
            "reward_contact",
        ],
    };
    const CARRIED_LEN: usize = 2;

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self { xy: [0.0; 2] })
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        reset_uniform(sim, 1e-2, rng);
    }

    fn sync(&mut self, sim: &Simulation) {
        self.xy = mass_center(sim);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        let frame_skip = Self::SPEC.frame_skip;
        let before = self.xy;
        sim.step(action, frame_skip);
        let after = mass_center(sim);
        self.xy = after;
        let x_velocity = velocity(before[0], after[0], sim, frame_skip);
        let y_velocity = velocity(before[1], after[1], sim, frame_skip);

        let qpos = sim.qpos();
        let healthy = 1.0 < qpos[2] && qpos[2] < 2.0;
        let forward_reward = 1.25 * x_velocity;
        let healthy_reward = if healthy { 5.0 } else { 0.0 };
        let rewards = forward_reward + healthy_reward;
        // The control cost of Humanoid is on data.ctrl (float64), not on the action.
        let ctrl_cost = 0.1 * sum_of_squares(sim.ctrl());
        let contact_cost = 5e-7 * sum_of_squares(sim.cfrc_ext());
        // np.clip(cost, -inf, 10), which keeps a NaN (f64::min would not).
        let contact_cost = if contact_cost > 10.0 {
            10.0
        } else {
            contact_cost
        };
        let costs = ctrl_cost + contact_cost;
        let reward = rewards - costs;
        info.copy_from_slice(&[
            qpos[0],
            qpos[1],
            norm(&qpos[..2]),
            x_velocity,
            y_velocity,
            healthy_reward,
            forward_reward,
            -ctrl_cost,
            -contact_cost,
        ]);
        (reward, !healthy)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let parts: [&[f64]; 6] = [
            &sim.qpos()[2..],
            sim.qvel(),
            &sim.cinert()[10..],
            &sim.cvel()[6..],
            &sim.qfrc_actuator()[6..],
            &sim.cfrc_ext()[6..],
        ];
        let mut at = 0;
        for part in parts {
            obs[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }

    fn carried(&self) -> [f64; 2] {
        self.xy
    }

    fn set_carried(&mut self, values: [f64; 2]) {
        self.xy = values;
    }
}
