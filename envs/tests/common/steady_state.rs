//! The steady-state stepping whose allocations the test binaries `alloc` and `mujoco_alloc`
//! count, with the allocator of `counting.rs` (which the binary includes as `mod counting`).
//!
//! Included with `#[path = "common/steady_state.rs"] mod steady_state;`.

use hone_envs::{EnvPool, PoolConfig, Space};

/// Random actions for `batches` batches of `rows` rows, drawn before counting starts: valid
/// discrete actions, Box actions in [-2, 2) (beyond most tasks' bounds too).
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

/// Allocations during `steps` steps (sync) or recv/send rounds (async) of a new pool, after
/// `warm_up` of them: enough to pass several episode ends and autoresets.
pub fn allocations_in_steady_state(config: PoolConfig, warm_up: usize, steps: usize) -> usize {
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
    run(&mut pool, warm_up);
    let before = crate::counting::allocations();
    run(&mut pool, steps);
    crate::counting::allocations() - before
}
