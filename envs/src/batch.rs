//! What goes into a pool (`Actions`) and what comes out (`Batch`), both as contiguous arrays.

/// A batch of actions, one row per env: `i64` for `Discrete` (one value a row) and
/// `MultiDiscrete` (`nvec.len()` values a row) action spaces, `f32` for `Box` ones
/// (`flat_len()` values a row). Build one with `.into()` from a slice, array or `Vec`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Actions<'a> {
    Int(&'a [i64]),
    Float(&'a [f32]),
}

impl Actions<'_> {
    pub fn len(&self) -> usize {
        match self {
            Actions::Int(values) => values.len(),
            Actions::Float(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Actions::Int(_) => "i64",
            Actions::Float(_) => "f32",
        }
    }
}

impl<'a> From<&'a [i64]> for Actions<'a> {
    fn from(values: &'a [i64]) -> Self {
        Actions::Int(values)
    }
}

impl<'a> From<&'a [f32]> for Actions<'a> {
    fn from(values: &'a [f32]) -> Self {
        Actions::Float(values)
    }
}

impl<'a> From<&'a Vec<i64>> for Actions<'a> {
    fn from(values: &'a Vec<i64>) -> Self {
        Actions::Int(values)
    }
}

impl<'a> From<&'a Vec<f32>> for Actions<'a> {
    fn from(values: &'a Vec<f32>) -> Self {
        Actions::Float(values)
    }
}

impl<'a, const N: usize> From<&'a [i64; N]> for Actions<'a> {
    fn from(values: &'a [i64; N]) -> Self {
        Actions::Int(values)
    }
}

impl<'a, const N: usize> From<&'a [f32; N]> for Actions<'a> {
    fn from(values: &'a [f32; N]) -> Self {
        Actions::Float(values)
    }
}

/// One batch of transitions, borrowed from the pool's preallocated buffers (valid until the next
/// call on the pool). Row `i` belongs to env `env_id[i]`; in sync mode rows are in env order.
/// `O` is the observation element (`f32`, or `u8` for Atari).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, O = f32> {
    /// `[len(), obs_len]`, row-major.
    pub observations: &'a [O],
    /// Elements per observation row (`observation_space().flat_len()`).
    pub obs_len: usize,
    pub reward: &'a [f32],
    pub terminated: &'a [bool],
    /// Set when the episode reached `max_episode_steps` (as gymnasium's `TimeLimit`, possibly
    /// together with `terminated`).
    pub truncated: &'a [bool],
    pub env_id: &'a [u32],
    /// Steps taken in the episode whose observation is in the row: 0 on a reset row (and, in
    /// same-step autoreset, on the row of a finished episode, whose observation is the new one).
    pub elapsed_step: &'a [u32],
    /// `info["lives"]` per row, for envs that report it (`Env::has_info`, Atari); else empty.
    pub lives: &'a [i32],
    /// `info["reward"]`, the unclipped reward, per row, as `lives`; else empty.
    pub raw_reward: &'a [f32],
    /// The episodes that finished in this batch, in row order.
    pub episodes: Episodes<'a, O>,
}

impl<'a, O> Batch<'a, O> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.reward.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reward.is_empty()
    }

    /// The observation of row `row`.
    pub fn observation(&self, row: usize) -> &'a [O] {
        &self.observations[row * self.obs_len..(row + 1) * self.obs_len]
    }
}

/// Statistics of the episodes that finished in a batch, one entry per finished episode.
#[derive(Clone, Copy, Debug)]
pub struct Episodes<'a, O = f32> {
    pub env_id: &'a [u32],
    /// Undiscounted sum of the episode's rewards, accumulated in f64.
    pub episode_return: &'a [f64],
    /// Steps in the episode.
    pub length: &'a [u32],
    /// Same-step autoreset only: `[len(), obs_len]`, the last observation of each finished
    /// episode (the batch row already holds the next episode's first one). Empty in next-step mode,
    /// where the batch row itself is that last observation.
    pub final_observation: &'a [O],
}

impl<O> Episodes<'_, O> {
    pub fn len(&self) -> usize {
        self.env_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.env_id.is_empty()
    }
}
