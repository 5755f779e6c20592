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

mod kernel;
mod sync;
mod workers;

use std::sync::Arc;
use std::thread::JoinHandle;

pub use kernel::AutoReset;
use kernel::{ActionRows, EnvState, Envs, Rows};
use sync::{CALLER_PATIENCE, SharedBuf};
use workers::{Shared, SyncCommand, job_parts, job_word, worker_main};

use crate::batch::{Actions, Batch, Episodes};
use crate::env::Env;
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
}

/// What [`EnvPool::snapshot`] saves: per env, its state, random generator and the pool's
/// bookkeeping of its episode.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PoolSnapshot {
    pub task_id: String,
    pub envs: Vec<EnvSnapshot>,
}

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EnvSnapshot {
    /// `Env::save_state`.
    pub state: Vec<f64>,
    /// `Pcg64::to_words`.
    pub rng: [u64; 4],
    pub elapsed: u32,
    pub running_return: f64,
    pub needs_reset: bool,
}

/// How action rows are checked and read, from the action space.
#[derive(Clone, Debug)]
enum ActionCheck {
    Discrete { n: i64 },
    MultiDiscrete { nvec: Vec<i64> },
    Continuous { len: usize },
}

impl ActionCheck {
    fn new(space: &Space) -> Result<Self> {
        let bad = |what: String| {
            Err(Error::InvalidConfig(format!(
                "the env's action space {what}"
            )))
        };
        match space {
            Space::Discrete { n } if *n > 0 => Ok(Self::Discrete { n: *n }),
            Space::Discrete { n } => bad(format!("is Discrete({n}), which holds no action")),
            Space::MultiDiscrete { nvec } if nvec.iter().all(|&n| n > 0) => {
                Ok(Self::MultiDiscrete { nvec: nvec.clone() })
            }
            Space::MultiDiscrete { nvec } => {
                bad(format!("is MultiDiscrete({nvec:?}), with an empty element"))
            }
            Space::Box { .. } => Ok(Self::Continuous {
                len: space.flat_len(),
            }),
        }
    }

    fn per_row(&self) -> usize {
        match self {
            Self::Discrete { .. } => 1,
            Self::MultiDiscrete { nvec } => nvec.len(),
            Self::Continuous { len } => *len,
        }
    }

