//! The arms and the pendulums: Reacher-v5, Pusher-v5, InvertedPendulum-v5 and
//! InvertedDoublePendulum-v5 (gymnasium's `reacher_v5.py`, `pusher_v5.py`,
//! `inverted_pendulum_v5.py`, `inverted_double_pendulum_v5.py`).

use super::env::{MujocoEnv, Task, TaskSpec};
use super::model::{Model, Simulation};
use super::numpy_ops::{norm, sum_of_squares_f32};
use super::planar::{add_normal_noise, add_uniform_noise, reset_uniform};
use crate::rng::Pcg64;

/// The position of `body` (its `xpos`).
#[inline]
fn body_position(sim: &Simulation, body: usize) -> [f64; 3] {
    let xpos = &sim.xpos()[3 * body..3 * body + 3];
    [xpos[0], xpos[1], xpos[2]]
}

#[inline]
fn difference(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Reacher-v5: a two-joint arm moving its fingertip to a random target; never terminates.
///
/// Observation (10): cos and sin of the two joint angles, the target's x, y (`qpos[2..]`), the
/// joint velocities, and the fingertip minus the target (x, y). Reward: `-|fingertip - target| -
/// sum(action²)`, computed after the step (v5). Reset: joints `qpos0 + uniform(±0.1)` (the target's
/// two draws too, then replaced), the target `uniform(±0.2)` per coordinate until within 0.2 of the
/// origin, joint velocities `uniform(±0.005)` (the target's set to 0).
pub type Reacher = MujocoEnv<ReacherTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct ReacherTask {
    fingertip: usize,
    target: usize,
}

impl Task for ReacherTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Reacher-v5",
        model_file: "reacher.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/reacher.xml")),
        frame_skip: 2,
        max_episode_steps: 50,
        obs_len: 10,
        info_keys: &["reward_dist", "reward_ctrl"],
    };

    fn new(model: &Model) -> Result<Self, String> {
        Ok(Self {
            fingertip: model.body_id("fingertip")?,
            target: model.body_id("target")?,
        })
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        let model = std::sync::Arc::clone(sim.model());
        add_uniform_noise(sim.qpos_mut(), Some(model.qpos0()), 0.1, rng);
        let goal = loop {
            let goal = [rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)];
            if norm(&goal) < 0.2 {
                break goal;
            }
        };
        let qpos = sim.qpos_mut();
        let n = qpos.len();
        qpos[n - 2..].copy_from_slice(&goal);
        add_uniform_noise(sim.qvel_mut(), None, 0.005, rng);
        let qvel = sim.qvel_mut();
        let n = qvel.len();
        qvel[n - 2..].fill(0.0);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        sim.step(action, Self::SPEC.frame_skip);
        let vec = difference(
            body_position(sim, self.fingertip),
            body_position(sim, self.target),
        );
        // reward_dist_weight and reward_control_weight are the int 1.
        let reward_dist = -norm(&vec);
        let reward_ctrl = -sum_of_squares_f32(action);
        let reward = reward_dist + f64::from(reward_ctrl);
        info.copy_from_slice(&[reward_dist, f64::from(reward_ctrl)]);
        (reward, false)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let qpos = sim.qpos();
        let vec = difference(
            body_position(sim, self.fingertip),
            body_position(sim, self.target),
        );
        obs.copy_from_slice(&[
            qpos[0].cos(),
            qpos[1].cos(),
            qpos[0].sin(),
            qpos[1].sin(),
            qpos[2],
            qpos[3],
            sim.qvel()[0],
            sim.qvel()[1],
            vec[0],
            vec[1],
        ]);
    }
}

/// Pusher-v5: a seven-joint arm pushing a cylinder to a goal; never terminates.
///
/// Observation (23): the arm's `qpos[..7]` and `qvel[..7]`, then the positions of the arm's tip,
/// the object and the goal. Reward: `-|object - goal| - 0.1 * sum(action²) - 0.5 * |object -
/// tip|`. Reset: the arm at `qpos0`, the object at (`uniform(-0.3, 0)`, `uniform(±0.2)`) until
/// more than 0.17 from the goal (at the origin), velocities `uniform(±0.005)` (the object's and
/// the goal's set to 0).
pub type Pusher = MujocoEnv<PusherTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct PusherTask {
    tips_arm: usize,
    object: usize,
    goal: usize,
}

impl Task for PusherTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "Pusher-v5",
        model_file: "pusher_v5.xml",
        xml: include_bytes!(concat!(env!("HONE_MUJOCO_ASSETS"), "/pusher_v5.xml")),
        frame_skip: 5,
        max_episode_steps: 100,
        obs_len: 23,
        info_keys: &["reward_dist", "reward_ctrl", "reward_near"],
    };

    fn new(model: &Model) -> Result<Self, String> {
        Ok(Self {
            tips_arm: model.body_id("tips_arm")?,
            object: model.body_id("object")?,
            goal: model.body_id("goal")?,
        })
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        // mj_resetData left qpos at qpos0 (gymnasium's init_qpos, whose last four entries it
        // overwrites on every reset, as here).
        let cylinder = loop {
            let cylinder = [rng.uniform(-0.3, 0.0), rng.uniform(-0.2, 0.2)];
            if norm(&cylinder) > 0.17 {
                break cylinder;
            }
        };
        let qpos = sim.qpos_mut();
        let n = qpos.len();
        qpos[n - 4..n - 2].copy_from_slice(&cylinder);
        qpos[n - 2..].fill(0.0);
        add_uniform_noise(sim.qvel_mut(), None, 0.005, rng);
        let qvel = sim.qvel_mut();
        let n = qvel.len();
        qvel[n - 4..].fill(0.0);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        sim.step(action, Self::SPEC.frame_skip);
        let object = body_position(sim, self.object);
        let vec_1 = difference(object, body_position(sim, self.tips_arm));
        let vec_2 = difference(object, body_position(sim, self.goal));
        let reward_near = -norm(&vec_1) * 0.5;
        // reward_dist_weight is the int 1.
        let reward_dist = -norm(&vec_2);
        // float32 times the Python float 0.1 stays float32.
        let reward_ctrl = -sum_of_squares_f32(action) * 0.1f64 as f32;
        let reward = reward_dist + f64::from(reward_ctrl) + reward_near;
        info.copy_from_slice(&[reward_dist, f64::from(reward_ctrl), reward_near]);
        (reward, false)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        obs[..7].copy_from_slice(&sim.qpos()[..7]);
        obs[7..14].copy_from_slice(&sim.qvel()[..7]);
        for (i, body) in [self.tips_arm, self.object, self.goal]
            .into_iter()
            .enumerate()
        {
            obs[14 + 3 * i..17 + 3 * i].copy_from_slice(&body_position(sim, body));
        }
    }
}

