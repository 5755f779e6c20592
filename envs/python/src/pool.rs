//! `NativePool`: an `EnvPool` driven from Python. The Python package wraps it in a
//! `gymnasium.vector.VectorEnv` subclass; this class does the work: actions in, arrays out, the
//! GIL released while envs step.

use std::sync::{Arc, Mutex, MutexGuard};

use hone_envs::{AutoReset, EnvPool, PoolConfig, Space};
use numpy::{IxDyn, PyArray, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::actions::{ActionBuffer, ActionLayout, read_env_ids};
use crate::error::{Error, Result};
use crate::output::BatchOutput;

type SharedPool = Arc<Mutex<EnvPool>>;

/// What zero-copy observation arrays hold as their base object: the pool whose buffer they view,
/// kept alive (threads and buffers) until the last such array is gone, even past `close()`.
#[pyclass(module = "hone_envs._native", name = "PoolBuffers", frozen)]
pub struct PoolBuffers {
    _pool: SharedPool,
}

/// A sync pool driven through `send`/`recv`: what the next `recv` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncPending {
    Nothing,
    Reset,
    Step,
}

#[pyclass(module = "hone_envs._native", name = "NativePool")]
pub struct NativePool {
    config: PoolConfig,
    /// `None` once closed. Shared only with zero-copy arrays' `PoolBuffers`, which never lock it.
    pool: Option<SharedPool>,
    /// Zero-copy mode: the base object of observation views (`PoolBuffers` of `pool`).
    view_owner: Option<Py<PoolBuffers>>,
    zero_copy: bool,
    batch_size: usize,
    num_threads: usize,
    max_episode_steps: u32,
    observation_space: Space,
    action_space: Space,
    action_layout: ActionLayout,
    /// The caller's actions of the current call.
    actions: ActionBuffer,
    /// Sync pools: the actions `send` stored for `recv`, in env order.
    sync_actions: ActionBuffer,
    sync_pending: SyncPending,
    env_ids: Vec<u32>,
    /// Async pools: the env ids of the last batch `recv` returned (what `send` defaults to).
    last_env_ids: Vec<u32>,
    /// Async pools: the envs sent and not yet received.
    in_flight: Vec<bool>,
    output: BatchOutput,
}

