//! The planar runners and the swimmer: HalfCheetah-v5, Hopper-v5, Walker2d-v5, Swimmer-v5
//! (gymnasium's `half_cheetah_v5.py`, `hopper_v5.py`, `walker2d_v5.py`, `swimmer_v5.py`).
//!
//! Each rewards forward speed measured on `qpos[0]` (the root's x) over one env step, pays a
//! control cost on the action, and observes `qpos` without the root's position and `qvel`.

use super::env::{MujocoEnv, Task, TaskSpec, velocity};
use super::model::{Model, Simulation};
use super::normal::standard_normal;
use super::numpy_ops::{norm, sum_of_squares_f32};
use crate::rng::Pcg64;

/// `init + uniform(-scale, scale)` for every value, in order (numpy's `uniform(size=n)`); `init`
/// None is gymnasium's all-zero `init_qvel`.
pub(crate) fn add_uniform_noise(
    values: &mut [f64],
    init: Option<&[f64]>,
    scale: f64,
    rng: &mut Pcg64,
) {
    for (i, value) in values.iter_mut().enumerate() {
        let init = init.map_or(0.0, |init| init[i]);
        *value = init + rng.uniform(-scale, scale);
    }
}

/// `0 + scale * standard_normal(n)`: gymnasium's velocity noise, init_qvel being zero.
pub(crate) fn add_normal_noise(values: &mut [f64], scale: f64, rng: &mut Pcg64) {
    for value in values.iter_mut() {
        *value = 0.0 + scale * standard_normal(rng);
    }
}

/// `qpos = init_qpos + uniform(±scale)`, then `qvel = init_qvel + uniform(±scale)`.
pub(crate) fn reset_uniform(sim: &mut Simulation, scale: f64, rng: &mut Pcg64) {
    let model = std::sync::Arc::clone(sim.model());
    add_uniform_noise(sim.qpos_mut(), Some(model.qpos0()), scale, rng);
    add_uniform_noise(sim.qvel_mut(), None, scale, rng);
}

/// `ctrl_cost_weight * np.sum(np.square(action))` with a float32 action: numpy keeps the product
/// in float32 (the Python float weight is rounded to float32 first).
#[inline]
pub(crate) fn control_cost_f32(weight: f64, action: &[f32]) -> f32 {
    weight as f32 * sum_of_squares_f32(action)
}

/// HalfCheetah-v5: a planar cheetah rewarded for running forward; never terminates.
///
/// Observation (17): `qpos[1..]` (rootz, rooty and the six joint angles), `qvel` (9). Reward:
/// `x_velocity - 0.1 * sum(action²)`. Reset: `qpos0 + uniform(±0.1)`, `qvel = 0.1 * N(0, 1)`.
pub type HalfCheetah = MujocoEnv<HalfCheetahTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct HalfCheetahTask;

impl Task for HalfCheetahTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "HalfCheetah-v5",
        model_file: "half_cheetah.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/half_cheetah.xml")),
        frame_skip: 5,
        max_episode_steps: 1000,
        obs_len: 17,
        info_keys: &["x_position", "x_velocity", "reward_forward", "reward_ctrl"],
    };

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        let model = std::sync::Arc::clone(sim.model());
        add_uniform_noise(sim.qpos_mut(), Some(model.qpos0()), 0.1, rng);
        add_normal_noise(sim.qvel_mut(), 0.1, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        let x_before = sim.qpos()[0];
        sim.step(action, Self::SPEC.frame_skip);
        let x_after = sim.qpos()[0];
        let x_velocity = velocity(x_before, x_after, sim, Self::SPEC.frame_skip);
        let forward_reward = 1.0 * x_velocity;
        let ctrl_cost = control_cost_f32(0.1, action);
        let reward = forward_reward - f64::from(ctrl_cost);
        info.copy_from_slice(&[x_after, x_velocity, forward_reward, f64::from(-ctrl_cost)]);
        (reward, false)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let qpos = &sim.qpos()[1..];
        obs[..qpos.len()].copy_from_slice(qpos);
        obs[qpos.len()..].copy_from_slice(sim.qvel());
    }
}

/// The observation of Hopper and Walker2d: `qpos[1..]`, then `qvel` clipped to ±10.
fn observe_hopper_walker(sim: &Simulation, obs: &mut [f64]) {
    let qpos = &sim.qpos()[1..];
    obs[..qpos.len()].copy_from_slice(qpos);
    for (out, &v) in obs[qpos.len()..].iter_mut().zip(sim.qvel()) {
        *out = v.clamp(-10.0, 10.0);
    }
}

/// The step of Hopper and Walker2d, given their health test.
fn step_hopper_walker(
    sim: &mut Simulation,
    action: &[f32],
    info: &mut [f64],
    frame_skip: u32,
    is_healthy: fn(&Simulation) -> bool,
) -> (f64, bool) {
    let x_before = sim.qpos()[0];
    sim.step(action, frame_skip);
    let x_after = sim.qpos()[0];
    let x_velocity = velocity(x_before, x_after, sim, frame_skip);
    let healthy = is_healthy(sim);
    let forward_reward = 1.0 * x_velocity;
    let healthy_reward = if healthy { 1.0 } else { 0.0 };
    let rewards = forward_reward + healthy_reward;
    let ctrl_cost = control_cost_f32(1e-3, action);
    let reward = rewards - f64::from(ctrl_cost);
    let z_distance = sim.qpos()[1] - sim.model().qpos0()[1];
    info.copy_from_slice(&[
        x_after,
        z_distance,
        x_velocity,
        forward_reward,
        f64::from(-ctrl_cost),
        healthy_reward,
    ]);
    (reward, !healthy)
}