    fn space_name(&self) -> &'static str {
        match self {
            Self::Discrete { .. } => "Discrete",
            Self::MultiDiscrete { .. } => "MultiDiscrete",
            Self::Continuous { .. } => "Box",
        }
    }

    /// Checks `actions` holds `rows` valid rows; `env_of(row)` names the env in messages.
    /// Returns where the kernel reads the rows (valid while `actions` is).
    fn validate(
        &self,
        actions: Actions<'_>,
        rows: usize,
        env_of: impl Fn(usize) -> u32,
    ) -> Result<ActionRows> {
        let per_row = self.per_row();
        if actions.len() != rows * per_row {
            return Err(Error::ActionCount {
                expected: rows * per_row,
                rows,
                per_row,
                got: actions.len(),
            });
        }
        match (self, actions) {
            (Self::Discrete { n }, Actions::Int(values)) => {
                // One vectorised pass; the search for the culprit only on failure.
                if !values.iter().all(|&value| (0..*n).contains(&value)) {
                    let row = values
                        .iter()
                        .position(|value| !(0..*n).contains(value))
                        .unwrap_or(0);
                    return Err(Error::ActionOutOfRange {
                        env_id: env_of(row),
                        value: values[row],
                        n: *n,
                    });
                }
                Ok(ActionRows::Discrete(values.as_ptr()))
            }
            (Self::MultiDiscrete { nvec }, Actions::Int(values)) => {
                for (index, &value) in values.iter().enumerate() {
                    let element = index % per_row;
                    if !(0..nvec[element]).contains(&value) {
                        return Err(Error::MultiDiscreteActionOutOfRange {
                            env_id: env_of(index / per_row),
                            element,
                            value,
                            n: nvec[element],
                        });
                    }
                }
                Ok(ActionRows::MultiDiscrete(values.as_ptr(), per_row))
            }
            (Self::Continuous { .. }, Actions::Float(values)) => {
                if values.iter().any(|value| value.is_nan()) {
                    let index = values.iter().position(|value| value.is_nan()).unwrap_or(0);
                    return Err(Error::ActionNaN {
                        env_id: env_of(index / per_row),
                        element: index % per_row,
                    });
                }
                Ok(ActionRows::Continuous(values.as_ptr(), per_row))
            }
            (check, actions) => Err(Error::ActionType {
                space: check.space_name(),
                expected: match check {
                    Self::Continuous { .. } => "f32",
                    _ => "i64",
                },
                got: actions.kind(),
            }),
        }
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short rows of observations and
/// actions (a call costs more than copying a few values).
#[inline(always)]
fn copy_row<T: Copy>(dst: &mut [T], src: &[T]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match src.len() {
                $($n => dst[..$n].copy_from_slice(&src[..$n]),)*
                _ => dst.copy_from_slice(src),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8)
}

/// Copies row `k` of `values` (`per_row` wide) to row `env_ids[k]` of `buffer`.
///
/// # Safety
/// The `env_ids` are valid rows of `buffer` that no other thread accesses.
unsafe fn scatter_rows<T: Copy>(
    buffer: &SharedBuf<T>,
    values: &[T],
    env_ids: &[u32],
    per_row: usize,
) {
    debug_assert_eq!(values.len(), env_ids.len() * per_row);
    // SAFETY (both): as the caller guarantees.
    if per_row == 1 {
        for (&env_id, &value) in env_ids.iter().zip(values) {
            unsafe { *buffer.get_mut(env_id as usize) = value };
        }
    } else {
        for (&env_id, row) in env_ids.iter().zip(values.chunks_exact(per_row)) {
            let id = env_id as usize;
            copy_row(unsafe { buffer.slice_mut(id * per_row, per_row) }, row);
        }
    }
}

/// Copies row `from` of the ring over row `to`.
///
/// # Safety
/// No other thread accesses either row.
unsafe fn move_row(rows: &Rows, from: usize, to: usize) {
    let len = rows.obs_len;
    // SAFETY: as the caller guarantees.
    unsafe {
        // Distinct rows, so the two slices do not overlap.
        rows.obs
            .slice_mut(to * len, len)
            .copy_from_slice(rows.obs.slice(from * len, len));
        if !rows.final_obs.is_empty() {
            rows.final_obs
                .slice_mut(to * len, len)
                .copy_from_slice(rows.final_obs.slice(from * len, len));
        }
        *rows.reward.get_mut(to) = rows.reward.read(from);
        *rows.terminated.get_mut(to) = rows.terminated.read(from);
        *rows.truncated.get_mut(to) = rows.truncated.read(from);
        *rows.elapsed_step.get_mut(to) = rows.elapsed_step.read(from);
        *rows.env_id.get_mut(to) = rows.env_id.read(from);
        *rows.final_return.get_mut(to) = rows.final_return.read(from);
        *rows.final_length.get_mut(to) = rows.final_length.read(from);
    }
}

/// The output arrays a batch borrows besides the rows: episode statistics, and in async mode a
/// copy of the batch's rows when they wrap around the end of the row ring. Allocated once.
struct BatchBuffers {
    observations: Vec<f32>,
    reward: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    env_id: Vec<u32>,
    elapsed_step: Vec<u32>,
    episode_env_id: Vec<u32>,
    episode_return: Vec<f64>,
    episode_length: Vec<u32>,
    final_observation: Vec<f32>,
}

impl BatchBuffers {
    /// `wrap`: async mode, whose batches may wrap around the row ring.
    fn new(rows: usize, obs_len: usize, same_step: bool, wrap: bool) -> Self {
        let copied = if wrap { rows } else { 0 };
        Self {
            observations: vec![0.0; copied * obs_len],
            reward: vec![0.0; copied],
            terminated: vec![false; copied],
            truncated: vec![false; copied],
            env_id: vec![0; copied],
            elapsed_step: vec![0; copied],
            episode_env_id: Vec::with_capacity(rows),
            episode_return: Vec::with_capacity(rows),
            episode_length: Vec::with_capacity(rows),
            final_observation: Vec::with_capacity(if same_step { rows * obs_len } else { 0 }),
        }
    }

    /// The batch of `len` rows from `start` (wrapping around the ring), borrowed in place unless
    /// they wrap, with the episodes that finished in them.
    ///
    /// # Safety
    /// No thread writes these rows while the batch lives.
    unsafe fn batch<'a>(&'a mut self, rows: &'a Rows, start: usize, len: usize) -> Batch<'a> {
        let obs_len = rows.obs_len;
        let first = len.min(rows.capacity - start);
        let pieces = [(start, first), (0, len - first)];
        self.episode_env_id.clear();
        self.episode_return.clear();
        self.episode_length.clear();
        self.final_observation.clear();
        // SAFETY (this function): the rows are not written meanwhile, as the caller guarantees.
        for (piece_start, piece_len) in pieces {
            let (terminated, truncated) = unsafe {
                (
                    rows.terminated.slice(piece_start, piece_len),
                    rows.truncated.slice(piece_start, piece_len),
                )
            };
            for (offset, (&terminated, &truncated)) in terminated.iter().zip(truncated).enumerate()
            {
                if terminated | truncated {
                    unsafe { self.push_episode(rows, piece_start + offset) };
                }
            }
        }
        if first == len {
            return unsafe {
                Batch {
                    observations: rows.obs.slice(start * obs_len, len * obs_len),
                    obs_len,
                    reward: rows.reward.slice(start, len),
                    terminated: rows.terminated.slice(start, len),
                    truncated: rows.truncated.slice(start, len),
                    env_id: rows.env_id.slice(start, len),
                    elapsed_step: rows.elapsed_step.slice(start, len),
                    episodes: self.episodes(),
                }
            };
        }
        let mut row = 0;
        for (piece_start, piece_len) in pieces {
            let (from, to) = (piece_start..piece_start + piece_len, row..row + piece_len);
            unsafe {
                self.observations[to.start * obs_len..to.end * obs_len]
                    .copy_from_slice(rows.obs.slice(from.start * obs_len, piece_len * obs_len));
                self.reward[to.clone()].copy_from_slice(rows.reward.slice(from.start, piece_len));
                self.terminated[to.clone()]
                    .copy_from_slice(rows.terminated.slice(from.start, piece_len));
                self.truncated[to.clone()]
                    .copy_from_slice(rows.truncated.slice(from.start, piece_len));
                self.env_id[to.clone()].copy_from_slice(rows.env_id.slice(from.start, piece_len));
                self.elapsed_step[to.clone()]
                    .copy_from_slice(rows.elapsed_step.slice(from.start, piece_len));
            }
            row += piece_len;
        }
        Batch {
            observations: &self.observations[..len * obs_len],
            obs_len,
            reward: &self.reward[..len],
            terminated: &self.terminated[..len],
            truncated: &self.truncated[..len],
            env_id: &self.env_id[..len],
            elapsed_step: &self.elapsed_step[..len],
            episodes: self.episodes(),
        }
    }

    /// Records the episode that finished on row `row`.
    ///
    /// # Safety
    /// Row `row` is not being written.
    unsafe fn push_episode(&mut self, rows: &Rows, row: usize) {
        // SAFETY: row `row` is not being written, as the caller guarantees.
        unsafe {
            self.episode_env_id.push(rows.env_id.read(row));
            self.episode_return.push(rows.final_return.read(row));
            self.episode_length.push(rows.final_length.read(row));
            if !rows.final_obs.is_empty() {
                let len = rows.obs_len;
                let start = self.final_observation.len();
                self.final_observation.resize(start + len, 0.0);
                copy_row(
                    &mut self.final_observation[start..],
                    rows.final_obs.slice(row * len, len),
                );
            }
        }
    }

    fn episodes(&self) -> Episodes<'_> {
        Episodes {
            env_id: &self.episode_env_id,
            episode_return: &self.episode_return,
            length: &self.episode_length,
            final_observation: &self.final_observation,
        }
    }
}

