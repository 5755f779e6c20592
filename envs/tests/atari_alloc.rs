//! `AtariEnv` steps and resets, and `EnvPool<u8>` steps of Atari tasks in sync and async mode,
//! allocate nothing on the Rust side (feature `atari`). Its own test
//! binary without libtest's harness, so nothing else allocates while the global allocator counts.
//! ALE's C++ code allocates through malloc directly and is not counted.

#[path = "common/counting.rs"]
mod counting;

use counting::allocations;
use hone_envs::atari::{AtariEnv, AtariOptions};
use hone_envs::{EnvPool, PoolConfig};

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
        let before = allocations();
        let (mut ends, mut resets) = (0, 0);
        for _ in 0..2000 {
            let step = env.step(next_action(), &mut obs).unwrap();
            ends += usize::from(step.terminated || step.truncated);
            resets += usize::from(step.elapsed_step == 0);
        }
        env.reset(&mut obs).unwrap();
        let allocations = allocations() - before;
        assert!(ends > 0 && resets > 0, "{game}: no episode ended");
        assert_eq!(
            allocations, 0,
            "{game}: {allocations} allocations in 2000 steps"
        );
        println!("ok: {game}: 0 allocations in 2000 steps ({ends} episode ends)");
    }
    pools();
}

/// Sync and async pools, 1 and 2 threads, past episode ends and the pool's autoresets.
fn pools() {
    for (batch_size, threads) in [(4, 1), (4, 2), (2, 2)] {
        let config = PoolConfig::new("Breakout-v5", 4)
            .batch_size(batch_size)
            .num_threads(threads)
            .max_episode_steps(100)
            .option("episodic_life", true);
        let mut pool = EnvPool::<u8>::make(config).unwrap();
        let actions: Vec<i64> = (0..64).map(|i| (i * 7 % 11 % 4) as i64).collect();
        let mut env_ids: Vec<u32> = Vec::with_capacity(4);
        let mut ends = 0;
        let mut run = |pool: &mut EnvPool<u8>, steps: usize| {
            for step in 0..steps {
                let at = step % 16 * 4;
                if pool.is_async() {
                    let batch = pool.recv().unwrap();
                    ends += batch.truncated.iter().filter(|&&t| t).count();
                    env_ids.clear();
                    env_ids.extend_from_slice(batch.env_id);
                    pool.send(&actions[at..at + batch_size], &env_ids).unwrap();
                } else {
                    let batch = pool.step(&actions[at..at + 4]).unwrap();
                    ends += batch.truncated.iter().filter(|&&t| t).count();
                }
            }
        };
        if pool.is_async() {
            pool.async_reset().unwrap();
        } else {
            pool.reset().unwrap();
        }
        run(&mut pool, 200);
        let before = allocations();
        run(&mut pool, 600);
        let allocations = allocations() - before;
        assert!(ends > 0, "no episode ended");
        assert_eq!(allocations, 0, "pool batch {batch_size}, {threads} threads");
        println!("ok: Breakout-v5 pool, batch {batch_size}, {threads} threads: 0 allocations");
    }
}
