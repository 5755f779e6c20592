//! `EnvPool`: a batch of envs stepped in place by worker threads, in sync mode (every env each
//! step) or async mode (send to some envs, receive whichever finish first).
//!
//! - **Sync** (`batch_size == num_envs`): `reset()`, then `step(actions)` with one action row per
//!   env in env order; the batch's rows are in env order too.
//! - **Async** (`batch_size < num_envs`): `async_reset()`, then `recv()` returns `batch_size`
//!   envs, the first to finish first, and `send(actions, env_ids)` gives some envs (typically the
//!   ones just received) their next actions. An env is *in flight* from its send to the recv that
//!   returns it; sending to it meanwhile is an error.
//! - **Autoreset**: after an episode ends (terminated, or truncated at `max_episode_steps`), the
//!   env resets on its next step (`AutoReset::NextStep`, whose row is a reset row: reward 0, no
//!   flags, the action ignored) or within the same step (`AutoReset::SameStep`, the final
//!   observation in `batch.episodes.final_observation`).
//! - **Determinism**: env `i` owns `Pcg64::from_wide_seed(seed + i)` (computed in u128, so it
//!   never wraps, as gymnasium's Python ints) and nothing else is shared, so
//!   sync batches are bit-identical for any `num_threads`, and async per-env trajectories depend
//!   only on the actions each env is sent.
//! - **Faults**: bad input is an `Error` before anything is touched. An env that panics is
//!   reported as `Error::EnvPanicked` by the `step` or `recv` that would have returned it, and
//!   resets on its next step; the other envs go on (a failed sync step has stepped them; a failed
//!   recv keeps the rows it had gathered for the next recv).
//! - **Threads**: `num_threads` counts the calling thread, which always does its share. A sync
//!   step splits the envs into claims sized by what an env's step costs (timed on the calling
//!   thread): a step whose work fits in one claim (a single env, a few cheap envs) runs on the
//!   calling thread with no hand-off at all, and costly envs (MuJoCo) are claimed one by one
//!   towards the end of a step, so no thread waits long for another. An async send is cut into
//!   jobs the same way; a send that fits in one claim stays with the calling thread, which steps
//!   it in `recv`. Idle workers spin briefly, then yield, then sleep on a condvar; dropping the
//!   pool wakes and joins them.

mod actions;
mod async_mode;
mod kernel;
mod options;
mod output;
mod snapshot;
mod sync;
mod workers;

use std::sync::Arc;
use std::thread::JoinHandle;

use actions::ActionCheck;
use async_mode::AsyncState;
pub use kernel::AutoReset;
use kernel::{ActionRows, EnvState, Envs, Rows};
pub use options::EnvOption;
use output::BatchBuffers;
pub use snapshot::{EnvSnapshot, PoolSnapshot};
use workers::{Shared, SyncCommand, worker_main};

use crate::batch::{Actions, Batch};
use crate::env::{Env, Obs};
use crate::error::{Error, Result};
use crate::space::Space;

/// Envs per unit of work handed to a thread when an env's step costs next to nothing (or its cost
/// is not known yet): below this, handing work over costs more than it saves.
const MIN_CHUNK: usize = 16;
/// The least work, in nanoseconds of env steps, that a sync claim hands over: a claim costs a
/// contended compare-and-swap and a count, a fraction of a microsecond.
const CLAIM_NS: f64 = 5_000.0;
/// Runs of envs on the calling thread between two timings (the timing's two clock reads are a
/// few percent of a run of a few cheap envs).
const TIMING_PERIOD: u64 = 8;

/// What one env's step costs on the calling thread, from timings of some of the runs of envs it
/// does (a sync step's share, an async job); it sizes the work handed to other threads.
#[derive(Debug, Default)]
struct StepCost {
    /// Nanoseconds per env step, a running average; 0 before the first timing.
    ns: f64,
    /// Runs so far, for `TIMING_PERIOD`.
    runs: u64,
}

impl StepCost {
    /// A clock reading if this run is to be timed (the first, then every `TIMING_PERIOD`th).
    fn start(&mut self) -> Option<std::time::Instant> {
        let timed = self.ns == 0.0 || self.runs.is_multiple_of(TIMING_PERIOD);
        self.runs += 1;
        timed.then(std::time::Instant::now)
    }

