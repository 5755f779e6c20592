//! Task ids → env types. The built-in ids are gymnasium's classic-control tasks; users register
//! their own `Env` types with a factory and a default time limit.
//!
//! ```
//! use hone_envs::rng::Pcg64;
//! use hone_envs::{Action, Env, PoolConfig, Space, StepOutcome, registry};
//!
//! #[derive(Default)]
//! struct Coin;
//! impl Env for Coin {
//!     fn observation_space(&self) -> Space { Space::uniform_box(0.0, 1.0, &[1]) }
//!     fn action_space(&self) -> Space { Space::Discrete { n: 2 } }
//!     fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [f32]) { obs[0] = 0.0 }
//!     fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
//!         let Action::Discrete(a) = action else { unreachable!() };
//!         obs[0] = a as f32;
//!         StepOutcome { reward: a as f64, terminated: a == 1 }
//!     }
//! }
//!
//! registry::register("Coin-v0", 10, Coin::default)?;
//! let pool = registry::make("Coin-v0", PoolConfig::default().seed(3))?;
//! assert_eq!(pool.max_episode_steps(), 10);
//! # Ok::<(), hone_envs::Error>(())
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::{Env, Obs};
use crate::error::{Error, Result};
use crate::pool::{EnvPool, PoolConfig};

pub(crate) type PoolBuilder<O = f32> = dyn Fn(PoolConfig, u32) -> Result<EnvPool<O>> + Send + Sync;

#[derive(Clone)]
struct Task {
    max_episode_steps: u32,
    /// An `Arc<PoolBuilder<O>>` for the task's observation type `O`.
    build: Arc<dyn Any + Send + Sync>,
    /// `O::DTYPE`.
    dtype: &'static str,
    /// Whether the builder reads `PoolConfig::options` (else a config with any is an error).
    takes_options: bool,
}

impl Task {
    /// A pool of this task with `O` observations; `id` names it in errors.
    fn build<O: Obs>(&self, id: &str, config: PoolConfig) -> Result<EnvPool<O>> {
        let Some(build) = self.build.downcast_ref::<Arc<PoolBuilder<O>>>() else {
            return Err(Error::InvalidConfig(format!(
                "task `{id}` has {} observations, not {}: make it with EnvPool::<{}>::make",
                self.dtype,
                O::DTYPE,
                if self.dtype == "uint8" { "u8" } else { "f32" }
            )));
        };
        if !self.takes_options && !config.options.is_empty() {
            let names: Vec<&str> = config.options.keys().map(String::as_str).collect();
            return Err(Error::InvalidConfig(format!(
                "task `{id}` takes no options; got {}",
                names.join(", ")
            )));
        }
        build(config, self.max_episode_steps)
    }
}

/// A set of tasks. Most code uses the process-wide one through `make` and `register`.
#[derive(Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, Task>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("ids", &self.ids())
            .finish()
    }
}

/// The built-in tasks and their gymnasium time limits.
pub const BUILTIN_TASKS: [(&str, u32); 5] = [
    ("CartPole-v1", 500),
    ("Acrobot-v1", 500),
    ("MountainCar-v0", 200),
    ("MountainCarContinuous-v0", 999),
    ("Pendulum-v1", 200),
];

/// The tasks of the `mujoco` feature, so a build without it can say why they are missing.
pub const MUJOCO_TASK_IDS: [&str; 10] = [
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Humanoid-v5",
    "Swimmer-v5",
    "Reacher-v5",
    "Pusher-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
];

impl Registry {
    /// No tasks.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in tasks (`BUILTIN_TASKS`).
    pub fn with_builtins() -> Self {
        let mut registry = Self::empty();
        let [
            cartpole,
            acrobot,
            mountain_car,
            mountain_car_continuous,
            pendulum,
        ] = BUILTIN_TASKS;
        let registered = [
            registry.register(cartpole.0, cartpole.1, CartPole::default),
            registry.register(acrobot.0, acrobot.1, Acrobot::default),
            registry.register(mountain_car.0, mountain_car.1, MountainCar::default),
            registry.register(
                mountain_car_continuous.0,
                mountain_car_continuous.1,
                MountainCarContinuous::default,
            ),
            registry.register(pendulum.0, pendulum.1, Pendulum::default),
        ];
        debug_assert!(
            registered.iter().all(Result::is_ok),
            "built-in ids are distinct"
        );
        // Tasks behind cargo features register here (their ids are distinct from the above).
        #[cfg(feature = "mujoco")]
        {
            let registered = crate::mujoco::register_tasks(&mut registry);
            debug_assert!(registered.is_ok(), "{registered:?}");
        }
        #[cfg(feature = "atari")]
        {
            let registered = crate::atari::register_tasks(&mut registry);
            debug_assert!(registered.is_ok(), "{registered:?}");
        }
        registry
    }

    /// Registers `id`: a pool of it holds `num_envs` envs made by `factory`, truncated after
    /// `max_episode_steps` steps unless its config overrides that.
    pub fn register<E, F>(&mut self, id: &str, max_episode_steps: u32, factory: F) -> Result<()>
    where
        E: Env + 'static,
        F: Fn() -> E + Send + Sync + 'static,
    {
        let build: Arc<PoolBuilder> =
            Arc::new(move |config: PoolConfig, max_episode_steps: u32| {
                EnvPool::from_factory(config, max_episode_steps, &factory)
            });
        self.register_builder(id, max_episode_steps, build)
    }

