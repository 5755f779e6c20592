//! `AtariEnv` steps and resets allocate nothing on the Rust side (feature `atari`). Its own test
//! binary without libtest's harness, so nothing else allocates while the global allocator counts.
//! ALE's C++ code allocates through malloc directly and is not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hone_envs::atari::{AtariEnv, AtariOptions};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: a block of this allocator with its layout, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a block of this allocator with its layout, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn main() {
    for (game, episodic_life) in [("Breakout", true), ("Pong", false), ("SpaceInvaders", true)] {
        let options = AtariOptions {
            episodic_life,
            reward_clip: true,
            max_episode_steps: 500,
            ..AtariOptions::default()
        };
        let mut env = AtariEnv::new(game, &options, 3).unwrap();
        let mut obs = vec![0u8; 4 * 84 * 84];
        let n = env.num_actions() as u64;
        let mut state = 1u64;
        let mut next_action = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % n) as i64
        };
        env.reset(&mut obs).unwrap();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let (mut ends, mut resets) = (0, 0);
        for _ in 0..2000 {
            let step = env.step(next_action(), &mut obs).unwrap();
            ends += usize::from(step.terminated || step.truncated);
            resets += usize::from(step.elapsed_step == 0);
        }
        env.reset(&mut obs).unwrap();
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert!(ends > 0 && resets > 0, "{game}: no episode ended");
        assert_eq!(
            allocations, 0,
            "{game}: {allocations} allocations in 2000 steps"
        );
        println!("ok: {game}: 0 allocations in 2000 steps ({ends} episode ends)");
    }
}
