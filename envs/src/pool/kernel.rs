//! The hot loop: steps a run of envs in place, writing straight into the batch rows, with
//! the pool's bookkeeping (TimeLimit, episode statistics, autoreset) fused in. Generic over the env
//! type, so the env's `step` inlines; the pool reaches it through one virtual call per run.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::sync::SharedBuf;
use crate::env::{Action, Env, Obs};
use crate::rng::{Pcg64, env_seed};

/// When a finished episode's env is reset (gymnasium's `AutoresetMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoReset {
    /// The step after a finished episode is a reset step: its action is ignored, its row holds the
    /// first observation, reward 0 and no flags (gymnasium >= 1.0 and envpool).
    #[default]
    NextStep,
    /// The env resets within the step that finished the episode: the row holds the new episode's
    /// first observation, and the batch's `episodes.final_observation` holds the last one.
    SameStep,
}

/// What the pool keeps of each env besides the env itself, indexed by env id.
pub(crate) struct EnvState {
    pub max_episode_steps: u32,
    pub autoreset: AutoReset,
    pub elapsed: SharedBuf<u32>,
    pub running_return: SharedBuf<f64>,
    pub needs_reset: SharedBuf<bool>,
    /// Set when the env panicked in its latest step; taken by the pool when it reports it.
    pub fault: SharedBuf<Option<String>>,
}

impl EnvState {
    pub(crate) fn new(num_envs: usize, max_episode_steps: u32, autoreset: AutoReset) -> Self {
        Self {
            max_episode_steps,
            autoreset,
            elapsed: SharedBuf::new(num_envs, 0),
            running_return: SharedBuf::new(num_envs, 0.0),
            needs_reset: SharedBuf::new(num_envs, true),
            fault: SharedBuf::new(num_envs, None),
        }
    }
}

/// The rows steps write their transitions into, as the batch arrays lay them out. Sync mode has
/// one row per env (row = env id) and the batch borrows them all; async mode uses them as a ring
/// of rows in completion order, and a batch is `batch_size` consecutive rows of it.
pub(crate) struct Rows<O> {
    pub capacity: usize,
    pub obs_len: usize,
    pub obs: SharedBuf<O>,
    pub reward: SharedBuf<f32>,
    pub terminated: SharedBuf<bool>,
    pub truncated: SharedBuf<bool>,
    pub elapsed_step: SharedBuf<u32>,
    pub env_id: SharedBuf<u32>,
    /// Return and length of the episode that finished on the row's step.
    pub final_return: SharedBuf<f64>,
    pub final_length: SharedBuf<u32>,
    /// Same-step autoreset: the last observation of that episode. Empty otherwise.
    pub final_obs: SharedBuf<O>,
    /// `Env::info`'s lives and unclipped reward, for envs that report it; empty otherwise.
    pub lives: SharedBuf<i32>,
    pub raw_reward: SharedBuf<f32>,
    /// The row's env panicked (async mode; cleared when the row is consumed).
    pub faulted: SharedBuf<bool>,
}

impl<O: Obs> Rows<O> {
    pub(crate) fn new(capacity: usize, obs_len: usize, autoreset: AutoReset, info: bool) -> Self {
        let info_len = if info { capacity } else { 0 };
        let final_obs_len = match autoreset {
            AutoReset::NextStep => 0,
            AutoReset::SameStep => capacity * obs_len,
        };
        Self {
            capacity,
            obs_len,
            obs: SharedBuf::new(capacity * obs_len, O::default()),
            reward: SharedBuf::new(capacity, 0.0),
            terminated: SharedBuf::new(capacity, false),
            truncated: SharedBuf::new(capacity, false),
            elapsed_step: SharedBuf::new(capacity, 0),
            env_id: SharedBuf::new(capacity, 0),
            final_return: SharedBuf::new(capacity, 0.0),
            final_length: SharedBuf::new(capacity, 0),
            final_obs: SharedBuf::new(final_obs_len, O::default()),
            lives: SharedBuf::new(info_len, 0),
            raw_reward: SharedBuf::new(info_len, 0.0),
            faulted: SharedBuf::new(capacity, false),
        }
    }
}

/// Where a run reads its actions: row `env_id` of a buffer the pool has validated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ActionRows {
    /// Every env of the run is resetting.
    None,
    Discrete(*const i64),
    MultiDiscrete(*const i64, usize),
    Continuous(*const f32, usize),
}

// SAFETY: the pointers refer to action buffers that outlive every run reading them (the pool
// waits for all runs of a step before returning, and keeps its own action buffer alive) and that
// nobody writes while a run reads them.
unsafe impl Send for ActionRows {}
unsafe impl Sync for ActionRows {}