    /// Registers `id` with a pool builder that may fail, for envs that need something loaded
    /// first (a MuJoCo model): `build(config, max_episode_steps)` makes the pool.
    pub(crate) fn register_builder<O: Obs>(
        &mut self,
        id: &str,
        max_episode_steps: u32,
        build: Arc<PoolBuilder<O>>,
    ) -> Result<()> {
        self.register_task(id, max_episode_steps, build, false)
    }

    /// `register_builder` for a builder that reads `PoolConfig::options`.
    #[cfg_attr(not(feature = "atari"), allow(dead_code))]
    pub(crate) fn register_builder_with_options<O: Obs>(
        &mut self,
        id: &str,
        max_episode_steps: u32,
        build: Arc<PoolBuilder<O>>,
    ) -> Result<()> {
        self.register_task(id, max_episode_steps, build, true)
    }

    fn register_task<O: Obs>(
        &mut self,
        id: &str,
        max_episode_steps: u32,
        build: Arc<PoolBuilder<O>>,
        takes_options: bool,
    ) -> Result<()> {
        if self.tasks.contains_key(id) {
            return Err(Error::DuplicateTask(id.to_owned()));
        }
        if max_episode_steps == 0 {
            return Err(Error::InvalidConfig(format!(
                "task `{id}`: max_episode_steps = 0, must be at least 1"
            )));
        }
        self.tasks.insert(
            id.to_owned(),
            Task {
                max_episode_steps,
                build: Arc::new(build),
                dtype: O::DTYPE,
                takes_options,
            },
        );
        Ok(())
    }

    /// A pool of task `config.task_id`.
    pub fn make(&self, config: PoolConfig) -> Result<EnvPool> {
        self.make_typed(config)
    }

    /// A pool of task `config.task_id` with `O` observations (`u8` for Atari).
    pub fn make_typed<O: Obs>(&self, config: PoolConfig) -> Result<EnvPool<O>> {
        let id = config.task_id.clone();
        self.task(&id)?.build(&id, config)
    }

    /// The numpy dtype of task `id`'s observations (`float32`, `uint8`).
    pub fn observation_dtype(&self, id: &str) -> Result<&'static str> {
        Ok(self.task(id)?.dtype)
    }

    /// The registered ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// The registered time limit of `id`.
    pub fn max_episode_steps(&self, id: &str) -> Result<u32> {
        Ok(self.task(id)?.max_episode_steps)
    }

    fn task(&self, id: &str) -> Result<&Task> {
        if let Some(task) = self.tasks.get(id) {
            return Ok(task);
        }
        if !cfg!(feature = "mujoco") && MUJOCO_TASK_IDS.contains(&id) {
            return Err(Error::TaskUnavailable {
                task_id: id.to_owned(),
                reason: "hone-envs was built without its `mujoco` cargo feature (after \
                         `scripts/setup.sh`, build hone with `cargo build --release --features \
                         mujoco`; the Python module with `bash scripts/setup_python.sh`, or \
                         MATURIN_PEP517_ARGS=\"--features mujoco --auditwheel skip\" pip \
                         install ./envs/python)"
                    .to_owned(),
            });
        }
        Err(Error::UnknownTask {
            id: id.to_owned(),
            known: self.ids(),
        })
    }
}

fn global() -> &'static RwLock<Registry> {
    static GLOBAL: OnceLock<RwLock<Registry>> = OnceLock::new();
    GLOBAL.get_or_init(|| RwLock::new(Registry::with_builtins()))
}

/// Registers a task in the process-wide registry (see `Registry::register`).
pub fn register<E, F>(id: &str, max_episode_steps: u32, factory: F) -> Result<()>
where
    E: Env + 'static,
    F: Fn() -> E + Send + Sync + 'static,
{
    global()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .register(id, max_episode_steps, factory)
}

/// A pool of task `task_id` from the process-wide registry; `task_id` replaces `config.task_id`.
pub fn make(task_id: &str, config: PoolConfig) -> Result<EnvPool> {
    make_pool(PoolConfig {
        task_id: task_id.to_owned(),
        ..config
    })
}

/// The ids of the process-wide registry, sorted.
pub fn task_ids() -> Vec<String> {
    global()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .ids()
}

/// The numpy dtype of the observations of task `id` in the process-wide registry.
pub fn observation_dtype(id: &str) -> Result<&'static str> {
    global()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .observation_dtype(id)
}

/// `EnvPool::new`: a pool of `config.task_id` from the process-wide registry.
pub(crate) fn make_pool<O: Obs>(config: PoolConfig) -> Result<EnvPool<O>> {
    // Build outside the lock: building spawns threads and runs user factories.
    let id = config.task_id.clone();
    let task = global()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .task(&id)?
        .clone();
    task.build(&id, config)
}

// With the feature the ids are registered (mujoco::tests checks the list against them).
#[cfg(all(test, not(feature = "mujoco")))]
mod tests {
    use super::*;

    #[test]
    fn a_mujoco_id_names_the_missing_feature_in_a_build_without_it() {
        let registry = Registry::with_builtins();
        let error = registry.max_episode_steps("HalfCheetah-v5").unwrap_err();
        assert!(
            matches!(&error, Error::TaskUnavailable { task_id, reason }
                if task_id == "HalfCheetah-v5" && reason.contains("--features mujoco")),
            "{error}"
        );
        let unknown = registry.max_episode_steps("HalfCheetah-v9").unwrap_err();
        assert!(matches!(unknown, Error::UnknownTask { .. }), "{unknown}");
    }
}
