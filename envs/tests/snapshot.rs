//! `EnvPool::snapshot` / `restore`: a restored pool continues exactly where the saved one did.

use hone_envs::rng::Pcg64;
use hone_envs::{
    Action, AutoReset, Batch, Env, EnvPool, Error, PoolConfig, Space, StepOutcome, registry,
};

/// Everything a batch reports, owned.
fn record(batch: &Batch<'_>) -> Vec<String> {
    let e = &batch.episodes;
    vec![
        format!("{:?}", batch.observations),
        format!("{:?}", batch.reward),
        format!("{:?} {:?}", batch.terminated, batch.truncated),
        format!("{:?} {:?}", batch.env_id, batch.elapsed_step),
        format!(
            "{:?} {:?} {:?} {:?}",
            e.env_id, e.episode_return, e.length, e.final_observation
        ),
    ]
}

fn actions(pool: &EnvPool, step: usize) -> (Vec<i64>, Vec<f32>) {
    let n = pool.num_envs();
    match pool.action_space() {
        Space::Discrete { n: k } => (
            (0..n)
                .map(|i| ((i * 7 + step * 3) % *k as usize) as i64)
                .collect(),
            Vec::new(),
        ),
        space => {
            let len = space.flat_len() * n;
            (
                Vec::new(),
                (0..len)
                    .map(|i| ((i * 13 + step * 5) % 17) as f32 / 8.0 - 1.0)
                    .collect(),
            )
        }
    }
}

fn step(pool: &mut EnvPool, t: usize) -> Vec<String> {
    let (ints, floats) = actions(pool, t);
    let batch = if ints.is_empty() {
        pool.step(&floats)
    } else {
        pool.step(&ints)
    };
    record(&batch.unwrap())
}

#[test]
fn a_restored_pool_continues_exactly_for_every_builtin_task() {
    // The built-in ids only: other tests register tasks of their own in the global registry.
    for (task, _) in registry::BUILTIN_TASKS {
        let task = task.to_owned();
        for autoreset in [AutoReset::NextStep, AutoReset::SameStep] {
            // Short time limits so episodes end (and reset, drawing from the RNGs) around the snapshot.
            let config = PoolConfig::new(task.as_str(), 6)
                .seed(9)
                .num_threads(2)
                .max_episode_steps(37)
                .autoreset(autoreset);
            let mut pool = registry::make(&task, config.clone()).unwrap();
            pool.reset().unwrap();
            for t in 0..100 {
                step(&mut pool, t);
            }
            let snapshot = pool.snapshot().unwrap();
            let expected: Vec<_> = (100..250).map(|t| step(&mut pool, t)).collect();

            let mut restored = registry::make(&task, config.seed(12345)).unwrap();
            restored.reset().unwrap();
            restored.restore(&snapshot).unwrap();
            let got: Vec<_> = (100..250).map(|t| step(&mut restored, t)).collect();
            assert_eq!(
                got, expected,
                "{task} {autoreset:?}: the restored pool diverged"
            );
        }
    }
}

#[test]
fn restore_rejects_a_snapshot_of_another_pool() {
    let mut pool = registry::make("CartPole-v1", PoolConfig::new("CartPole-v1", 4)).unwrap();
    pool.reset().unwrap();
    let snapshot = pool.snapshot().unwrap();
    let mut bigger = registry::make("CartPole-v1", PoolConfig::new("CartPole-v1", 5)).unwrap();
    let err = bigger.restore(&snapshot).unwrap_err().to_string();
    assert!(
        err.contains("4 envs of `CartPole-v1`, this pool has 5 envs"),
        "{err}"
    );
    let mut other = registry::make("Pendulum-v1", PoolConfig::new("Pendulum-v1", 4)).unwrap();
    assert!(other.restore(&snapshot).is_err());

    let mut corrupt = snapshot.clone();
    corrupt.envs[2].state.pop();
    let err = pool.restore(&corrupt).unwrap_err().to_string();
    assert!(
        err.contains("env 2: expected 5 state values, got 4"),
        "{err}"
    );
    // The pool is still usable.
    pool.step(&[0i64, 1, 0, 1]).unwrap();
}

#[test]
fn snapshot_needs_a_reset_pool_with_nothing_in_flight() {
    let pool = registry::make("CartPole-v1", PoolConfig::new("CartPole-v1", 4)).unwrap();
    assert!(matches!(pool.snapshot(), Err(Error::NotReset { .. })));

    let mut pool = registry::make(
        "CartPole-v1",
        PoolConfig::new("CartPole-v1", 4).batch_size(2),
    )
    .unwrap();
    pool.async_reset().unwrap();
    let err = pool.snapshot().unwrap_err().to_string();
    assert!(err.contains("in flight"), "{err}");
    pool.recv().unwrap();
    pool.recv().unwrap();
    assert!(pool.snapshot().is_ok());
}

/// An env that does not implement `save_state`.
#[derive(Default)]
struct Opaque;

impl Env for Opaque {
    fn observation_space(&self) -> Space {
        Space::uniform_box(0.0, 1.0, &[1])
    }
    fn action_space(&self) -> Space {
        Space::Discrete { n: 2 }
    }
    fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [f32]) {
        obs[0] = 0.0;
    }
    fn step(&mut self, _action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        obs[0] = 1.0;
        StepOutcome {
            reward: 0.0,
            terminated: false,
        }
    }
}

#[test]
fn an_env_without_save_state_cannot_be_snapshot() {
    let mut pool =
        EnvPool::from_factory(PoolConfig::new("Opaque-v0", 2), 10, Opaque::default).unwrap();
    pool.reset().unwrap();
    let err = pool.snapshot().unwrap_err().to_string();
    assert!(err.contains("does not support checkpoints"), "{err}");
}
