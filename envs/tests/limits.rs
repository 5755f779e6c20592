//! Settings at the edge of what fits: seeds past 2^64 and pools larger than the machine are
//! errors or exact values, never a wrapped seed or a process that exits.

use hone_envs::{EnvPool, PoolConfig};

/// numpy 2.3.5: `Generator(PCG64(SeedSequence(2**64))).uniform(-0.05, 0.05, size=4)`, the
/// state of gymnasium's `CartPole-v1` after `reset(seed=2**64)`.
const CARTPOLE_RESET_SEED_2_POW_64: [f64; 4] = [
    -0.005076118118833239,
    -0.010895836166453843,
    0.007696878532114884,
    -0.021050102552226682,
];

#[test]
fn seed_plus_env_index_does_not_wrap_past_u64() {
    // gymnasium's vector envs seed env i with the Python int seed + i
    // (gymnasium/vector/sync_vector_env.py, reset): env 1 of seed 2^64 - 1 gets 2^64, not 0.
    for num_threads in [1, 2] {
        let config = PoolConfig::new("CartPole-v1", 2)
            .seed(u64::MAX)
            .num_threads(num_threads);
        let mut pool = EnvPool::new(config).unwrap();
        let batch = pool.reset().unwrap();
        let want = CARTPOLE_RESET_SEED_2_POW_64.map(|v| v as f32);
        assert_eq!(batch.observation(1), want, "env 1, {num_threads} thread(s)");
        let mut wrapped = EnvPool::new(PoolConfig::new("CartPole-v1", 1).seed(0)).unwrap();
        assert_ne!(
            batch.observation(1),
            wrapped.reset().unwrap().observation(0)
        );
    }
}

#[cfg(feature = "mujoco")]
#[test]
fn a_mujoco_pool_too_large_for_the_machine_is_refused() {
    // A MuJoCo env owns its mjData (buffer and arena, far more than its rows of the pool's
    // buffers): a pool sized by the rows alone made MuJoCo print "Could not allocate memory" and
    // exit the process. 2 KiB per env fits the rows and not the simulations.
    let available = hone_envs::memory::available_bytes().expect("Linux reports MemAvailable");
    let num_envs = (available / 2048).min(u64::from(u32::MAX / 2)) as usize;
    let err = EnvPool::new(PoolConfig::new("HalfCheetah-v5", num_envs))
        .expect_err("a pool of that many simulations does not fit")
        .to_string();
    assert!(
        err.contains(&format!("num_envs = {num_envs} needs about")) && err.contains("available"),
        "{err}"
    );
}
