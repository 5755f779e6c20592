//! Steady-state stepping of MuJoCo pools allocates nothing on the Rust side (MuJoCo itself works
//! in the arena of each env's mjData, allocated once by mj_makeData).
//!
//! Its own test binary without libtest's harness (nothing else runs while the global allocator
//! counts), built with the `mujoco` feature only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hone_envs::{AutoReset, EnvPool, PoolConfig};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations during `steps` steps of a pool warmed up past several episode ends.
fn allocations_in_steady_state(config: PoolConfig, steps: usize) -> usize {
    let mut pool = EnvPool::new(config).expect("pool");
    let rows = pool.batch_size();
    let per_row = pool.action_space().flat_len();
    // Actions in [-1.5, 1.5], beyond the bounds too; drawn before counting.
    let actions: Vec<f32> = (0..rows * per_row * 8)
        .map(|i| ((i * 7919) % 3001) as f32 / 1000.0 - 1.5)
        .collect();
    let mut env_ids: Vec<u32> = Vec::with_capacity(rows);
    let mut run = |pool: &mut EnvPool, steps: usize| {
        for step in 0..steps {
            let range = (step % 8) * rows * per_row..(step % 8 + 1) * rows * per_row;
            if pool.is_async() {
                let batch = pool.recv().expect("recv");
                env_ids.clear();
                env_ids.extend_from_slice(batch.env_id);
                pool.send(&actions[range], &env_ids).expect("send");
            } else {
                pool.step(&actions[range]).expect("step");
            }
        }
    };
    if pool.is_async() {
        pool.async_reset().expect("async_reset");
    } else {
        pool.reset().expect("reset");
    }
    run(&mut pool, 60);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run(&mut pool, steps);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

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
        let allocations = allocations_in_steady_state(config, 100);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations in 100 steady-state steps of {label}"
        );
        println!("ok: 0 allocations in 100 steps of {label}");
    }
}
