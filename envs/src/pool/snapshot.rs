//! Checkpoints: a pool's complete state, saved and restored.

use super::EnvPool;
use super::kernel::SavedEnv;
use crate::env::Obs;
use crate::error::{Error, Result};

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
    /// `Env::save_state`; empty for envs saved as bytes.
    pub state: Vec<f64>,
    /// `Env::save_bytes` (Atari's emulator state); empty for envs saved as numbers.
    #[cfg_attr(feature = "serde", serde(default))]
    pub bytes: Vec<u8>,
    /// `Pcg64::to_words`.
    pub rng: [u64; 4],
    pub elapsed: u32,
    pub running_return: f64,
    pub needs_reset: bool,
}

impl<O: Obs> EnvPool<O> {
    /// The pool's complete state — every env's state and random generator, its step count,
    /// running return and pending reset — for a checkpoint. Needs a reset pool with nothing in
    /// flight; the env type must support `Env::save_state` or `Env::save_bytes`.
    pub fn snapshot(&self) -> Result<PoolSnapshot> {
        self.check_quiescent("snapshot()")?;
        let st = &self.shared.state;
        let envs = (0..self.config.num_envs)
            .map(|id| {
                // SAFETY: no step is in progress and no env is in flight (checked above), so the
                // caller owns every env and its bookkeeping.
                unsafe {
                    let saved = self.shared.stepper.save_env(id).ok_or_else(|| {
                        Error::Snapshot(format!(
                            "task `{}`: its env type does not support checkpoints (Env::save_state)",
                            self.config.task_id
                        ))
                    })?;
                    Ok(EnvSnapshot {
                        state: saved.state,
                        bytes: saved.bytes,
                        rng: saved.rng,
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
                    .load_env(
                        id,
                        &SavedEnv {
                            state: env.state.clone(),
                            bytes: env.bytes.clone(),
                            rng: env.rng,
                        },
                    )
                    .map_err(|e| Error::Snapshot(format!("env {id}: {e}")))?;
                *st.elapsed.get_mut(id) = env.elapsed;
                *st.running_return.get_mut(id) = env.running_return;
                *st.needs_reset.get_mut(id) = env.needs_reset;
            }
        }
        self.has_reset = true;
        Ok(())
    }

    pub(super) fn check_quiescent(&self, operation: &'static str) -> Result<()> {
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
}
