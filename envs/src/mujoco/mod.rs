//! gymnasium's MuJoCo environments (v5, default arguments) on the MuJoCo C library: Ant,
//! HalfCheetah, Hopper, Walker2d, Humanoid, Swimmer, Reacher, Pusher, InvertedPendulum and
//! InvertedDoublePendulum. Behind the cargo feature `mujoco`.
//!
//! # Where MuJoCo comes from
//!
//! `scripts/setup.sh` installs the pip wheel `mujoco==3.11.0` (the C library `libmujoco.so.3.11.0`
//! and its headers) and gymnasium 1.4.0 (whose `envs/mujoco/assets` hold the model files) into
//! hone's Python environment and writes their paths into `.cargo/config.toml`. The build links the
//! library with an rpath to its folder, compiles a small C shim against the headers (struct fields
//! are read there, so nothing of mjModel or mjData is mirrored in Rust), and compiles the ten model
//! files into the binary. Nothing is downloaded at build or run time.
//!
//! # Semantics
//!
//! Each env does what gymnasium 1.4.0's `*_v5.py` does, in the same order with the same numpy
//! arithmetic where rounding could differ (float32 control costs, numpy's pairwise sums): reset
//! = `mj_resetData`, the env's noise drawn from the pool's [`Pcg64`](crate::rng::Pcg64) as
//! gymnasium draws from `np_random` (numpy's `uniform` and, for Ant, HalfCheetah and
//! InvertedDoublePendulum, its ziggurat `standard_normal`, ported bit for bit in `normal.rs`),
//! then `mj_forward`; a step sets the controls to the action, runs `frame_skip` `mj_step`s and
//! `mj_rnePostConstraint`, and computes the reward, termination and observation. Time limits are
//! the pool's (`max_episode_steps`: 1000, Reacher 50, Pusher 100). An env seeded with
//! `Pcg64::from_seed(s)` starts where `gym.make(id).reset(seed=s)` starts, bit for bit.
//!
//! Observations are gymnasium's float64 values rounded to f32 in the pool's rows
//! ([`MujocoEnv::observation_f64`] keeps the f64 values). The step's `info` numbers (the reward
//! terms, positions, velocities) are [`MujocoEnv::info`]; the pool does not carry them.
//!
//! Each task's model is compiled once per process and shared, read-only, by all its envs; each env
//! owns its `mjData`. Checkpoints (`Env::save_state`) hold MuJoCo's integration state
//! (`mjSTATE_INTEGRATION`: time, qpos, qvel, warm start, controls, ...) and, for Ant and
//! Humanoid, the position the next step's velocity starts from; restoring one continues
//! bit-identically.

mod arms;
mod env;
mod ffi;
mod floor;
mod log;
mod model;
mod normal;
mod numpy_ops;
mod planar;
mod spatial;
mod ziggurat_tables;

use std::sync::{Arc, Mutex};

pub use arms::{InvertedDoublePendulum, InvertedPendulum, Pusher, Reacher};
#[doc(hidden)]
pub use arms::{InvertedDoublePendulumTask, InvertedPendulumTask, PusherTask, ReacherTask};
pub use env::{MujocoEnv, Task, TaskSpec};
pub use floor::{BareRun, Entry, Order, PhysicsWorkload, Replay};
pub use log::take_log;
pub use model::{Model, Simulation};
pub use normal::standard_normal;
pub use planar::{HalfCheetah, Hopper, Swimmer, Walker2d};
#[doc(hidden)]
pub use planar::{HalfCheetahTask, HopperTask, SwimmerTask, Walker2dTask};
pub use spatial::{Ant, Humanoid};
#[doc(hidden)]
pub use spatial::{AntTask, HumanoidTask};

use crate::error::{Error, Result};
use crate::pool::{EnvPool, PoolConfig};
use crate::registry::Registry;

/// The ten tasks' ids and gymnasium time limits.
pub const TASKS: [(&str, u32); 10] = [
    spec_entry(&spatial::AntTask::SPEC),
    spec_entry(&planar::HalfCheetahTask::SPEC),
    spec_entry(&planar::HopperTask::SPEC),
    spec_entry(&planar::Walker2dTask::SPEC),
    spec_entry(&spatial::HumanoidTask::SPEC),
    spec_entry(&planar::SwimmerTask::SPEC),
    spec_entry(&arms::ReacherTask::SPEC),
    spec_entry(&arms::PusherTask::SPEC),
    spec_entry(&arms::InvertedPendulumTask::SPEC),
    spec_entry(&arms::InvertedDoublePendulumTask::SPEC),
];

const fn spec_entry(spec: &TaskSpec) -> (&'static str, u32) {
    (spec.id, spec.max_episode_steps)
}

pub(crate) fn unavailable(spec: &TaskSpec, reason: String) -> Error {
    Error::TaskUnavailable {
        task_id: spec.id.to_owned(),
        reason,
    }
}

/// The compiled model of `spec`, compiled on first use and shared afterwards.
pub(crate) fn shared_model(spec: &TaskSpec) -> Result<Arc<Model>> {
    static MODELS: Mutex<Vec<(&'static str, Arc<Model>)>> = Mutex::new(Vec::new());
    let mut models = MODELS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, model)) = models.iter().find(|(id, _)| *id == spec.id) {
        return Ok(Arc::clone(model));
    }
    let model = Model::from_xml(spec.model_file, spec.xml).map_err(|e| unavailable(spec, e))?;
    models.push((spec.id, Arc::clone(&model)));
    Ok(model)
}

