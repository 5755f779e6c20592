//! `MujocoEnv<T>`: gymnasium's `MujocoEnv` base class (reset, set_state, do_simulation, spaces)
//! around a `Task`, which holds what differs between the ten environments.

use std::sync::Arc;

use super::model::{Model, Simulation};
use crate::env::{Action, Env, StepOutcome};
use crate::rng::Pcg64;
use crate::space::Space;

/// What a task is, besides its code.
#[derive(Debug)]
pub struct TaskSpec {
    /// The gymnasium id, e.g. `Ant-v5`.
    pub id: &'static str,
    /// gymnasium's model file (`xml_file`'s default).
    pub model_file: &'static str,
    pub(crate) xml: &'static [u8],
    /// Physics steps per env step.
    pub frame_skip: u32,
    /// gymnasium's registered time limit.
    pub max_episode_steps: u32,
    pub obs_len: usize,
    /// The numbers of gymnasium's step `info`, in the order `MujocoEnv::info` gives them.
    pub info_keys: &'static [&'static str],
}

/// The part of a gymnasium MuJoCo env that differs between envs. The methods are called in
/// gymnasium's order: `reset_model` after `mj_resetData` (then `mj_forward`, then `sync`);
/// `step` around the simulation; `observe` after both.
pub trait Task: Clone + Send + 'static {
    const SPEC: TaskSpec;
    /// Values carried from one step to the next (positions the next step's reward starts from),
    /// saved with the simulation's state.
    const CARRIED_LEN: usize = 0;

    /// Looks up what the task needs in the model (body ids); the error names what is missing.
    fn new(model: &Model) -> Result<Self, String>;
    /// Writes the initial qpos and qvel (the data was just reset), drawing from `rng` as
    /// gymnasium's `reset_model` draws from `np_random`.
    fn reset_model(&mut self, sim: &mut Simulation, rng: &mut Pcg64);
    /// Recomputes the carried values from the current data (after a reset or a set state).
    fn sync(&mut self, sim: &Simulation) {
        let _ = sim;
    }
    /// Steps the simulation (`sim.step(action, frame_skip)`), writes `info` (`info_keys`' order)
    /// and returns the reward and whether the episode terminated.
    fn step(&mut self, sim: &mut Simulation, action: &[f32], info: &mut [f64]) -> (f64, bool);
    /// gymnasium's `_get_obs`, in f64.
    fn observe(&self, sim: &Simulation, obs: &mut [f64]);
    fn carried(&self) -> [f64; 2] {
        [0.0; 2]
    }
    fn set_carried(&mut self, values: [f64; 2]) {
        let _ = values;
    }
}

/// A gymnasium v5 MuJoCo environment with its default arguments.
///
/// Observations are computed in f64, as gymnasium's float64 observations, and written to the
/// pool's f32 row rounded to nearest (`observation_f64` keeps the f64 values). Actions are not
/// clipped (MuJoCo clamps the controls to their range; the control costs use the action as given).
pub struct MujocoEnv<T: Task> {
    sim: Simulation,
    task: T,
    obs: Box<[f64]>,
    info: Box<[f64]>,
}