impl ActionRows {
    /// # Safety
    /// Row `env_id` exists and is not written while the returned action lives; `self` is not
    /// `None`.
    #[inline(always)]
    unsafe fn row<'a>(self, env_id: usize) -> Action<'a> {
        // SAFETY: as the caller guarantees.
        unsafe {
            match self {
                ActionRows::Discrete(values) => Action::Discrete(*values.add(env_id)),
                ActionRows::MultiDiscrete(values, per_row) => Action::MultiDiscrete(
                    std::slice::from_raw_parts(values.add(env_id * per_row), per_row),
                ),
                ActionRows::Continuous(values, per_row) => Action::Continuous(
                    std::slice::from_raw_parts(values.add(env_id * per_row), per_row),
                ),
                ActionRows::None => unreachable_action(),
            }
        }
    }
}

#[cold]
fn unreachable_action() -> ! {
    unreachable!("a run without actions may hold only resetting envs")
}

/// The envs a run steps.
#[derive(Clone, Copy)]
pub(crate) enum EnvRun<'a> {
    /// `start..end`, in sync mode.
    Range(usize, usize),
    /// `len` envs chained through `next` from `first`, in async mode (one job of a `send`).
    Chain {
        first: u32,
        len: u32,
        next: &'a SharedBuf<u32>,
    },
}

/// The type-erased face of a pool's envs.
pub(crate) trait Stepper<O>: Send + Sync {
    /// Steps (or resets, where `needs_reset`) every env of `run`, the k-th into row
    /// `first_row + k` (wrapping at the capacity), recording a panic as the env's `fault` and its
    /// row's `faulted` and going on with the rest. Returns whether any env panicked.
    ///
    /// # Safety
    /// The calling thread has exclusive access to the envs of `run`, their indices of `state` and
    /// the rows they are written into; their `actions` rows are valid (`None` only if they all
    /// need a reset).
    unsafe fn run(
        &self,
        run: EnvRun<'_>,
        first_row: usize,
        actions: ActionRows,
        state: &EnvState,
        rows: &Rows<O>,
    ) -> bool;

    /// Env `id`'s state (numbers, or else bytes) and random generator, or `None` if the env
    /// type cannot be saved.
    ///
    /// # Safety
    /// No other thread accesses env `id` meanwhile (no step in progress, the env not in flight).
    unsafe fn save_env(&self, id: usize) -> Option<SavedEnv>;

    /// Restores what `save_env` returned.
    ///
    /// # Safety
    /// As `save_env`.
    unsafe fn load_env(&self, id: usize, saved: &SavedEnv) -> Result<(), String>;
}

/// One env's checkpoint: `Env::save_state`, or `Env::save_bytes` (then `state` is empty).
pub(crate) struct SavedEnv {
    pub state: Vec<f64>,
    pub bytes: Vec<u8>,
    pub rng: [u64; 4],
}

struct Slot<E> {
    env: E,
    rng: Pcg64,
}

pub(crate) struct Envs<E> {
    slots: SharedBuf<Slot<E>>,
}

impl<E> Envs<E> {
    pub(crate) fn new(envs: Vec<E>, seed: u64) -> Self {
        let slots = envs
            .into_iter()
            .enumerate()
            .map(|(i, env)| Slot {
                env,
                rng: Pcg64::from_wide_seed(env_seed(seed, i)),
            })
            .collect();
        Self {
            slots: SharedBuf::from_vec(slots),
        }
    }

    /// # Safety
    /// As `Stepper::run`, for the single env `id` and row `row`.
    #[inline(always)]
    unsafe fn step_one<O: Obs>(
        &self,
        id: usize,
        row: usize,
        actions: ActionRows,
        st: &EnvState,
        rows: &Rows<O>,
    ) where
        E: Env<O>,
    {
        // SAFETY: the caller has exclusive access to env `id`, its indices of `st` and row `row`.
        unsafe {
            let slot = self.slots.get_mut(id);
            let obs = rows.obs.slice_mut(row * rows.obs_len, rows.obs_len);
            *rows.env_id.get_mut(row) = id as u32;
            let needs_reset = st.needs_reset.get_mut(id);
            let elapsed = st.elapsed.get_mut(id);
            let running_return = st.running_return.get_mut(id);
            if *needs_reset {
                slot.env.reset(&mut slot.rng, obs);
                *needs_reset = false;
                *elapsed = 0;
                *running_return = 0.0;
                *rows.reward.get_mut(row) = 0.0;
                *rows.terminated.get_mut(row) = false;
                *rows.truncated.get_mut(row) = false;
                *rows.elapsed_step.get_mut(row) = 0;
                if !rows.lives.is_empty() {
                    let info = slot.env.info();
                    *rows.lives.get_mut(row) = info.lives;
                    *rows.raw_reward.get_mut(row) = 0.0;
                }
                return;
            }
            let outcome = slot.env.step(actions.row(id), &mut slot.rng, obs);
            *elapsed += 1;
            *running_return += outcome.reward;
            let mut truncated = *elapsed >= st.max_episode_steps;
            if !rows.lives.is_empty() {
                let info = slot.env.info();
                *rows.lives.get_mut(row) = info.lives;
                *rows.raw_reward.get_mut(row) = info.raw_reward;
                truncated |= info.truncated;
            }
            *rows.reward.get_mut(row) = outcome.reward as f32;
            *rows.terminated.get_mut(row) = outcome.terminated;
            *rows.truncated.get_mut(row) = truncated;
            if outcome.terminated || truncated {
                *rows.final_return.get_mut(row) = *running_return;
                *rows.final_length.get_mut(row) = *elapsed;
                match st.autoreset {
                    AutoReset::NextStep => *needs_reset = true,
                    AutoReset::SameStep => {
                        rows.final_obs
                            .slice_mut(row * rows.obs_len, rows.obs_len)
                            .copy_from_slice(obs);
                        slot.env.reset(&mut slot.rng, obs);
                        *elapsed = 0;
                        *running_return = 0.0;
                    }
                }
            }
            *rows.elapsed_step.get_mut(row) = *elapsed;
        }
    }

