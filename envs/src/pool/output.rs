//! The batch's output arrays besides the rows, and moving rows within the ring.

use super::actions::copy_row;
use super::kernel::Rows;
use crate::batch::{Batch, Episodes};
use crate::env::Obs;

/// Copies row `from` of the ring over row `to`.
///
/// # Safety
/// No other thread accesses either row.
pub(super) unsafe fn move_row<O: Obs>(rows: &Rows<O>, from: usize, to: usize) {
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
        if !rows.lives.is_empty() {
            *rows.lives.get_mut(to) = rows.lives.read(from);
            *rows.raw_reward.get_mut(to) = rows.raw_reward.read(from);
        }
    }
}

/// The output arrays a batch borrows besides the rows: episode statistics, and in async mode a
/// copy of the batch's rows when they wrap around the end of the row ring. Allocated once.
pub(super) struct BatchBuffers<O> {
    observations: Vec<O>,
    reward: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    env_id: Vec<u32>,
    elapsed_step: Vec<u32>,
    episode_env_id: Vec<u32>,
    episode_return: Vec<f64>,
    episode_length: Vec<u32>,
    final_observation: Vec<O>,
    lives: Vec<i32>,
    raw_reward: Vec<f32>,
}

impl<O: Obs> BatchBuffers<O> {
    /// `wrap`: async mode, whose batches may wrap around the row ring.
    pub(super) fn new(
        rows: usize,
        obs_len: usize,
        same_step: bool,
        wrap: bool,
        info: bool,
    ) -> Self {
        let copied = if wrap { rows } else { 0 };
        Self {
            observations: vec![O::default(); copied * obs_len],
            reward: vec![0.0; copied],
            terminated: vec![false; copied],
            truncated: vec![false; copied],
            env_id: vec![0; copied],
            elapsed_step: vec![0; copied],
            episode_env_id: Vec::with_capacity(rows),
            episode_return: Vec::with_capacity(rows),
            episode_length: Vec::with_capacity(rows),
            final_observation: Vec::with_capacity(if same_step { rows * obs_len } else { 0 }),
            lives: vec![0; if info { copied } else { 0 }],
            raw_reward: vec![0.0; if info { copied } else { 0 }],
        }
    }

    /// The batch of `len` rows from `start` (wrapping around the ring), borrowed in place unless
    /// they wrap, with the episodes that finished in them.
    ///
    /// # Safety
    /// No thread writes these rows while the batch lives.
    pub(super) unsafe fn batch<'a>(
        &'a mut self,
        rows: &'a Rows<O>,
        start: usize,
        len: usize,
    ) -> Batch<'a, O> {
        let info = !rows.lives.is_empty();
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
                    lives: rows.lives.slice(start, if info { len } else { 0 }),
                    raw_reward: rows.raw_reward.slice(start, if info { len } else { 0 }),
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
                if info {
                    self.lives[to.clone()].copy_from_slice(rows.lives.slice(from.start, piece_len));
                    self.raw_reward[to.clone()]
                        .copy_from_slice(rows.raw_reward.slice(from.start, piece_len));
                }
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
            lives: &self.lives[..if info { len } else { 0 }],
            raw_reward: &self.raw_reward[..if info { len } else { 0 }],
            episodes: self.episodes(),
        }
    }

    /// Records the episode that finished on row `row`.
    ///
    /// # Safety
    /// Row `row` is not being written.
    unsafe fn push_episode(&mut self, rows: &Rows<O>, row: usize) {
        // SAFETY: row `row` is not being written, as the caller guarantees.
        unsafe {
            self.episode_env_id.push(rows.env_id.read(row));
            self.episode_return.push(rows.final_return.read(row));
            self.episode_length.push(rows.final_length.read(row));
            if !rows.final_obs.is_empty() {
                let len = rows.obs_len;
                let start = self.final_observation.len();
                self.final_observation.resize(start + len, O::default());
                copy_row(
                    &mut self.final_observation[start..],
                    rows.final_obs.slice(row * len, len),
                );
            }
        }
    }

    fn episodes(&self) -> Episodes<'_, O> {
        Episodes {
            env_id: &self.episode_env_id,
            episode_return: &self.episode_return,
            length: &self.episode_length,
            final_observation: &self.final_observation,
        }
    }
}