    /// Records that the run `start` timed stepped `envs` envs in `elapsed` (`start.elapsed()`,
    /// unless taken earlier). A run in which an env panicked is not its cost (unwinding, a
    /// backtrace): `faulted` drops the timing.
    fn record(&mut self, elapsed: Option<std::time::Duration>, envs: usize, faulted: bool) {
        if let (Some(elapsed), 1.., false) = (elapsed, envs, faulted) {
            let sample = elapsed.as_nanos() as f64 / envs as f64;
            self.ns = if self.ns == 0.0 {
                sample
            } else {
                0.75 * self.ns + 0.25 * sample
            };
        }
    }

    /// The fewest envs to hand to another thread: worth `CLAIM_NS` of steps, at most
    /// `MIN_CHUNK` (`MIN_CHUNK` until the cost is known).
    fn min_claim(&self) -> usize {
        if self.ns > 0.0 {
            ((CLAIM_NS / self.ns).ceil() as usize).clamp(1, MIN_CHUNK)
        } else {
            MIN_CHUNK
        }
    }
}

/// How to build a pool. `Default` matches envpool's defaults where they apply.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// A registered task id, e.g. `CartPole-v1` (see `registry`).
    pub task_id: String,
    pub num_envs: usize,
    /// Rows per batch. `None` or `Some(num_envs)`: sync mode (`reset`/`step`); fewer: async mode
    /// (`async_reset`/`send`/`recv`, returning whichever envs finish first).
    pub batch_size: Option<usize>,
    /// Threads stepping envs, the calling thread included; 0 = one per core. Small pools use
    /// fewer (no more than one per env, in async mode one per env of a batch).
    pub num_threads: usize,
    /// Env `i` draws from `Pcg64::from_wide_seed(seed + i)`, `seed + i` in u128 (no wrap past
    /// 2^64: gymnasium passes the unbounded Python int to `SeedSequence`).
    pub seed: u64,
    /// Overrides the task's registered time limit.
    pub max_episode_steps: Option<u32>,
    pub autoreset: AutoReset,
    /// The task's own options by name (Atari: `episodic_life`, `frame_skip`, ...); tasks without
    /// options reject any.
    pub options: std::collections::BTreeMap<String, EnvOption>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            task_id: "CartPole-v1".to_owned(),
            num_envs: 1,
            batch_size: None,
            num_threads: 0,
            seed: 42,
            max_episode_steps: None,
            autoreset: AutoReset::NextStep,
            options: std::collections::BTreeMap::new(),
        }
    }
}

impl PoolConfig {
    pub fn new(task_id: impl Into<String>, num_envs: usize) -> Self {
        Self {
            task_id: task_id.into(),
            num_envs,
            ..Self::default()
        }
    }

    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.num_threads = num_threads;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn max_episode_steps(mut self, max_episode_steps: u32) -> Self {
        self.max_episode_steps = Some(max_episode_steps);
        self
    }

    pub fn autoreset(mut self, autoreset: AutoReset) -> Self {
        self.autoreset = autoreset;
        self
    }

    /// Sets the task option `name` (see `options`).
    pub fn option(mut self, name: impl Into<String>, value: impl Into<EnvOption>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

/// A pool of `num_envs` envs of one type, stepped by `num_threads` threads (the caller's included).
/// `O` is the observation element: `f32`, or `u8` for Atari (`EnvPool::<u8>::make`).
///
/// ```
/// use hone_envs::{EnvPool, PoolConfig};
/// let mut pool = EnvPool::new(PoolConfig::new("CartPole-v1", 8).seed(1))?;
/// pool.reset()?;
/// let actions = vec![1i64; 8];
/// let batch = pool.step(&actions)?;
/// assert_eq!(batch.len(), 8);
/// # Ok::<(), hone_envs::Error>(())
/// ```
pub struct EnvPool<O: Obs = f32> {
    config: PoolConfig,
    max_episode_steps: u32,
    observation_space: Space,
    action_space: Space,
    action_check: ActionCheck,
    num_threads: usize,
    shared: Arc<Shared<O>>,
    workers: Vec<JoinHandle<()>>,
    has_reset: bool,
    // sync mode
    epoch: u32,
    /// What an env's step costs: sets a sync epoch's smallest claim and an async job's length.
    cost: StepCost,
    all_env_ids: Vec<u32>,
    out: BatchBuffers<O>,
    /// `None` in sync mode.
    async_state: Option<AsyncState>,
}

impl<O: Obs> std::fmt::Debug for EnvPool<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvPool")
            .field("config", &self.config)
            .field("max_episode_steps", &self.max_episode_steps)
            .field("num_threads", &self.num_threads)
            .finish_non_exhaustive()
    }
}