    /// # Safety
    /// As `Stepper::run`, for the envs `ids` yields.
    unsafe fn run_ids<O: Obs>(
        &self,
        mut ids: impl Iterator<Item = usize>,
        first_row: usize,
        actions: ActionRows,
        st: &EnvState,
        rows: &Rows<O>,
    ) -> bool
    where
        E: Env<O>,
    {
        // A panic leaves the env's state unknown: record it, mark the env for a reset and go on
        // with the rest of the run. `catch_unwind` costs nothing until something panics.
        let mut faulted = false;
        let mut next_row = first_row;
        loop {
            let mut current = (usize::MAX, usize::MAX);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                for id in ids.by_ref() {
                    current = (id, next_row);
                    // SAFETY: forwarded from the caller.
                    unsafe { self.step_one(id, next_row, actions, st, rows) };
                    next_row += 1;
                    if next_row == rows.capacity {
                        next_row = 0;
                    }
                }
            }));
            match outcome {
                Ok(()) => return faulted,
                Err(payload) => {
                    faulted = true;
                    let (id, row) = current;
                    // SAFETY: env `id` and row `row` belong to this run.
                    unsafe {
                        *st.fault.get_mut(id) = Some(panic_message(payload.as_ref()));
                        *st.needs_reset.get_mut(id) = true;
                        *rows.faulted.get_mut(row) = true;
                        *rows.env_id.get_mut(row) = id as u32;
                    }
                    next_row = if row + 1 == rows.capacity { 0 } else { row + 1 };
                }
            }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

impl<O: Obs, E: Env<O>> Stepper<O> for Envs<E> {
    unsafe fn run(
        &self,
        run: EnvRun<'_>,
        first_row: usize,
        actions: ActionRows,
        st: &EnvState,
        rows: &Rows<O>,
    ) -> bool {
        match run {
            // SAFETY: forwarded from the caller.
            EnvRun::Range(start, end) => unsafe {
                self.run_ids(start..end, first_row, actions, st, rows)
            },
            EnvRun::Chain { first, len, next } => {
                let chain = ChainIter {
                    current: first,
                    left: len,
                    next,
                };
                // SAFETY: forwarded from the caller.
                unsafe { self.run_ids(chain, first_row, actions, st, rows) }
            }
        }
    }

    unsafe fn save_env(&self, id: usize) -> Option<SavedEnv> {
        // SAFETY: the caller has exclusive access to env `id`.
        let slot = unsafe { self.slots.get_mut(id) };
        let (state, bytes) = match slot.env.save_state() {
            Some(state) => (state, Vec::new()),
            None => (Vec::new(), slot.env.save_bytes()?),
        };
        Some(SavedEnv {
            state,
            bytes,
            rng: slot.rng.to_words(),
        })
    }

    unsafe fn load_env(&self, id: usize, saved: &SavedEnv) -> Result<(), String> {
        // SAFETY: the caller has exclusive access to env `id`.
        let slot = unsafe { self.slots.get_mut(id) };
        if saved.bytes.is_empty() {
            slot.env.load_state(&saved.state)?;
        } else {
            slot.env.load_bytes(&saved.bytes)?;
        }
        slot.rng = Pcg64::from_words(saved.rng);
        Ok(())
    }
}

/// Walks a job's env ids through the `next` links `send` wrote before publishing the job.
pub(crate) struct ChainIter<'a> {
    pub current: u32,
    pub left: u32,
    pub next: &'a SharedBuf<u32>,
}

impl Iterator for ChainIter<'_> {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let id = self.current;
        self.left -= 1;
        if self.left > 0 {
            // SAFETY: the links of an in-flight job are written by `send` before the job is
            // published and not again until every env of the job has been received.
            self.current = unsafe { self.next.read(id as usize) };
        }
        Some(id as usize)
    }
}
