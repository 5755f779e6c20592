//! The `Env` trait: one environment instance, stepped in place inside a pool's batch buffer.

use crate::rng::Pcg64;
use crate::space::Space;

/// One action, borrowed from the pool's action batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action<'a> {
    /// For a `Discrete` action space; the pool has checked it is in range.
    Discrete(i64),
    /// For a `MultiDiscrete` action space; the pool has checked every element is in range.
    MultiDiscrete(&'a [i64]),
    /// For a `Box` action space; the pool has checked it holds no NaN. Out-of-bounds values are
    /// the env's to handle (gymnasium's envs clip).
    Continuous(&'a [f32]),
}

/// What a step returns besides the observation, which it writes in place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    pub reward: f64,
    /// The episode reached a terminal state of the MDP. Time limits are the pool's
    /// (`max_episode_steps`) and are reported as truncation.
    pub terminated: bool,
}

/// An observation element type: `f32` (classic control, MuJoCo) or `u8` (Atari frames).
pub trait Obs: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// numpy's name of the type.
    const DTYPE: &'static str;
}

impl Obs for f32 {
    const DTYPE: &'static str = "float32";
}

impl Obs for u8 {
    const DTYPE: &'static str = "uint8";
}

/// What some envs report per step beside the outcome (Atari's `info`); see [`Env::info`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepInfo {
    /// `info["lives"]`.
    pub lives: i32,
    /// `info["reward"]`: the reward before clipping.
    pub raw_reward: f32,
    /// The env's own time limit ended the episode (envpool's Atari counts steps per game).
    pub truncated: bool,
}

/// An environment. It owns its state; the pool owns the buffers it writes into and the random
/// number generator it draws from (seeded per env, so trajectories do not depend on threading).
///
/// `reset` and `step` write the observation into `obs`, the env's row of the pool's batch buffer
/// (`observation_space().flat_len()` elements of `O`, f32 by default). They must not allocate:
/// the pool's steady state allocates nothing.
pub trait Env<O: Obs = f32>: Send {
    fn observation_space(&self) -> Space;
    fn action_space(&self) -> Space;
    /// Starts a new episode with an initial state drawn from `rng`.
    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [O]);
    /// Advances one step. `rng` is there for stochastic dynamics.
    fn step(&mut self, action: Action<'_>, rng: &mut Pcg64, obs: &mut [O]) -> StepOutcome;

    /// Whether the env reports [`Env::info`]; the pool then keeps `lives` and `raw_reward`
    /// columns in its batches (empty otherwise, at no cost). Asked once, of the first env.
    fn has_info(&self) -> bool {
        false
    }

    /// The info of the latest reset or step; read after each when `has_info`.
    fn info(&self) -> StepInfo {
        StepInfo::default()
    }

    /// Bytes the env owns beyond `size_of::<Self>()` (heap buffers, a MuJoCo `mjData`): the pool
    /// checks `num_envs` times this fits in memory before it makes the other envs. 0 by default.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// The env's whole state as numbers, for checkpoints (`EnvPool::snapshot`). `None`, the
    /// default, means the env cannot be checkpointed.
    fn save_state(&self) -> Option<Vec<f64>> {
        None
    }

    /// Restores a state written by `save_state`; the error says why it does not fit.
    fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        let _ = state;
        Err("this env type does not support checkpoints".to_owned())
    }

    /// The state as bytes, for envs whose state is not numbers (an emulator's): used by
    /// `EnvPool::snapshot` when `save_state` is `None`.
    fn save_bytes(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores a state written by `save_bytes`.
    fn load_bytes(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Err("this env type does not support byte checkpoints".to_owned())
    }
}

/// `state` as an array of `N` numbers, or an error naming the lengths.
pub fn state_array<const N: usize>(state: &[f64]) -> Result<[f64; N], String> {
    state
        .try_into()
        .map_err(|_| format!("expected {N} state values, got {}", state.len()))
}