/// InvertedPendulum-v5: a cart balancing a pole; reward 1 per step while the pole stands.
///
/// Observation (4): `qpos` (cart position, pole angle) and `qvel`. Terminates when the observation
/// is not finite or |angle| > 0.2; the reward is 1 unless the step terminated (then 0). Reset:
/// `qpos0 + uniform(±0.01)`, `qvel = uniform(±0.01)`.
pub type InvertedPendulum = MujocoEnv<InvertedPendulumTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct InvertedPendulumTask;

impl Task for InvertedPendulumTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "InvertedPendulum-v5",
        model_file: "inverted_pendulum.xml",
        xml: include_bytes!(concat!(
            env!("HONE_MUJOCO_ASSETS"),
            "/inverted_pendulum.xml"
        )),
        frame_skip: 2,
        max_episode_steps: 1000,
        obs_len: 4,
        info_keys: &["reward_survive"],
    };

    fn new(_model: &Model) -> Result<Self, String> {
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        reset_uniform(sim, 0.01, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        sim.step(action, Self::SPEC.frame_skip);
        let (qpos, qvel) = (sim.qpos(), sim.qvel());
        let finite = qpos.iter().chain(qvel).all(|v| v.is_finite());
        let terminated = !finite || qpos[1].abs() > 0.2;
        let reward = if terminated { 0.0 } else { 1.0 };
        info[0] = reward;
        (reward, terminated)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        obs[..2].copy_from_slice(sim.qpos());
        obs[2..].copy_from_slice(sim.qvel());
    }
}

/// InvertedDoublePendulum-v5: a cart balancing two stacked poles.
///
/// Observation (9): cart position, sin and cos of the two hinge angles, `qvel` clipped to ±10, and
/// the cart's constraint force clipped to ±10. With (x, y) the pole tip (`site_xpos[0]`): reward
/// `10 * alive - (0.01 x² + (y - 2)²) - (1e-3 v1² + 5e-3 v2²)`, terminates when y ≤ 1 (then
/// alive = 0). Reset: `qpos0 + uniform(±0.1)`, `qvel = 0.1 * N(0, 1)`.
///
/// gymnasium squares with Python's `x**2` (C's `pow`); `x * x` here can differ from it by one
/// ulp.
pub type InvertedDoublePendulum = MujocoEnv<InvertedDoublePendulumTask>;

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct InvertedDoublePendulumTask;

impl Task for InvertedDoublePendulumTask {
    const SPEC: TaskSpec = TaskSpec {
        id: "InvertedDoublePendulum-v5",
        model_file: "inverted_double_pendulum.xml",
        xml: include_bytes!(concat!(
            env!("HONE_MUJOCO_ASSETS"),
            "/inverted_double_pendulum.xml"
        )),
        frame_skip: 5,
        max_episode_steps: 1000,
        obs_len: 9,
        info_keys: &["reward_survive", "distance_penalty", "velocity_penalty"],
    };

    fn new(model: &Model) -> Result<Self, String> {
        if model.nsite() == 0 {
            return Err(format!(
                "{}: the model has no site (the tip)",
                Self::SPEC.id
            ));
        }
        Ok(Self)
    }

    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64) {
        let model = std::sync::Arc::clone(sim.model());
        add_uniform_noise(sim.qpos_mut(), Some(model.qpos0()), 0.1, rng);
        add_normal_noise(sim.qvel_mut(), 0.1, rng);
    }

    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool) {
        sim.step(action, Self::SPEC.frame_skip);
        let (x, y) = (sim.site_xpos()[0], sim.site_xpos()[2]);
        let terminated = y <= 1.0;
        let (v1, v2) = (sim.qvel()[1], sim.qvel()[2]);
        let dist_penalty = 0.01 * (x * x) + (y - 2.0) * (y - 2.0);
        let vel_penalty = 1e-3 * (v1 * v1) + 5e-3 * (v2 * v2);
        let alive_bonus = if terminated { 0.0 } else { 10.0 };
        let reward = alive_bonus - dist_penalty - vel_penalty;
        info.copy_from_slice(&[alive_bonus, -dist_penalty, -vel_penalty]);
        (reward, terminated)
    }

    fn observe(&self, sim: &Simulation, obs: &mut [f64]) {
        let qpos = sim.qpos();
        obs[0] = qpos[0];
        obs[1] = qpos[1].sin();
        obs[2] = qpos[2].sin();
        obs[3] = qpos[1].cos();
        obs[4] = qpos[2].cos();
        for (out, &v) in obs[5..8].iter_mut().zip(sim.qvel()) {
            *out = v.clamp(-10.0, 10.0);
        }
        obs[8] = sim.qfrc_constraint()[0].clamp(-10.0, 10.0);
    }
}
