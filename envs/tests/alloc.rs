//! Steady-state stepping allocates nothing, and dropping a pool joins its threads.
//!
//! Its own test binary, without libtest's harness, so that nothing else runs in the process while
//! the global allocator counts and the thread list is read: `main` runs the checks one by one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hone_envs::{AutoReset, EnvPool, PoolConfig, Space};

/// Counts every allocation, on every thread (the pool's workers included).
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

/// Random valid actions, drawn before counting starts.
fn action_table(space: &Space, rows: usize, batches: usize) -> (Vec<i64>, Vec<f32>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let count = rows * space.flat_len() * batches;
    match space {
        Space::Discrete { n } => (
            (0..count).map(|_| (next() % *n as u64) as i64).collect(),
            Vec::new(),
        ),
        Space::Box { .. } => (
            Vec::new(),
            (0..count)
                .map(|_| (next() % 4000) as f32 / 1000.0 - 2.0)
                .collect(),
        ),
        Space::MultiDiscrete { .. } => unreachable!("no built-in task has MultiDiscrete actions"),
    }
}

/// Allocations during `steps` steps of a warmed-up pool.
fn allocations_in_steady_state(config: PoolConfig, steps: usize) -> usize {
    let mut pool = EnvPool::new(config).expect("pool");
    let rows = pool.batch_size();
    let per_row = pool.action_space().flat_len();
    let (int, float) = action_table(pool.action_space(), rows, 8);
    let mut env_ids: Vec<u32> = Vec::with_capacity(rows);
    let mut run = |pool: &mut EnvPool, steps: usize| {
        for step in 0..steps {
            let range = (step % 8) * rows * per_row..(step % 8 + 1) * rows * per_row;
            if pool.is_async() {
                let batch = pool.recv().expect("recv");
                env_ids.clear();
                env_ids.extend_from_slice(batch.env_id);
                if float.is_empty() {
                    pool.send(&int[range], &env_ids).expect("send");
                } else {
                    pool.send(&float[range], &env_ids).expect("send");
                }
            } else if float.is_empty() {
                pool.step(&int[range]).expect("step");
            } else {
                pool.step(&float[range]).expect("step");
            }
        }
    };
    if pool.is_async() {
        pool.async_reset().expect("async_reset");
    } else {
        pool.reset().expect("reset");
    }
    // Warm up past several episode ends and autoresets (CartPole's random episodes are short;
    // Pendulum's end at 200 steps).
    run(&mut pool, 1000);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run(&mut pool, steps);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

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
        let allocations = allocations_in_steady_state(config, 2000);
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