impl<T: Task> std::fmt::Debug for MujocoEnv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(T::SPEC.id)
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl<T: Task> MujocoEnv<T> {
    /// An env on the task's model (compiled once per process, shared by every env of the task).
    pub fn new() -> crate::Result<Self> {
        let model = super::shared_model(&T::SPEC)?;
        super::check_fits(&T::SPEC, &model, 1)?;
        let task = T::new(&model).map_err(|reason| super::unavailable(&T::SPEC, reason))?;
        Self::with_task(model, task)
    }

    /// An env on `model`, whose simulation the caller has checked fits in memory.
    pub(crate) fn with_task(model: Arc<Model>, task: T) -> crate::Result<Self> {
        let sim = Simulation::new(model).map_err(|reason| super::unavailable(&T::SPEC, reason))?;
        Ok(Self {
            sim,
            task,
            obs: vec![0.0; T::SPEC.obs_len].into_boxed_slice(),
            info: vec![0.0; T::SPEC.info_keys.len()].into_boxed_slice(),
        })
    }

    pub fn spec() -> &'static TaskSpec {
        &T::SPEC
    }

    /// The simulation (MuJoCo's data), read-only.
    pub fn simulation(&self) -> &Simulation {
        &self.sim
    }

    pub(crate) fn simulation_mut(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    /// The observation of the current state as the pool would hold it, after bare physics steps
    /// (`after_step`: the contact forces are recomputed first, as a step does).
    pub(crate) fn observe_current(&mut self, after_step: bool) -> Vec<f32> {
        if after_step {
            self.sim.update_contact_forces();
        }
        self.task.observe(&self.sim, &mut self.obs);
        self.obs.iter().map(|&v| v as f32).collect()
    }

    /// The last observation before rounding to f32.
    pub fn observation_f64(&self) -> &[f64] {
        &self.obs
    }

    /// The last step's info, gymnasium's numbers (reward terms, positions, velocities) by key;
    /// zeros after a reset.
    pub fn info(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        T::SPEC
            .info_keys
            .iter()
            .copied()
            .zip(self.info.iter().copied())
    }

    /// One number of the last step's info, e.g. `"reward_ctrl"`.
    pub fn info_value(&self, key: &str) -> Option<f64> {
        self.info().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// gymnasium's `set_state(qpos, qvel)` (then `mj_forward`); the observation of the new state
    /// is in `observation_f64` afterwards.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), String> {
        let (nq, nv) = (self.sim.model().nq(), self.sim.model().nv());
        if qpos.len() != nq || qvel.len() != nv {
            return Err(format!(
                "{}: qpos and qvel must have {nq} and {nv} values, got {} and {}",
                T::SPEC.id,
                qpos.len(),
                qvel.len()
            ));
        }
        self.sim.qpos_mut().copy_from_slice(qpos);
        self.sim.qvel_mut().copy_from_slice(qvel);
        self.sim.forward();
        self.task.sync(&self.sim);
        self.task.observe(&self.sim, &mut self.obs);
        Ok(())
    }

    fn write_observation(&mut self, obs: &mut [f32]) {
        self.task.observe(&self.sim, &mut self.obs);
        for (out, &value) in obs.iter_mut().zip(self.obs.iter()) {
            *out = value as f32;
        }
    }
}

impl<T: Task> Env for MujocoEnv<T> {
    fn observation_space(&self) -> Space {
        Space::uniform_box(f32::NEG_INFINITY, f32::INFINITY, &[T::SPEC.obs_len])
    }

    /// gymnasium's `Box(ctrlrange.astype(float32))`.
    fn action_space(&self) -> Space {
        let range = self.sim.model().ctrl_range();
        Space::Box {
            low: range.iter().step_by(2).map(|&v| v as f32).collect(),
            high: range.iter().skip(1).step_by(2).map(|&v| v as f32).collect(),
            shape: vec![self.sim.model().nu()],
            dtype: crate::space::Dtype::Float32,
        }
    }

    /// The simulation's mjData and the f64 observation and info buffers.
    fn heap_bytes(&self) -> usize {
        let data = self.sim.model().data_bytes().unwrap_or(u64::MAX);
        let buffers = (self.obs.len() + self.info.len()) * std::mem::size_of::<f64>();
        usize::try_from(data).map_or(usize::MAX, |data| data.saturating_add(buffers))
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.sim.reset();
        self.task.reset_model(&mut self.sim, rng);
        self.sim.forward();
        self.task.sync(&self.sim);
        self.info.fill(0.0);
        self.write_observation(obs);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        // The pool only passes Box actions to a Box action space.
        let action = match action {
            Action::Continuous(values) => values,
            _ => &[],
        };
        let (reward, terminated) = self.task.step(&mut self.sim, action, &mut self.info);
        self.write_observation(obs);
        StepOutcome { reward, terminated }
    }

    /// The simulation's integration state (`mjSTATE_INTEGRATION`), then the task's carried
    /// values.
    fn save_state(&self) -> Option<Vec<f64>> {
        let mut state = Vec::with_capacity(self.sim.state_len() + T::CARRIED_LEN);
        self.sim.save_state(&mut state);
        state.extend_from_slice(&self.task.carried()[..T::CARRIED_LEN]);
        Some(state)
    }

    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        let sim_len = self.sim.state_len();
        if state.len() != sim_len + T::CARRIED_LEN {
            return Err(format!(
                "{}: expected {} state values, got {}",
                T::SPEC.id,
                sim_len + T::CARRIED_LEN,
                state.len()
            ));
        }
        self.sim.load_state(&state[..sim_len])?;
        let mut carried = [0.0; 2];
        carried[..T::CARRIED_LEN].copy_from_slice(&state[sim_len..]);
        self.task.set_carried(carried);
        Ok(())
    }
}

/// `(x_after - x_before) / dt`, gymnasium's velocity from positions one env step apart.
#[inline]
pub(crate) fn velocity(before: f64, after: f64, sim: &Simulation, frame_skip: u32) -> f64 {
    (after - before) / (sim.model().timestep() * f64::from(frame_skip))
}
