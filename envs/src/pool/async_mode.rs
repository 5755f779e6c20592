//! Async mode: `async_reset`, `send` and `recv` (see the module docs of `pool`).

use super::EnvPool;
use super::actions::scatter_rows;
use super::kernel::ActionRows;
use super::output::move_row;
use super::sync::CALLER_PATIENCE;
use super::workers::{Shared, job_parts, job_word};
use crate::batch::{Actions, Batch};
use crate::env::Obs;
use crate::error::{Error, Result};

/// The calling thread's bookkeeping of async mode.
pub(super) struct AsyncState {
    pub(super) batch_size: usize,
    /// Envs sent and not yet returned by `recv`.
    pub(super) in_flight: Vec<bool>,
    pub(super) in_flight_count: usize,
    /// Duplicate detection within one `send`: `send_mark[id] == send_generation`.
    pub(super) send_mark: Vec<u32>,
    pub(super) send_generation: u32,
    pub(super) job_tail: u64,
    /// Jobs kept for the calling thread (run in `recv`): a send worth no more than one claim,
    /// which would cost more to hand to another thread than to step.
    pub(super) local_jobs: std::collections::VecDeque<u64>,
    /// The absolute position of the first row of the row ring not yet returned by `recv`.
    pub(super) row_head: u64,
    pub(super) actions: ActionRows,
}

impl<O: Obs> EnvPool<O> {
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
    pub fn recv(&mut self) -> Result<Batch<'_, O>> {
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
    fn drop_faulted_rows(shared: &Shared<O>, state: &mut AsyncState) -> Error {
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

    /// Envs sent and not yet received (async mode; 0 in sync mode).
    pub fn in_flight(&self) -> usize {
        self.async_state
            .as_ref()
            .map_or(0, |state| state.in_flight_count)
    }
}