/// The calling thread's bookkeeping of async mode.
struct AsyncState {
    batch_size: usize,
    /// Envs sent and not yet returned by `recv`.
    in_flight: Vec<bool>,
    in_flight_count: usize,
    /// Duplicate detection within one `send`: `send_mark[id] == send_generation`.
    send_mark: Vec<u32>,
    send_generation: u32,
    job_tail: u64,
    /// Jobs kept for the calling thread (run in `recv`): a send worth no more than one claim,
    /// which would cost more to hand to another thread than to step.
    local_jobs: std::collections::VecDeque<u64>,
    /// The absolute position of the first row of the row ring not yet returned by `recv`.
    row_head: u64,
    actions: ActionRows,
}

/// A pool of `num_envs` envs of one type, stepped by `num_threads` threads (the caller's included).
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
pub struct EnvPool {
    config: PoolConfig,
    max_episode_steps: u32,
    observation_space: Space,
    action_space: Space,
    action_check: ActionCheck,
    num_threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    has_reset: bool,
    // sync mode
    epoch: u32,
    /// What an env's step costs: sets a sync epoch's smallest claim and an async job's length.
    cost: StepCost,
    all_env_ids: Vec<u32>,
    out: BatchBuffers,
    /// `None` in sync mode.
    async_state: Option<AsyncState>,
}