/// Checks that `count` simulations of `model` fit in the memory available, before MuJoCo
/// allocates them: its allocator's failure is an mju_error, which ends the process (see `log`).
pub(crate) fn check_fits(spec: &TaskSpec, model: &Model, count: u64) -> Result<()> {
    let bytes = model
        .data_bytes()
        .map_err(|reason| unavailable(spec, reason))?;
    let what = format!("{count} MuJoCo simulation(s) of `{}`", spec.id);
    match crate::memory::does_not_fit(&what, bytes.checked_mul(count)) {
        Some(message) => Err(Error::InvalidConfig(message)),
        None => Ok(()),
    }
}

fn register<T: Task>(registry: &mut Registry) -> Result<()> {
    let spec = &T::SPEC;
    registry.register_builder(
        spec.id,
        spec.max_episode_steps,
        Arc::new(|config: PoolConfig, max_episode_steps: u32| {
            let model = shared_model(&T::SPEC)?;
            // The first env's simulation; the pool checks all num_envs of them (`heap_bytes`)
            // before it makes the others.
            check_fits(&T::SPEC, &model, 1)?;
            let task = T::new(&model).map_err(|reason| unavailable(&T::SPEC, reason))?;
            EnvPool::try_from_factory(config, max_episode_steps, || {
                MujocoEnv::with_task(Arc::clone(&model), task.clone())
            })
        }),
    )
}

/// Registers the ten tasks (the registry's built-ins when the feature is on). Models compile
/// when a pool of the task is first made, so an unloadable model is that pool's error.
pub(crate) fn register_tasks(registry: &mut Registry) -> Result<()> {
    register::<spatial::AntTask>(registry)?;
    register::<planar::HalfCheetahTask>(registry)?;
    register::<planar::HopperTask>(registry)?;
    register::<planar::Walker2dTask>(registry)?;
    register::<spatial::HumanoidTask>(registry)?;
    register::<planar::SwimmerTask>(registry)?;
    register::<arms::ReacherTask>(registry)?;
    register::<arms::PusherTask>(registry)?;
    register::<arms::InvertedPendulumTask>(registry)?;
    register::<arms::InvertedDoublePendulumTask>(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_is_registered_with_its_time_limit() {
        let mut registry = Registry::empty();
        register_tasks(&mut registry).expect("distinct ids");
        for (id, steps) in TASKS {
            assert_eq!(registry.max_episode_steps(id), Ok(steps), "{id}");
        }
        assert_eq!(registry.ids().len(), TASKS.len());
        assert_eq!(registry.max_episode_steps("Reacher-v5"), Ok(50));
        assert_eq!(registry.max_episode_steps("Pusher-v5"), Ok(100));
    }

    #[test]
    fn the_registry_knows_these_ids_in_builds_without_the_feature() {
        let ids: Vec<&str> = TASKS.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, crate::registry::MUJOCO_TASK_IDS);
    }

    #[test]
    fn data_bytes_are_what_mj_make_data_allocates() {
        let specs = [
            &spatial::AntTask::SPEC,
            &planar::HalfCheetahTask::SPEC,
            &planar::HopperTask::SPEC,
            &planar::Walker2dTask::SPEC,
            &spatial::HumanoidTask::SPEC,
            &planar::SwimmerTask::SPEC,
            &arms::ReacherTask::SPEC,
            &arms::PusherTask::SPEC,
            &arms::InvertedPendulumTask::SPEC,
            &arms::InvertedDoublePendulumTask::SPEC,
        ];
        for spec in specs {
            let model = shared_model(spec).unwrap();
            let sim = Simulation::new(Arc::clone(&model)).unwrap();
            assert_eq!(model.data_bytes(), Ok(sim.allocated_bytes()), "{}", spec.id);
            assert!(check_fits(spec, &model, 1).is_ok());
            let err = check_fits(spec, &model, u64::MAX).unwrap_err().to_string();
            assert!(err.contains("MuJoCo simulation(s) of"), "{err}");
        }
    }

    #[test]
    fn warnings_are_captured_not_printed() {
        let model = shared_model(&planar::HopperTask::SPEC).unwrap();
        let mut sim = Simulation::new(model).unwrap();
        sim.qpos_mut()[2] = f64::NAN;
        // mj_checkPos warns (engine_forward.c) and resets the data.
        sim.physics_step();
        let log = take_log();
        assert!(
            log.iter()
                .any(|m| m.starts_with("WARNING: ") && m.contains("QPOS at DOF 2")),
            "{log:?}"
        );
        assert!(sim.qpos().iter().all(|q| q.is_finite()));
        // Nothing was written to the working folder (MuJoCo's default handler appends there).
        assert!(!std::path::Path::new("MUJOCO_LOG.TXT").exists());
    }

    #[test]
    fn a_broken_model_is_an_error_naming_it() {
        let error =
            Model::from_xml("broken.xml", b"<mujoco><worldbody><body>").expect_err("not a model");
        assert!(error.contains("broken.xml"), "{error}");
    }
}
