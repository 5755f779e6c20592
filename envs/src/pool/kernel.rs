//! The hot loop: steps a run of envs in place, writing straight into the per-env buffers, with
//! the pool's bookkeeping (TimeLimit, episode statistics, autoreset) fused in. Generic over the env
//! type, so the env's `step` inlines; the pool reaches it through one virtual call per run.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::sync::SharedBuf;
use crate::env::{Action, Env};
use crate::rng::Pcg64;

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

/// The per-env state the pool keeps besides the envs themselves: the latest transition of each
/// env, indexed by env id. In sync mode these are the batch; in async mode `recv` gathers from them.
pub(crate) struct EnvState {
    pub obs_len: usize,
    pub max_episode_steps: u32,
    pub autoreset: AutoReset,
    pub obs: SharedBuf<f32>,
    pub reward: SharedBuf<f32>,
    pub terminated: SharedBuf<bool>,
    pub truncated: SharedBuf<bool>,
    pub elapsed: SharedBuf<u32>,
    pub running_return: SharedBuf<f64>,
    pub needs_reset: SharedBuf<bool>,
    /// Return and length of the episode that finished on the env's latest step.
    pub final_return: SharedBuf<f64>,
    pub final_length: SharedBuf<u32>,
    /// Same-step autoreset: the last observation of that episode. Empty otherwise.
    pub final_obs: SharedBuf<f32>,
    /// Set when the env panicked in its latest step; cleared by the pool once reported.
    pub fault: SharedBuf<Option<String>>,
}

impl EnvState {
    pub(crate) fn new(
        num_envs: usize,
        obs_len: usize,
        max_episode_steps: u32,
        autoreset: AutoReset,
    ) -> Self {
        let final_obs_len = match autoreset {
            AutoReset::NextStep => 0,
            AutoReset::SameStep => num_envs * obs_len,
        };
        Self {
            obs_len,
            max_episode_steps,
            autoreset,
            obs: SharedBuf::new(num_envs * obs_len, 0.0),
            reward: SharedBuf::new(num_envs, 0.0),
            terminated: SharedBuf::new(num_envs, false),
            truncated: SharedBuf::new(num_envs, false),
            elapsed: SharedBuf::new(num_envs, 0),
            running_return: SharedBuf::new(num_envs, 0.0),
            needs_reset: SharedBuf::new(num_envs, true),
            final_return: SharedBuf::new(num_envs, 0.0),
            final_length: SharedBuf::new(num_envs, 0),
            final_obs: SharedBuf::new(final_obs_len, 0.0),
            fault: SharedBuf::new(num_envs, None),
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
pub(crate) trait Stepper: Send + Sync {
    /// Steps (or resets, where `needs_reset`) every env of `run`, recording a panic as the env's
    /// `fault` and going on with the rest.
    ///
    /// # Safety
    /// The calling thread has exclusive access to the envs of `run` and to their indices of
    /// `state`; `actions` rows of those envs are valid (`None` only if they all need a reset).
    /// Returns whether any env panicked.
    unsafe fn run(&self, run: EnvRun<'_>, actions: ActionRows, state: &EnvState) -> bool;
}

struct Slot<E> {
    env: E,
    rng: Pcg64,
}

pub(crate) struct Envs<E> {
    slots: SharedBuf<Slot<E>>,
}

impl<E: Env> Envs<E> {
    pub(crate) fn new(envs: Vec<E>, seed: u64) -> Self {
        let slots = envs
            .into_iter()
            .enumerate()
            .map(|(i, env)| Slot {
                env,
                rng: Pcg64::from_seed(seed.wrapping_add(i as u64)),
            })
            .collect();
        Self {
            slots: SharedBuf::from_vec(slots),
        }
    }

    /// # Safety
    /// As `Stepper::run`, for the single env `id`.
    #[inline(always)]
    unsafe fn step_one(&self, id: usize, actions: ActionRows, st: &EnvState) {
        // SAFETY: the caller has exclusive access to env `id` and its indices of `st`.
        unsafe {
            let slot = self.slots.get_mut(id);
            let obs = st.obs.slice_mut(id * st.obs_len, st.obs_len);
            let needs_reset = st.needs_reset.get_mut(id);
            if *needs_reset {
                slot.env.reset(&mut slot.rng, obs);
                *needs_reset = false;
                *st.reward.get_mut(id) = 0.0;
                *st.terminated.get_mut(id) = false;
                *st.truncated.get_mut(id) = false;
                *st.elapsed.get_mut(id) = 0;
                *st.running_return.get_mut(id) = 0.0;
                return;
            }
            let outcome = slot.env.step(actions.row(id), &mut slot.rng, obs);
            let elapsed = st.elapsed.get_mut(id);
            *elapsed += 1;
            let running_return = st.running_return.get_mut(id);
            *running_return += outcome.reward;
            let truncated = *elapsed >= st.max_episode_steps;
            *st.reward.get_mut(id) = outcome.reward as f32;
            *st.terminated.get_mut(id) = outcome.terminated;
            *st.truncated.get_mut(id) = truncated;
            if outcome.terminated || truncated {
                *st.final_return.get_mut(id) = *running_return;
                *st.final_length.get_mut(id) = *elapsed;
                match st.autoreset {
                    AutoReset::NextStep => *needs_reset = true,
                    AutoReset::SameStep => {
                        st.final_obs
                            .slice_mut(id * st.obs_len, st.obs_len)
                            .copy_from_slice(obs);
                        slot.env.reset(&mut slot.rng, obs);
                        *elapsed = 0;
                        *running_return = 0.0;
                    }
                }
            }
        }
    }

    /// # Safety
    /// As `Stepper::run`, for the envs `ids` yields.
    unsafe fn run_ids(
        &self,
        mut ids: impl Iterator<Item = usize>,
        actions: ActionRows,
        st: &EnvState,
    ) -> bool {
        // A panic leaves the env's state unknown: record it, mark the env for a reset and go on
        // with the rest of the run. `catch_unwind` costs nothing until something panics.
        let mut faulted = false;
        loop {
            let mut current = usize::MAX;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                for id in ids.by_ref() {
                    current = id;
                    // SAFETY: forwarded from the caller.
                    unsafe { self.step_one(id, actions, st) };
                }
            }));
            match outcome {
                Ok(()) => return faulted,
                Err(payload) => {
                    faulted = true;
                    // SAFETY: env `current` belongs to this run.
                    unsafe {
                        *st.fault.get_mut(current) = Some(panic_message(payload.as_ref()));
                        *st.needs_reset.get_mut(current) = true;
                    }
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

impl<E: Env> Stepper for Envs<E> {
    unsafe fn run(&self, run: EnvRun<'_>, actions: ActionRows, st: &EnvState) -> bool {
        match run {
            // SAFETY: forwarded from the caller.
            EnvRun::Range(start, end) => unsafe { self.run_ids(start..end, actions, st) },
            EnvRun::Chain { first, len, next } => {
                let chain = ChainIter {
                    current: first,
                    left: len,
                    next,
                };
                // SAFETY: forwarded from the caller.
                unsafe { self.run_ids(chain, actions, st) }
            }
        }
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