impl EnvPool {
    /// Builds a pool of the registered task `config.task_id` (see `registry::make`).
    pub fn new(config: PoolConfig) -> Result<Self> {
        crate::registry::make_pool(config)
    }
}

impl<O: Obs> EnvPool<O> {
    /// [`EnvPool::new`] for any observation type: `EnvPool::<u8>::make(config)` for Atari.
    pub fn make(config: PoolConfig) -> Result<Self> {
        crate::registry::make_pool(config)
    }

    /// Builds a pool of envs made by `factory`, `num_envs` calls of it, with the time limit
    /// `default_max_episode_steps` unless the config overrides it. `config.task_id` is only a name.
    pub fn from_factory<E: Env<O> + 'static>(
        config: PoolConfig,
        default_max_episode_steps: u32,
        factory: impl Fn() -> E,
    ) -> Result<Self> {
        Self::try_from_factory(config, default_max_episode_steps, || Ok(factory()))
    }

    /// [`EnvPool::from_factory`] for envs whose making can fail (a MuJoCo simulation): the first
    /// error is the pool's, and the envs made so far are dropped.
    pub fn try_from_factory<E: Env<O> + 'static>(
        config: PoolConfig,
        default_max_episode_steps: u32,
        factory: impl Fn() -> Result<E>,
    ) -> Result<Self> {
        let num_envs = config.num_envs;
        if num_envs == 0 || num_envs > u32::MAX as usize / 2 {
            return Err(Error::InvalidConfig(format!(
                "num_envs = {num_envs}, must be in 1..={}",
                u32::MAX / 2
            )));
        }
        let batch_size = config.batch_size.unwrap_or(num_envs);
        if batch_size == 0 || batch_size > num_envs {
            return Err(Error::InvalidConfig(format!(
                "batch_size = {batch_size}, must be in 1..={num_envs} (num_envs)"
            )));
        }
        let max_episode_steps = config
            .max_episode_steps
            .unwrap_or(default_max_episode_steps);
        if max_episode_steps == 0 {
            return Err(Error::InvalidConfig(
                "max_episode_steps = 0, must be at least 1".to_owned(),
            ));
        }
        // Every size is checked before the envs and buffers are allocated: the envs
        // themselves (their inline size and what the first one owns on the heap), and per env a
        // row of the buffers the observation is written to (a ring row, the caller's batch, a
        // final observation).
        let first = factory()?;
        let obs_len = first.observation_space().flat_len();
        let per_env = obs_len
            .checked_mul(3 * std::mem::size_of::<O>())
            .and_then(|rows| rows.checked_add(std::mem::size_of::<E>() + 72))
            .and_then(|bytes| bytes.checked_add(first.heap_bytes()));
        let bytes = per_env.and_then(|b| b.checked_mul(num_envs));
        if let Some(message) = crate::memory::does_not_fit(
            &format!("num_envs = {num_envs}"),
            bytes.and_then(|b| u64::try_from(b).ok()),
        ) {
            return Err(Error::InvalidConfig(message));
        }
        let mut envs: Vec<E> = Vec::new();
        envs.try_reserve_exact(num_envs).map_err(|_| {
            Error::InvalidConfig(format!("num_envs = {num_envs}: cannot allocate its envs"))
        })?;
        envs.push(first);
        for _ in 1..num_envs {
            envs.push(factory()?);
        }
        let observation_space = envs[0].observation_space();
        let info = envs[0].has_info();
        let action_space = envs[0].action_space();
        let action_check = ActionCheck::new(&action_space)?;
        let is_async = batch_size < num_envs;

        let requested_threads = match config.num_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Sync: up to a thread per env; each step then decides from the envs' cost how many
        // take part (cheap envs in a small pool stay on the calling thread).
        let num_threads = if is_async {
            requested_threads.min(batch_size)
        } else {
            requested_threads.min(num_envs)
        };

        let state = EnvState::new(num_envs, max_episode_steps, config.autoreset);
        // Async: a ring with a row per env holds every in-flight env's row plus the batch the
        // caller holds (whose envs are not in flight).
        let rows = Rows::new(num_envs, obs_len, config.autoreset, info);
        let per_row = action_check.per_row();
        let (int_len, float_len) = match (&action_check, is_async) {
            (_, false) => (0, 0),
            (ActionCheck::Continuous { .. }, true) => (0, num_envs * per_row),
            (_, true) => (num_envs * per_row, 0),
        };
        let shared = Arc::new(Shared::new(
            Box::new(Envs::new(envs, config.seed)),
            state,
            rows,
            int_len,
            float_len,
            num_threads,
        ));
        let async_state = is_async.then(|| AsyncState {
            batch_size,
            in_flight: vec![false; num_envs],
            in_flight_count: 0,
            send_mark: vec![0; num_envs],
            send_generation: 0,
            job_tail: 0,
            local_jobs: std::collections::VecDeque::with_capacity(num_envs),
            row_head: 0,
            actions: match &action_check {
                ActionCheck::Discrete { .. } => {
                    ActionRows::Discrete(shared.async_actions_int.as_ptr())
                }
                ActionCheck::MultiDiscrete { .. } => {
                    ActionRows::MultiDiscrete(shared.async_actions_int.as_ptr(), per_row)
                }
                ActionCheck::Continuous { .. } => {
                    ActionRows::Continuous(shared.async_actions_float.as_ptr(), per_row)
                }
            },
        });
        let worker_actions = async_state.as_ref().map(|state| state.actions);

        let mut pool = Self {
            max_episode_steps,
            observation_space,
            action_space,
            action_check,
            num_threads,
            shared,
            workers: Vec::with_capacity(num_threads - 1),
            has_reset: false,
            epoch: 0,
            cost: StepCost::default(),
            all_env_ids: (0..num_envs as u32).collect(),
            out: BatchBuffers::new(
                batch_size,
                obs_len,
                config.autoreset == AutoReset::SameStep,
                is_async,
                info,
            ),
            async_state,
            config,
        };
        for index in 1..num_threads {
            let shared = Arc::clone(&pool.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("hone-envs-{index}"))
                .spawn(move || worker_main(shared, worker_actions));
            match spawned {
                Ok(handle) => pool.workers.push(handle),
                // Dropping the pool joins the workers started so far.
                Err(error) => return Err(Error::ThreadSpawn(error.to_string())),
            }
        }
        pool.shared.wait_for_workers(pool.workers.len());
        Ok(pool)
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn num_envs(&self) -> usize {
        self.config.num_envs
    }

    /// Rows per batch: `num_envs` in sync mode.
    pub fn batch_size(&self) -> usize {
        self.async_state
            .as_ref()
            .map_or(self.config.num_envs, |state| state.batch_size)
    }

    pub fn is_async(&self) -> bool {
        self.async_state.is_some()
    }

    /// Threads that step envs, the caller's included (what `num_threads` resolved to).
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    pub fn max_episode_steps(&self) -> u32 {
        self.max_episode_steps
    }

    pub fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    pub fn action_space(&self) -> &Space {
        &self.action_space
    }

    // ---- sync mode ----

    /// Resets every env (sync mode) and returns the first observations.
    pub fn reset(&mut self) -> Result<Batch<'_, O>> {
        if self.is_async() {
            return Err(Error::WrongMode {
                operation: "reset()",
                reason: "is for sync pools (batch_size == num_envs); this pool is async: use async_reset() and recv()",
            });
        }
        for id in 0..self.config.num_envs {
            // SAFETY: no epoch is in progress, so the caller owns every env's state.
            unsafe { *self.shared.state.needs_reset.get_mut(id) = true };
        }
        self.has_reset = true;
        self.run_sync(ActionRows::None)?;
        Ok(self.sync_batch())
    }

    /// Steps every env (sync mode): row `i` of `actions` is env `i`'s action. Envs whose episode
    /// finished on the previous step reset instead (next-step autoreset), ignoring their action,
    /// which must still be valid.
    pub fn step<'a>(&mut self, actions: impl Into<Actions<'a>>) -> Result<Batch<'_, O>> {
        let actions = actions.into();
        if self.is_async() {
            return Err(Error::WrongMode {
                operation: "step()",
                reason: "is for sync pools (batch_size == num_envs); this pool is async: use send() and recv()",
            });
        }
        if !self.has_reset {
            return Err(Error::NotReset {
                operation: "step()",
                reset: "reset()",
            });
        }
        let rows = self
            .action_check
            .validate(actions, self.config.num_envs, |row| row as u32)?;
        self.run_sync(rows)?;
        Ok(self.sync_batch())
    }

    /// Runs one sync epoch over every env: on the calling thread alone when the envs are worth
    /// no more than one claim, else in claims the threads take (`workers` module).
    fn run_sync(&mut self, actions: ActionRows) -> Result<()> {
        let shared = &*self.shared;
        let num_envs = self.config.num_envs;
        let min_claim = self.cost.min_claim();
        let start = self.cost.start();
        let faulted = if self.workers.is_empty() || num_envs <= min_claim {
            // SAFETY: no worker runs (none exist, or no epoch is in progress), so this thread owns
            // every env; `actions` borrows the caller's validated slice for this call.
            let faulted = unsafe {
                shared.stepper.run(
                    kernel::EnvRun::Range(0, num_envs),
                    0,
                    actions,
                    &shared.state,
                    &shared.rows,
                )
            };
            self.cost
                .record(start.map(|start| start.elapsed()), num_envs, faulted);
            faulted
        } else {
            self.epoch = self.epoch.wrapping_add(1);
            // SAFETY: the previous epoch was waited for by `finish_epoch`; the action slice outlives
            // this epoch, which ends before this function returns.
            unsafe { shared.start_epoch(self.epoch, min_claim, SyncCommand { actions }) };
            let own = shared.run_epoch_claims(self.epoch);
            // The caller's own share, timed before it waits for the others'.
            let elapsed = start.map(|start| start.elapsed());
            let faulted = shared.finish_epoch();
            self.cost.record(elapsed, own, faulted);
            faulted
        };
        if faulted {
            return Err(self.take_faults(0..self.config.num_envs));
        }
        Ok(())
    }

    /// Collects and clears the faults of envs `ids` (none of them being stepped) into one error.
    fn take_faults(&mut self, ids: impl Iterator<Item = usize>) -> Error {
        let mut first: Option<(u32, String)> = None;
        let mut others = 0;
        for id in ids {
            // SAFETY: env `id` is not being stepped, as the caller guarantees.
            if let Some(message) = unsafe { self.shared.state.fault.get_mut(id) }.take() {
                match first {
                    None => first = Some((id as u32, message)),
                    Some(_) => others += 1,
                }
            }
        }
        let (env_id, message) = first.unwrap_or((0, "unknown panic".to_owned()));
        Error::EnvPanicked {
            env_id,
            message,
            others,
        }
    }

    fn sync_batch(&mut self) -> Batch<'_, O> {
        // SAFETY: the epoch is over, so no thread writes the rows until the next call on the
        // pool, which the returned batch's borrow of `self` excludes.
        unsafe { self.out.batch(&self.shared.rows, 0, self.config.num_envs) }
    }
}

impl<O: Obs> Drop for EnvPool<O> {
    fn drop(&mut self) {
        self.shared.shut_down();
        for worker in self.workers.drain(..) {
            // A worker never panics (envs' panics are caught); if one did, there is nothing to add.
            let _ = worker.join();
        }
    }
}
