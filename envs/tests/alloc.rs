//! Steady-state stepping allocates nothing, and dropping a pool joins its threads.
//!
//! Its own test binary, without libtest's harness, so that nothing else runs in the process while
//! the global allocator counts and the thread list is read: `main` runs the checks one by one.

#[path = "common/counting.rs"]
mod counting;
#[path = "common/steady_state.rs"]
mod steady_state;

use hone_envs::{AutoReset, EnvPool, PoolConfig};
use steady_state::allocations_in_steady_state;

fn check_steady_state_allocates_nothing() {
    let configs = [
        PoolConfig::new("CartPole-v1", 1).num_threads(1),
        PoolConfig::new("CartPole-v1", 256).num_threads(1),
        PoolConfig::new("CartPole-v1", 256).num_threads(2),
        PoolConfig::new("CartPole-v1", 256)
            .num_threads(3)
            .autoreset(AutoReset::SameStep),
        PoolConfig::new("CartPole-v1", 256)
            .batch_size(128)
            .num_threads(2),
        PoolConfig::new("CartPole-v1", 100)
            .batch_size(7)
            .num_threads(3)
            .autoreset(AutoReset::SameStep),
        PoolConfig::new("Pendulum-v1", 256)
            .num_threads(2)
            .autoreset(AutoReset::SameStep),
        PoolConfig::new("Pendulum-v1", 256)
            .batch_size(64)
            .num_threads(2),
        PoolConfig::new("Acrobot-v1", 64).num_threads(2),
    ];
    for config in configs {
        let label = format!("{config:?}");
        // A warm-up past several episode ends and autoresets (CartPole's random episodes are
        // short; Pendulum's end at 200 steps).
        let allocations = allocations_in_steady_state(config, 1000, 2000);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations in 2000 steady-state steps of {label}"
        );
        println!("ok: 0 allocations in 2000 steps of {label}");
    }
}

/// The threads of this process (Linux), by name.
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names
}

fn check_drop_joins_threads() {
    let before = thread_names();
    for (num_envs, batch_size, threads) in [(256, 256, 2), (256, 64, 4), (1024, 1024, 3)] {
        let mut pool = EnvPool::new(
            PoolConfig::new("CartPole-v1", num_envs)
                .batch_size(batch_size)
                .num_threads(threads),
        )
        .unwrap();
        // A thread names itself once it runs: give the workers a moment to start.
        let workers = || {
            thread_names()
                .iter()
                .filter(|name| name.starts_with("hone-envs"))
                .count()
        };
        let started = std::time::Instant::now();
        while workers() != threads - 1 && started.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(
            workers(),
            threads - 1,
            "the caller is one of the {threads} threads"
        );
        if pool.is_async() {
            pool.async_reset().unwrap();
            let ids = pool.recv().unwrap().env_id.to_vec();
            pool.send(&vec![0i64; ids.len()], &ids).unwrap();
        } else {
            pool.reset().unwrap();
        }
        drop(pool);
        // Joined threads leave /proc/self/task a moment after the join returns (the kernel clears
        // the joiner's futex before it releases the task), which a loaded machine can show.
        let started = std::time::Instant::now();
        while thread_names() != before && started.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(thread_names(), before, "no thread outlives its pool");
    }
    println!("ok: dropping pools joins their threads");
}

fn main() {
    if cfg!(not(target_os = "linux")) {
        println!("the thread check reads /proc: Linux only");
    }
    check_steady_state_allocates_nothing();
    if cfg!(target_os = "linux") {
        check_drop_joins_threads();
    }
}