/// The pool, or `Error::Closed` naming `operation`. A free function, so that the guard borrows
/// the pool field only and the output can be built while it is held.
fn lock<'a>(
    pool: &'a Option<SharedPool>,
    operation: &'static str,
) -> Result<MutexGuard<'a, EnvPool>> {
    let pool = pool.as_ref().ok_or(Error::Closed { operation })?;
    // A panic while the lock was held cannot leave the pool inconsistent (the engine catches
    // envs' panics), so a poisoned lock is still a usable pool.
    Ok(pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

impl NativePool {
    fn view_owner<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.view_owner
            .as_ref()
            .map(|owner| owner.bind(py).clone().into_any())
    }

    fn is_async(&self) -> bool {
        self.batch_size < self.config.num_envs
    }

    /// Replaces the pool by a new one seeded with `seed` (env `i` draws from `seed + i`).
    fn reseed(&mut self, py: Python<'_>, seed: u64, operation: &'static str) -> PyResult<()> {
        if self.pool.is_none() {
            return Err(Error::Closed { operation }.into());
        }
        let config = PoolConfig {
            seed,
            ..self.config.clone()
        };
        let built = config.clone();
        // Building spawns worker threads: no need to hold the GIL for it.
        let pool = py
            .detach(move || EnvPool::new(built))
            .map_err(Error::from)?;
        let pool = Arc::new(Mutex::new(pool));
        let old = self.pool.replace(Arc::clone(&pool));
        self.view_owner = if self.zero_copy {
            Some(Py::new(py, PoolBuffers { _pool: pool })?)
        } else {
            None
        };
        self.config = config;
        self.sync_pending = SyncPending::Nothing;
        self.last_env_ids.clear();
        self.in_flight.fill(false);
        // Dropping the last handle joins the old pool's threads.
        py.detach(move || drop(old));
        Ok(())
    }

    /// Async pools: receives, and drops, every env in flight, topping the last batch up with
    /// idle envs sent zero actions (a valid action of every space the pool checks), so that a
    /// reset can start. Their results are discarded: a reset follows.
    fn drain(&mut self, py: Python<'_>, operation: &'static str) -> PyResult<()> {
        loop {
            let in_flight = lock(&self.pool, operation)?.in_flight();
            if in_flight == 0 {
                return Ok(());
            }
            if in_flight < self.batch_size {
                let idle: Vec<u32> = (0..self.config.num_envs)
                    .filter(|&id| !self.in_flight[id])
                    .take(self.batch_size - in_flight)
                    .map(|id| id as u32)
                    .collect();
                let zeros = self.action_layout.zeros(idle.len());
                lock(&self.pool, operation)?
                    .send(zeros.as_actions(), &idle)
                    .map_err(Error::from)?;
                for &id in &idle {
                    self.in_flight[id as usize] = true;
                }
            }
            let mut guard = lock(&self.pool, operation)?;
            let pool: &mut EnvPool = &mut guard;
            let batch = py.detach(move || pool.recv()).map_err(Error::from)?;
            for &id in batch.env_id {
                self.in_flight[id as usize] = false;
            }
        }
    }

    fn sync_step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if self.sync_pending != SyncPending::Nothing {
            return Err(Error::Pool(hone_envs::Error::EnvInFlight { env_id: 0 }).into());
        }
        self.action_layout
            .read(actions, self.config.num_envs, &mut self.actions)?;
        let owner = self.view_owner(py);
        let mut guard = lock(&self.pool, "step()")?;
        let pool: &mut EnvPool = &mut guard;
        let actions = self.actions.as_actions();
        let batch = py.detach(move || pool.step(actions)).map_err(Error::from)?;
        self.output.transition(py, &batch, owner)
    }

    fn sync_recv<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let pending = std::mem::replace(&mut self.sync_pending, SyncPending::Nothing);
        let owner = self.view_owner(py);
        let mut guard = lock(&self.pool, "recv()")?;
        let pool: &mut EnvPool = &mut guard;
        let actions = self.sync_actions.as_actions();
        let batch = match pending {
            SyncPending::Nothing => {
                return Err(Error::Pool(hone_envs::Error::NothingInFlight).into());
            }
            SyncPending::Reset => py.detach(move || pool.reset()),
            SyncPending::Step => py.detach(move || pool.step(actions)),
        }
        .map_err(Error::from)?;
        self.output.transition(py, &batch, owner)
    }

    fn sync_send(
        &mut self,
        actions: &Bound<'_, PyAny>,
        env_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if self.pool.is_none() {
            return Err(Error::Closed {
                operation: "send()",
            }
            .into());
        }
        if self.sync_pending != SyncPending::Nothing {
            return Err(Error::Pool(hone_envs::Error::EnvInFlight { env_id: 0 }).into());
        }
        let num_envs = self.config.num_envs;
        match env_id {
            None => self
                .action_layout
                .read(actions, num_envs, &mut self.sync_actions)?,
            Some(env_id) => {
                read_env_ids(env_id, num_envs, &mut self.env_ids)?;
                if self.env_ids.len() != num_envs {
                    return Err(Error::SyncSendSubset {
                        got: self.env_ids.len(),
                        num_envs,
                    }
                    .into());
                }
                self.action_layout
                    .read(actions, num_envs, &mut self.actions)?;
                // Rows in env order; each env once (with num_envs ids, a repeat means one missing).
                let mut seen = vec![false; num_envs];
                let mut rows = self.action_layout.zeros(num_envs);
                let per_row = self.action_layout.per_row();
                for (row, &id) in self.env_ids.iter().enumerate() {
                    if std::mem::replace(&mut seen[id as usize], true) {
                        return Err(
                            Error::Pool(hone_envs::Error::DuplicateEnvId { env_id: id }).into()
                        );
                    }
                    rows.copy_row(id as usize, &self.actions, row, per_row);
                }
                self.sync_actions = rows;
            }
        }
        self.sync_pending = SyncPending::Step;
        Ok(())
    }

    fn async_send(
        &mut self,
        actions: &Bound<'_, PyAny>,
        env_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        match env_id {
            None => {
                self.env_ids.clear();
                self.env_ids.extend_from_slice(&self.last_env_ids);
            }
            Some(env_id) => read_env_ids(env_id, self.config.num_envs, &mut self.env_ids)?,
        }
        self.action_layout
            .read(actions, self.env_ids.len(), &mut self.actions)?;
        lock(&self.pool, "send()")?
            .send(self.actions.as_actions(), &self.env_ids)
            .map_err(Error::from)?;
        for &id in &self.env_ids {
            self.in_flight[id as usize] = true;
        }
        // Sent envs are in flight: `send` without env ids does not send them again.
        self.last_env_ids.clear();
        Ok(())
    }

    fn async_recv<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let owner = self.view_owner(py);
        let mut guard = lock(&self.pool, "recv()")?;
        let pool: &mut EnvPool = &mut guard;
        let batch = py.detach(move || pool.recv()).map_err(Error::from)?;
        self.last_env_ids.clear();
        self.last_env_ids.extend_from_slice(batch.env_id);
        for &id in batch.env_id {
            self.in_flight[id as usize] = false;
        }
        self.output.transition(py, &batch, owner)
    }
}