impl std::fmt::Debug for EnvPool {
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

    /// Builds a pool of envs made by `factory`, `num_envs` calls of it, with the time limit
    /// `default_max_episode_steps` unless the config overrides it. `config.task_id` is only a name.
    pub fn from_factory<E: Env + 'static>(
        config: PoolConfig,
        default_max_episode_steps: u32,
        factory: impl Fn() -> E,
    ) -> Result<Self> {
        Self::try_from_factory(config, default_max_episode_steps, || Ok(factory()))
    }

    /// [`EnvPool::from_factory`] for envs whose making can fail (a MuJoCo simulation): the first
    /// error is the pool's, and the envs made so far are dropped.
    pub fn try_from_factory<E: Env + 'static>(
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
            .checked_mul(3 * std::mem::size_of::<f32>())
            .and_then(|rows| rows.checked_add(std::mem::size_of::<E>() + 64))
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
        let rows = Rows::new(num_envs, obs_len, config.autoreset);
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
    pub fn reset(&mut self) -> Result<Batch<'_>> {
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
    pub fn step<'a>(&mut self, actions: impl Into<Actions<'a>>) -> Result<Batch<'_>> {
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

    fn sync_batch(&mut self) -> Batch<'_> {
        // SAFETY: the epoch is over, so no thread writes the rows until the next call on the
        // pool, which the returned batch's borrow of `self` excludes.
        unsafe { self.out.batch(&self.shared.rows, 0, self.config.num_envs) }
    }

    // ---- async mode ----

    fn async_mode(&mut self, operation: &'static str) -> Result<&mut AsyncState> {
        match &mut self.async_state {
            Some(state) => Ok(state),
            None => Err(Error::WrongMode {
                operation,
                reason: "is for async pools (batch_size < num_envs); this pool is sync: use reset() and step()",
            }),
        }
    }

    /// Starts a reset of every env (async mode); `recv` returns the first observations. Nothing
    /// may be in flight.
    pub fn async_reset(&mut self) -> Result<()> {
        let num_envs = self.config.num_envs;
        let state = self.async_mode("async_reset()")?;
        if state.in_flight_count > 0 {
            let env_id = state.in_flight.iter().position(|&f| f).unwrap_or(0) as u32;
            return Err(Error::EnvInFlight { env_id });
        }
        for id in 0..num_envs {
            // SAFETY: nothing is in flight, so the caller owns every env's state.
            unsafe { *self.shared.state.needs_reset.get_mut(id) = true };
        }
        self.has_reset = true;
        let ids = std::mem::take(&mut self.all_env_ids);
        self.enqueue(&ids);
        self.all_env_ids = ids;
        Ok(())
    }

    /// Sends one action row per env of `env_ids` (async mode); the envs step in the background and
    /// `recv` returns them. An env whose episode finished resets instead, ignoring its action.
    pub fn send<'a>(&mut self, actions: impl Into<Actions<'a>>, env_ids: &[u32]) -> Result<()> {
        let actions = actions.into();
        let num_envs = self.config.num_envs;
        let has_reset = self.has_reset;
        let state = self.async_mode("send()")?;
        if !has_reset {
            return Err(Error::NotReset {
                operation: "send()",
                reset: "async_reset()",
            });
        }
        if env_ids.is_empty() {
            return Err(Error::NoEnvIds);
        }
        state.send_generation = state.send_generation.wrapping_add(1);
        if state.send_generation == 0 {
            state.send_mark.fill(0);
            state.send_generation = 1;
        }
        for &env_id in env_ids {
            let id = env_id as usize;
            if id >= num_envs {
                return Err(Error::EnvIdOutOfRange { env_id, num_envs });
            }
            if state.in_flight[id] {
                return Err(Error::EnvInFlight { env_id });
            }
            if state.send_mark[id] == state.send_generation {
                return Err(Error::DuplicateEnvId { env_id });
            }
            state.send_mark[id] = state.send_generation;
        }
        self.action_check
            .validate(actions, env_ids.len(), |row| env_ids[row])?;
        let per_row = self.action_check.per_row();
        // SAFETY: the envs are not in flight, so no thread reads their action rows.
        unsafe {
            match actions {
                Actions::Int(values) => {
                    scatter_rows(&self.shared.async_actions_int, values, env_ids, per_row)
                }
                Actions::Float(values) => {
                    scatter_rows(&self.shared.async_actions_float, values, env_ids, per_row)
                }
            }
        }
        self.enqueue(env_ids);
        Ok(())
    }

    /// Chains `env_ids` (valid, distinct, not in flight) into jobs and publishes them; a send
    /// worth no more than one claim (by the envs' measured cost) stays with the calling thread.
    fn enqueue(&mut self, env_ids: &[u32]) {
        let shared = &*self.shared;
        let Some(state) = self.async_state.as_mut() else {
            return;
        };
        let min_claim = self.cost.min_claim();
        let local = self.workers.is_empty() || env_ids.len() <= min_claim;
        let job_len = env_ids.len().div_ceil(self.num_threads * 2).max(min_claim);
        for chain in env_ids.chunks(job_len) {
            for pair in chain.windows(2) {
                // SAFETY: these envs are not in flight, so no thread reads their links.
                unsafe { *shared.next_link.get_mut(pair[0] as usize) = pair[1] };
            }
            let job = job_word(chain[0], chain.len() as u32);
            if local {
                state.local_jobs.push_back(job);
            } else {
                shared.write_job(state.job_tail, job);
                state.job_tail += 1;
            }
        }
        for &env_id in env_ids {
            state.in_flight[env_id as usize] = true;
        }
        state.in_flight_count += env_ids.len();
        if !local {
            shared.publish_jobs(state.job_tail);
        }
    }

    /// Returns `batch_size` envs that have finished stepping (async mode), the first to finish
    /// first; steps pending envs on the calling thread while it waits.
    pub fn recv(&mut self) -> Result<Batch<'_>> {
        self.async_mode("recv()")?;
        let shared = &*self.shared;
        let Some(state) = self.async_state.as_mut() else {
            unreachable!("checked above")
        };
        let batch_size = state.batch_size;
        if state.in_flight_count == 0 {
            return Err(Error::NothingInFlight);
        }
        if state.in_flight_count < batch_size {
            return Err(Error::NotEnoughInFlight {
                in_flight: state.in_flight_count,
                batch_size,
            });
        }
        // Every in-flight env gets a row, in order of reservation, so the next `batch_size` rows
        // will be written: wait for them, stepping pending jobs meanwhile.
        let rows = &shared.rows;
        let capacity = rows.capacity;
        let start = (state.row_head % capacity as u64) as usize;
        let (mut ready, mut row) = (0, start);
        while ready < batch_size {
            let position = state.row_head + ready as u64;
            if shared.row_ready(row, position) {
                ready += 1;
                row = if row + 1 == capacity { 0 } else { row + 1 };
            } else if let Some(job) = state.local_jobs.pop_front().or_else(|| shared.claim_job()) {
                let start = self.cost.start();
                // SAFETY: a local job is this thread's alone, a shared one was claimed just now.
                let faulted = unsafe { shared.run_job(job, state.actions) };
                let elapsed = start.map(|start| start.elapsed());
                self.cost
                    .record(elapsed, job_parts(job).1 as usize, faulted);
            } else {
                shared
                    .done
                    .wait_until(CALLER_PATIENCE, || shared.row_ready(row, position));
            }
        }
        let first = batch_size.min(capacity - start);
        let window = [(start, first), (0, batch_size - first)];
        // SAFETY (this block): the rows of the window are written and belong to received envs,
        // so no thread writes them until those envs are sent again.
        unsafe {
            if window
                .iter()
                .any(|&(from, len)| rows.faulted.slice(from, len).contains(&true))
            {
                return Err(Self::drop_faulted_rows(shared, state));
            }
            for (from, len) in window {
                for &env_id in rows.env_id.slice(from, len) {
                    state.in_flight[env_id as usize] = false;
                }
            }
        }
        state.in_flight_count -= batch_size;
        state.row_head += batch_size as u64;
        Ok(unsafe { self.out.batch(rows, start, batch_size) })
    }

    /// Takes the panicked envs' rows out of the next batch's window (keeping the others, in
    /// order, for the next `recv`) and returns the error reporting them.
    fn drop_faulted_rows(shared: &Shared, state: &mut AsyncState) -> Error {
        let rows = &shared.rows;
        let capacity = rows.capacity;
        let start = (state.row_head % capacity as u64) as usize;
        let mut first: Option<(u32, String)> = None;
        let mut faults = 0;
        // Move the good rows to the end of the window, in order; the window then starts past the
        // panicked ones.
        let mut write = state.batch_size;
        for k in (0..state.batch_size).rev() {
            let row = (start + k) % capacity;
            // SAFETY: the window's rows belong to received envs (see `recv`).
            unsafe {
                if rows.faulted.read(row) {
                    *rows.faulted.get_mut(row) = false;
                    let env_id = rows.env_id.read(row);
                    let message = shared.state.fault.get_mut(env_id as usize).take();
                    state.in_flight[env_id as usize] = false;
                    state.in_flight_count -= 1;
                    faults += 1;
                    first = Some((env_id, message.unwrap_or_default()));
                } else {
                    write -= 1;
                    if write != k {
                        move_row(rows, row, (start + write) % capacity);
                    }
                }
            }
        }
        state.row_head += write as u64;
        let (env_id, message) = first.unwrap_or_default();
        Error::EnvPanicked {
            env_id,
            message,
            others: faults - 1,
        }
    }
    /// The pool's complete state — every env's state and random generator, its step count,
    /// running return and pending reset — for a checkpoint. Needs a reset pool with nothing in
    /// flight; the env type must support `Env::save_state`.
    pub fn snapshot(&self) -> Result<PoolSnapshot> {
        self.check_quiescent("snapshot()")?;
        let st = &self.shared.state;
        let envs = (0..self.config.num_envs)
            .map(|id| {
                // SAFETY: no step is in progress and no env is in flight (checked above), so the
                // caller owns every env and its bookkeeping.
                unsafe {
                    let (state, rng) = self.shared.stepper.save_env(id).ok_or_else(|| {
                        Error::Snapshot(format!(
                            "task `{}`: its env type does not support checkpoints (Env::save_state)",
                            self.config.task_id
                        ))
                    })?;
                    Ok(EnvSnapshot {
                        state,
                        rng,
                        elapsed: *st.elapsed.get_mut(id),
                        running_return: *st.running_return.get_mut(id),
                        needs_reset: *st.needs_reset.get_mut(id),
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PoolSnapshot {
            task_id: self.config.task_id.clone(),
            envs,
        })
    }

    /// Restores a [`PoolSnapshot`] of a pool of the same task and size. The next `step` (or
    /// `send`) continues exactly where the snapshot's pool would have; the observations to act on
    /// are the caller's to keep (a batch is not part of the snapshot).
    pub fn restore(&mut self, snapshot: &PoolSnapshot) -> Result<()> {
        if snapshot.task_id != self.config.task_id || snapshot.envs.len() != self.config.num_envs {
            return Err(Error::Snapshot(format!(
                "the snapshot is of {} envs of `{}`, this pool has {} envs of `{}`",
                snapshot.envs.len(),
                snapshot.task_id,
                self.config.num_envs,
                self.config.task_id
            )));
        }
        if let Some(state) = &self.async_state
            && state.in_flight_count > 0
        {
            return Err(Error::EnvInFlight {
                env_id: state.in_flight.iter().position(|&f| f).unwrap_or(0) as u32,
            });
        }
        let st = &self.shared.state;
        for (id, env) in snapshot.envs.iter().enumerate() {
            // SAFETY: nothing is in flight and no step is in progress, so the caller owns every
            // env and its bookkeeping.
            unsafe {
                self.shared
                    .stepper
                    .load_env(id, &env.state, env.rng)
                    .map_err(|e| Error::Snapshot(format!("env {id}: {e}")))?;
                *st.elapsed.get_mut(id) = env.elapsed;
                *st.running_return.get_mut(id) = env.running_return;
                *st.needs_reset.get_mut(id) = env.needs_reset;
            }
        }
        self.has_reset = true;
        Ok(())
    }

    fn check_quiescent(&self, operation: &'static str) -> Result<()> {
        if !self.has_reset {
            let reset = if self.is_async() {
                "async_reset()"
            } else {
                "reset()"
            };
            return Err(Error::NotReset { operation, reset });
        }
        if let Some(state) = &self.async_state
            && state.in_flight_count > 0
        {
            return Err(Error::Snapshot(format!(
                "{} env(s) are in flight: recv them before taking a snapshot",
                state.in_flight_count
            )));
        }
        Ok(())
    }

    /// Envs sent and not yet received (async mode; 0 in sync mode).
    pub fn in_flight(&self) -> usize {
        self.async_state
            .as_ref()
            .map_or(0, |state| state.in_flight_count)
    }
}

impl Drop for EnvPool {
    fn drop(&mut self) {
        self.shared.shut_down();
        for worker in self.workers.drain(..) {
            // A worker never panics (envs' panics are caught); if one did, there is nothing to add.
            let _ = worker.join();
        }
    }
}
