//! Steady-state stepping of MuJoCo pools allocates nothing on the Rust side (MuJoCo itself works
//! in the arena of each env's mjData, allocated once by mj_makeData).
//!
//! Its own test binary without libtest's harness (nothing else runs while the global allocator
//! counts), built with the `mujoco` feature only.

#[path = "common/counting.rs"]
mod counting;
#[path = "common/steady_state.rs"]
mod steady_state;

use hone_envs::{AutoReset, PoolConfig};
use steady_state::allocations_in_steady_state;

fn main() {
    let configs = [
        PoolConfig::new("Hopper-v5", 48)
            .num_threads(2)
            .max_episode_steps(20),
        PoolConfig::new("Ant-v5", 16)
            .num_threads(2)
            .max_episode_steps(20)
            .autoreset(AutoReset::SameStep),
        PoolConfig::new("Humanoid-v5", 16)
            .batch_size(8)
            .num_threads(2)
            .max_episode_steps(20),
        PoolConfig::new("Reacher-v5", 16).num_threads(1),
    ];
    for config in configs {
        let label = format!("{config:?}");
        // 60 steps pass several episode ends (the episodes are 20 steps long or end earlier).
        let allocations = allocations_in_steady_state(config, 60, 100);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations in 100 steady-state steps of {label}"
        );
        println!("ok: 0 allocations in 100 steps of {label}");
    }
}