const HOPPER_WALKER_INFO: &[&str] = &[
    "x_position",
    "z_distance_from_origin",
    "x_velocity",
    "reward_forward",
    "reward_ctrl",
    "reward_survive",
];

/// Hopper-v5: a one-legged hopper rewarded for hopping forward while healthy.
///
/// Observation (11): `qpos[1..]` (5), `qvel` clipped to ±10 (6). Reward: `x_velocity + healthy -
/// 1e-3 * sum(action²)`, healthy = 1 while `qpos[2..]` and `qvel` are within ±100, z > 0.7 and
/// |angle| < 0.2 (all strict); terminates when not healthy. Reset: `qpos0 + uniform(±5e-3)`,
/// `qvel = uniform(±5e-3)`.
pub type Hopper = MujocoEnv<HopperTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct HopperTask;

impl Task for HopperTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Hopper-v5",
        model_file: "hopper.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/hopper.xml")),
        frame_skip: 4,
        max_episode_steps: 1000,
        obs_len: 11,
        info_keys: HOPPER_WALKER_INFO,
    };

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        reset_uniform(sim, 5e-3, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        step_hopper_walker(sim, action, info, Self::SPEC.frame_skip, |sim| {
            let qpos = sim.qpos();
            let (z, angle) = (qpos[1], qpos[2]);
            let in_range = |s: &f64| -100.0 < *s && *s < 100.0;
            let healthy_state = qpos[2..].iter().all(in_range) && sim.qvel().iter().all(in_range);
            healthy_state && 0.7 < z && z < f64::INFINITY && -0.2 < angle && angle < 0.2
        })
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        observe_hopper_walker(sim, obs);
    }
}

/// Walker2d-v5: a planar biped rewarded for walking forward while healthy.
///
/// Observation (17): `qpos[1..]` (8), `qvel` clipped to ±10 (9). Reward: `x_velocity + healthy -
/// 1e-3 * sum(action²)`, healthy = 1 while 0.8 < z < 2 and -1 < angle < 1; terminates when not
/// healthy. Reset: `qpos0 + uniform(±5e-3)`, `qvel = uniform(±5e-3)`. Model `walker2d_v5.xml`
/// (both feet with the same friction, unlike v4's).
pub type Walker2d = MujocoEnv<Walker2dTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Walker2dTask;

impl Task for Walker2dTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Walker2d-v5",
        model_file: "walker2d_v5.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/walker2d_v5.xml")),
        frame_skip: 4,
        max_episode_steps: 1000,
        obs_len: 17,
        info_keys: HOPPER_WALKER_INFO,
    };

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        reset_uniform(sim, 5e-3, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        step_hopper_walker(sim, action, info, Self::SPEC.frame_skip, |sim| {
            let (z, angle) = (sim.qpos()[1], sim.qpos()[2]);
            (0.8 < z && z < 2.0) && (-1.0 < angle && angle < 1.0)
        })
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        observe_hopper_walker(sim, obs);
    }
}

/// Swimmer-v5: a three-link swimmer in a viscous fluid rewarded for swimming forward; never
/// terminates.
///
/// Observation (8): `qpos[2..]` (3), `qvel` (5). Reward: `x_velocity - 1e-4 * sum(action²)`.
/// Reset: `qpos0 + uniform(±0.1)`, `qvel = uniform(±0.1)`.
pub type Swimmer = MujocoEnv<SwimmerTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct SwimmerTask;

impl Task for SwimmerTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Swimmer-v5",
        model_file: "swimmer.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/swimmer.xml")),
        frame_skip: 4,
        max_episode_steps: 1000,
        obs_len: 8,
        info_keys: &[
            "x_position",
            "y_position",
            "distance_from_origin",
            "x_velocity",
            "y_velocity",
            "reward_forward",
            "reward_ctrl",
        ],
    };

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        reset_uniform(sim, 0.1, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        let frame_skip = Self::SPEC.frame_skip;
        let before = [sim.qpos()[0], sim.qpos()[1]];
        sim.step(action, frame_skip);
        let after = [sim.qpos()[0], sim.qpos()[1]];
        let x_velocity = velocity(before[0], after[0], sim, frame_skip);
        let y_velocity = velocity(before[1], after[1], sim, frame_skip);
        let forward_reward = 1.0 * x_velocity;
        let ctrl_cost = control_cost_f32(1e-4, action);
        let reward = forward_reward - f64::from(ctrl_cost);
        info.copy_from_slice(&[
            after[0],
            after[1],
            norm(&after),
            x_velocity,
            y_velocity,
            forward_reward,
            f64::from(-ctrl_cost),
        ]);
        (reward, false)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let qpos = &sim.qpos()[2..];
        obs[..qpos.len()].copy_from_slice(qpos);
        obs[qpos.len()..].copy_from_slice(sim.qvel());
    }
}