#[pymethods]
impl NativePool {
    #[new]
    #[pyo3(signature = (task_id, num_envs, batch_size=None, num_threads=0, seed=0, max_episode_steps=None, same_step=false, zero_copy=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        task_id: &str,
        num_envs: usize,
        batch_size: Option<usize>,
        num_threads: usize,
        seed: u64,
        max_episode_steps: Option<u32>,
        same_step: bool,
        zero_copy: bool,
    ) -> PyResult<Self> {
        let config = PoolConfig {
            task_id: task_id.to_owned(),
            num_envs,
            batch_size,
            num_threads,
            seed,
            max_episode_steps,
            autoreset: if same_step {
                AutoReset::SameStep
            } else {
                AutoReset::NextStep
            },
            ..PoolConfig::default()
        };
        let built = config.clone();
        let pool = py
            .detach(move || EnvPool::new(built))
            .map_err(Error::from)?;
        let observation_space = pool.observation_space().clone();
        let action_space = pool.action_space().clone();
        let action_layout = ActionLayout::new(&action_space);
        let (batch_size, num_threads, max_episode_steps) = (
            pool.batch_size(),
            pool.num_threads(),
            pool.max_episode_steps(),
        );
        let pool = Arc::new(Mutex::new(pool));
        let view_owner = if zero_copy {
            let owner = PoolBuffers {
                _pool: Arc::clone(&pool),
            };
            Some(Py::new(py, owner)?)
        } else {
            None
        };
        Ok(Self {
            output: BatchOutput::new(observation_space.shape(), same_step, num_envs),
            config,
            pool: Some(pool),
            view_owner,
            zero_copy,
            batch_size,
            num_threads,
            max_episode_steps,
            observation_space,
            actions: ActionBuffer::default(),
            sync_actions: action_layout.zeros(0),
            action_space,
            action_layout,
            sync_pending: SyncPending::Nothing,
            env_ids: Vec::new(),
            last_env_ids: Vec::new(),
            in_flight: vec![false; num_envs],
        })
    }

    /// Resets every env and returns `(obs, info)`; with `seed`, first reseeds (env `i` draws from
    /// `seed + i`). Async pools: `async_reset` then `recv` (the first `batch_size` envs).
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&mut self, py: Python<'py>, seed: Option<u64>) -> PyResult<Bound<'py, PyTuple>> {
        if self.is_async() {
            self.async_reset(py, seed)?;
            let owner = self.view_owner(py);
            let mut guard = lock(&self.pool, "reset()")?;
            let pool: &mut EnvPool = &mut guard;
            let batch = py.detach(move || pool.recv()).map_err(Error::from)?;
            self.last_env_ids.clear();
            self.last_env_ids.extend_from_slice(batch.env_id);
            for &id in batch.env_id {
                self.in_flight[id as usize] = false;
            }
            return self.output.reset(py, &batch, owner);
        }
        if let Some(seed) = seed {
            self.reseed(py, seed, "reset()")?;
        }
        self.sync_pending = SyncPending::Nothing;
        let owner = self.view_owner(py);
        let mut guard = lock(&self.pool, "reset()")?;
        let pool: &mut EnvPool = &mut guard;
        let batch = py.detach(move || pool.reset()).map_err(Error::from)?;
        self.output.reset(py, &batch, owner)
    }

    /// Steps and returns `(obs, reward, terminated, truncated, info)`. Sync pools: one action row
    /// per env. Async pools: `send(actions, env_id)` then `recv()`.
    #[pyo3(signature = (actions, env_id=None))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
        env_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if !self.is_async() {
            if let Some(env_id) = env_id {
                self.sync_send(actions, Some(env_id))?;
                return self.sync_recv(py);
            }
            return self.sync_step(py, actions);
        }
        self.async_send(actions, env_id)?;
        self.async_recv(py)
    }

    /// Starts a reset of every env; `recv` returns the first observations. With `seed`, first
    /// reseeds. Envs in flight are received first and their results dropped.
    #[pyo3(signature = (seed=None))]
    fn async_reset(&mut self, py: Python<'_>, seed: Option<u64>) -> PyResult<()> {
        match seed {
            Some(seed) => self.reseed(py, seed, "async_reset()")?,
            None if self.is_async() => self.drain(py, "async_reset()")?,
            None => {}
        }
        if !self.is_async() {
            if self.pool.is_none() {
                return Err(Error::Closed {
                    operation: "async_reset()",
                }
                .into());
            }
            self.sync_pending = SyncPending::Reset;
            return Ok(());
        }
        self.last_env_ids.clear();
        lock(&self.pool, "async_reset()")?
            .async_reset()
            .map_err(Error::from)?;
        self.in_flight.fill(true);
        Ok(())
    }

    /// Sends one action row per env of `env_id` (default: async pools, the envs of the last
    /// `recv`; sync pools, every env). Sync pools step on the next `recv`.
    #[pyo3(signature = (actions, env_id=None))]
    fn send(
        &mut self,
        actions: &Bound<'_, PyAny>,
        env_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if self.is_async() {
            self.async_send(actions, env_id)
        } else {
            self.sync_send(actions, env_id)
        }
    }

    /// Returns `(obs, reward, terminated, truncated, info)` of `batch_size` envs, the first to
    /// finish first; `info["env_id"]` says which.
    fn recv<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        if self.is_async() {
            self.async_recv(py)
        } else {
            self.sync_recv(py)
        }
    }

    /// Stops the worker threads and frees the buffers (those under zero-copy arrays once the last
    /// such array is gone). Idempotent.
    fn close(&mut self, py: Python<'_>) {
        let pool = self.pool.take();
        self.view_owner = None;
        py.detach(move || drop(pool));
    }

    #[getter]
    fn closed(&self) -> bool {
        self.pool.is_none()
    }

    #[getter]
    fn task_id(&self) -> &str {
        &self.config.task_id
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.config.num_envs
    }

    #[getter]
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Threads that step envs, the calling thread included (what `num_threads=0` resolved to).
    #[getter]
    fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// The seed of the current pool (the last `reset`/`async_reset` seed, else `make`'s).
    #[getter]
    fn seed(&self) -> u64 {
        self.config.seed
    }

    #[getter]
    fn max_episode_steps(&self) -> u32 {
        self.max_episode_steps
    }

    #[getter]
    fn same_step(&self) -> bool {
        self.config.autoreset == AutoReset::SameStep
    }

    #[getter]
    fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    #[getter(is_async)]
    fn is_async_getter(&self) -> bool {
        self.is_async()
    }

    /// Envs sent and not yet received.
    #[getter]
    fn in_flight(&self) -> PyResult<usize> {
        if !self.is_async() {
            let pending = self.sync_pending != SyncPending::Nothing;
            return Ok(if pending { self.config.num_envs } else { 0 });
        }
        Ok(lock(&self.pool, "in_flight")?.in_flight())
    }

    /// One observation's space: `("box", low, high)` with float32 bounds in the observation's
    /// shape.
    #[getter]
    fn observation_space<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        describe_for_python(py, &self.observation_space)
    }

    /// One action's space: `("discrete", n)`, `("multi_discrete", [n, ...])` or
    /// `("box", low, high)`.
    #[getter]
    fn action_space<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        describe_for_python(py, &self.action_space)
    }
}

fn describe_for_python<'py>(py: Python<'py>, space: &Space) -> PyResult<Bound<'py, PyTuple>> {
    match space {
        Space::Discrete { n } => ("discrete", *n).into_pyobject(py),
        Space::MultiDiscrete { nvec } => ("multi_discrete", nvec.clone()).into_pyobject(py),
        Space::Box {
            low, high, shape, ..
        } => {
            let bounds = |values: &[f32]| -> PyResult<Bound<'py, PyArray<f32, IxDyn>>> {
                let array = PyArray::<f32, IxDyn>::zeros(py, shape.clone(), false);
                // SAFETY: the array is new, so nothing else refers to its contiguous data.
                unsafe { array.as_slice_mut() }?.copy_from_slice(values);
                Ok(array)
            };
            ("box", bounds(low)?, bounds(high)?).into_pyobject(py)
        }
    }
}
