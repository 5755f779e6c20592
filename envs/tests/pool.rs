//! EnvPool: semantics against a naive one-env-at-a-time reference, determinism across thread
//! counts and modes, the registry, bad input and faults.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hone_envs::rng::Pcg64;
use hone_envs::{
    Action, Actions, AutoReset, Batch, CartPole, Env, EnvPool, Error, PoolConfig, Registry, Space,
    StepOutcome, registry,
};

// ---- test envs ----

/// A walk on the integers: action `a` in 0..3 moves by `a - 1`; terminates at +-`bound`. Starts
/// at a random offset, and adds a little rng noise to the reward, so the pool's generator
/// plumbing shows in the trajectories.
#[derive(Clone)]
struct Walk {
    bound: i64,
    position: i64,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            bound: 4,
            position: 0,
        }
    }
}

impl Env for Walk {
    fn observation_space(&self) -> Space {
        Space::uniform_box(-10.0, 10.0, &[2])
    }
    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }
    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.position = (rng.next_u64() % 3) as i64 - 1;
        obs[0] = self.position as f32;
        obs[1] = -1.0;
    }
    fn step(&mut self, action: Action<'_>, rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let Action::Discrete(a) = action else {
            panic!("Walk takes Discrete actions")
        };
        self.position += a - 1;
        obs[0] = self.position as f32;
        obs[1] = a as f32;
        let noise = rng.next_f64() * 1e-3;
        StepOutcome {
            reward: self.position as f64 + noise,
            terminated: self.position.abs() >= self.bound,
        }
    }
}

/// Never terminates; panics when given action 2 (a bug in a user's env).
#[derive(Clone, Default)]
struct Fragile {
    steps: u32,
}

impl Env for Fragile {
    fn observation_space(&self) -> Space {
        Space::uniform_box(0.0, 1e6, &[1])
    }
    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }
    fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [f32]) {
        self.steps = 0;
        obs[0] = 0.0;
    }
    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let Action::Discrete(a) = action else {
            panic!("Fragile takes Discrete actions")
        };
        if a == 2 {
            panic!("boom at step {}", self.steps);
        }
        self.steps += 1;
        obs[0] = self.steps as f32;
        StepOutcome {
            reward: 1.0,
            terminated: false,
        }
    }
}

/// MultiDiscrete([2, 5]): the observation echoes the action.
#[derive(Clone, Default)]
struct Echo;

impl Env for Echo {
    fn observation_space(&self) -> Space {
        Space::uniform_box(0.0, 5.0, &[2])
    }
    fn action_space(&self) -> Space {
        Space::MultiDiscrete { nvec: vec![2, 5] }
    }
    fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [f32]) {
        obs.fill(0.0);
    }
    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let Action::MultiDiscrete(a) = action else {
            panic!("Echo takes MultiDiscrete actions")
        };
        obs[0] = a[0] as f32;
        obs[1] = a[1] as f32;
        StepOutcome {
            reward: (a[0] + a[1]) as f64,
            terminated: false,
        }
    }
}

/// An env whose step costs about `STEP_COST` of busy CPU (as a MuJoCo env's does) and records
/// the thread that ran it; its observation counts its steps.
struct Costly {
    steps: u32,
    threads: Arc<Mutex<HashSet<std::thread::ThreadId>>>,
}

const STEP_COST: Duration = Duration::from_micros(100);

impl Env for Costly {
    fn observation_space(&self) -> Space {
        Space::uniform_box(0.0, 1e6, &[1])
    }
    fn action_space(&self) -> Space {
        Space::Discrete { n: 2 }
    }
    fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [f32]) {
        self.steps = 0;
        obs[0] = 0.0;
    }
    fn step(&mut self, _action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        let start = Instant::now();
        while start.elapsed() < STEP_COST {
            std::hint::spin_loop();
        }
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        self.steps += 1;
        obs[0] = self.steps as f32;
        StepOutcome {
            reward: 0.0,
            terminated: false,
        }
    }
}

// ---- the naive reference: one env, the pool's documented semantics spelled out ----

#[derive(Clone, Debug, PartialEq)]
struct Transition {
    obs: Vec<f32>,
    reward: f32,
    terminated: bool,
    truncated: bool,
    elapsed: u32,
    /// (return, length, final observation in same-step mode) of an episode that just finished.
    episode: Option<(f64, u32, Vec<f32>)>,
}

struct Reference<E> {
    env: E,
    rng: Pcg64,
    obs: Vec<f32>,
    elapsed: u32,
    episode_return: f64,
    needs_reset: bool,
    max_steps: u32,
    autoreset: AutoReset,
}

impl<E: Env> Reference<E> {
    fn new(env: E, seed: u64, max_steps: u32, autoreset: AutoReset) -> Self {
        let obs = vec![0.0; env.observation_space().flat_len()];
        Self {
            env,
            rng: Pcg64::from_seed(seed),
            obs,
            elapsed: 0,
            episode_return: 0.0,
            needs_reset: true,
            max_steps,
            autoreset,
        }
    }

    fn step(&mut self, action: Action<'_>) -> Transition {
        if self.needs_reset {
            self.env.reset(&mut self.rng, &mut self.obs);
            self.needs_reset = false;
            self.elapsed = 0;
            self.episode_return = 0.0;
            return Transition {
                obs: self.obs.clone(),
                reward: 0.0,
                terminated: false,
                truncated: false,
                elapsed: 0,
                episode: None,
            };
        }
        let outcome = self.env.step(action, &mut self.rng, &mut self.obs);
        self.elapsed += 1;
        self.episode_return += outcome.reward;
        let truncated = self.elapsed >= self.max_steps;
        let mut episode = None;
        if outcome.terminated || truncated {
            match self.autoreset {
                AutoReset::NextStep => {
                    episode = Some((self.episode_return, self.elapsed, Vec::new()));
                    self.needs_reset = true;
                }
                AutoReset::SameStep => {
                    episode = Some((self.episode_return, self.elapsed, self.obs.clone()));
                    self.env.reset(&mut self.rng, &mut self.obs);
                    self.elapsed = 0;
                    self.episode_return = 0.0;
                }
            }
        }
        Transition {
            obs: self.obs.clone(),
            reward: outcome.reward as f32,
            terminated: outcome.terminated,
            truncated,
            elapsed: self.elapsed,
            episode,
        }
    }
}

/// The transitions of a batch, per row, with its episode entries attached to their rows.
fn transitions(batch: &Batch<'_>) -> Vec<(u32, Transition)> {
    let episodes = batch.episodes;
    let obs_len = batch.obs_len;
    let mut next_episode = 0;
    let rows = (0..batch.len())
        .map(|row| {
            let env_id = batch.env_id[row];
            let episode = (batch.terminated[row] || batch.truncated[row]).then(|| {
                let k = next_episode;
                next_episode += 1;
                assert_eq!(
                    episodes.env_id[k], env_id,
                    "episode entries follow row order"
                );
                let final_obs = match episodes.final_observation {
                    [] => Vec::new(),
                    all => all[k * obs_len..(k + 1) * obs_len].to_vec(),
                };
                (episodes.episode_return[k], episodes.length[k], final_obs)
            });
            let transition = Transition {
                obs: batch.observation(row).to_vec(),
                reward: batch.reward[row],
                terminated: batch.terminated[row],
                truncated: batch.truncated[row],
                elapsed: batch.elapsed_step[row],
                episode,
            };
            (env_id, transition)
        })
        .collect();
    assert_eq!(
        next_episode,
        episodes.len(),
        "one episode entry per finished row"
    );
    rows
}

/// A deterministic action for env `env_id` on its `step`-th step.
fn discrete_action(env_id: u32, step: usize, n: i64) -> i64 {
    let mut z = (u64::from(env_id) << 32 | step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 29;
    (z % n as u64) as i64
}

fn continuous_action(env_id: u32, step: usize) -> f32 {
    discrete_action(env_id, step, 4001) as f32 / 1000.0 - 2.0
}

fn discrete_n(space: &Space) -> i64 {
    match space {
        Space::Discrete { n } => *n,
        _ => 1,
    }
}

/// Runs `f` on another thread and fails the test if it takes longer than `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver
        .recv_timeout(limit)
        .expect("the pool hung (or the test panicked)")
}

fn walk_pool(config: PoolConfig, max_steps: u32) -> EnvPool {
    EnvPool::from_factory(config, max_steps, Walk::default).unwrap()
}

// ---- sync semantics and determinism ----

/// Sync trajectories of `num_envs` envs over `steps` steps, per env.
fn sync_trajectories<E: Env + Clone + 'static>(
    config: PoolConfig,
    max_steps: u32,
    make_env: fn() -> E,
    steps: usize,
) -> Vec<Vec<Transition>> {
    let mut pool = EnvPool::from_factory(config.clone(), max_steps, make_env).unwrap();
    let n = config.num_envs;
    let mut per_env = vec![Vec::new(); n];
    let first = pool.reset().unwrap();
    assert_eq!(first.env_id, (0..n as u32).collect::<Vec<_>>().as_slice());
    for (env_id, t) in transitions(&first) {
        per_env[env_id as usize].push(t);
    }
    let continuous = matches!(pool.action_space(), Space::Box { .. });
    let n_actions = discrete_n(pool.action_space());
    let mut int_actions = vec![0i64; n];
    let mut float_actions = vec![0f32; n];
    for step in 1..steps {
        for env_id in 0..n {
            int_actions[env_id] = discrete_action(env_id as u32, step, n_actions);
            float_actions[env_id] = continuous_action(env_id as u32, step);
        }
        let actions: Actions<'_> = if continuous {
            (&float_actions).into()
        } else {
            (&int_actions).into()
        };
        let batch = pool.step(actions).unwrap();
        assert_eq!(batch.len(), n);
        for (env_id, t) in transitions(&batch) {
            per_env[env_id as usize].push(t);
        }
    }
    per_env
}

/// The reference's trajectories for the same actions as `sync_trajectories`.
fn reference_trajectories<E: Env>(
    config: &PoolConfig,
    max_steps: u32,
    make_env: fn() -> E,
    steps: usize,
) -> Vec<Vec<Transition>> {
    (0..config.num_envs)
        .map(|env_id| {
            let mut reference = Reference::new(
                make_env(),
                config.seed + env_id as u64,
                max_steps,
                config.autoreset,
            );
            let continuous = matches!(reference.env.action_space(), Space::Box { .. });
            let n_actions = discrete_n(&reference.env.action_space());
            (0..steps)
                .map(|step| {
                    let float = [continuous_action(env_id as u32, step)];
                    let action = if continuous {
                        Action::Continuous(&float)
                    } else {
                        Action::Discrete(discrete_action(env_id as u32, step, n_actions))
                    };
                    reference.step(action)
                })
                .collect()
        })
        .collect()
}

#[test]
fn sync_pool_matches_the_one_env_reference_in_both_autoreset_modes() {
    for autoreset in [AutoReset::NextStep, AutoReset::SameStep] {
        let config = PoolConfig::new("walk", 37)
            .num_threads(2)
            .seed(11)
            .autoreset(autoreset);
        let got = sync_trajectories(config.clone(), 9, Walk::default, 120);
        let want = reference_trajectories(&config, 9, Walk::default, 120);
        assert_eq!(got, want, "{autoreset:?}");
        // The run exercised what it claims to: terminations, truncations and both kinds of rows.
        let all: Vec<&Transition> = got.iter().flatten().collect();
        assert!(all.iter().any(|t| t.terminated && !t.truncated));
        assert!(all.iter().any(|t| t.truncated));
        if autoreset == AutoReset::SameStep {
            assert!(
                all.iter()
                    .all(|t| t.episode.as_ref().is_none_or(|e| !e.2.is_empty()))
            );
        }
    }
}

#[test]
fn builtin_envs_in_the_pool_match_the_reference() {
    let config = PoolConfig::new("CartPole-v1", 20)
        .num_threads(2)
        .seed(5)
        .max_episode_steps(30);
    let got = sync_trajectories(config.clone(), 30, CartPole::default, 200);
    assert_eq!(
        got,
        reference_trajectories(&config, 30, CartPole::default, 200)
    );
    let config = PoolConfig::new("Pendulum-v1", 20)
        .num_threads(2)
        .seed(5)
        .autoreset(AutoReset::SameStep);
    let got = sync_trajectories(config.clone(), 50, hone_envs::Pendulum::default, 120);
    assert_eq!(
        got,
        reference_trajectories(&config, 50, hone_envs::Pendulum::default, 120)
    );
}

#[test]
fn sync_batches_are_bit_identical_whatever_the_thread_count() {
    // 300 envs: several chunks per thread, so the worker threads really take part.
    let run = |threads: usize| {
        let config = PoolConfig::new("CartPole-v1", 300)
            .num_threads(threads)
            .seed(7);
        let mut pool = hone_envs::make("CartPole-v1", config).unwrap();
        assert_eq!(pool.num_threads(), threads);
        let mut log: Vec<u64> = Vec::new();
        let mut record = |batch: &Batch<'_>| {
            log.extend(batch.observations.iter().map(|x| u64::from(x.to_bits())));
            log.extend(batch.reward.iter().map(|x| u64::from(x.to_bits())));
            log.extend(
                batch
                    .terminated
                    .iter()
                    .zip(batch.truncated)
                    .map(|(&a, &b)| u64::from(a) | u64::from(b) << 1),
            );
            log.extend(batch.elapsed_step.iter().map(|&e| u64::from(e)));
            log.extend(batch.episodes.episode_return.iter().map(|r| r.to_bits()));
            log.extend(batch.episodes.env_id.iter().map(|&e| u64::from(e)));
        };
        record(&pool.reset().unwrap());
        let mut actions = vec![0i64; 300];
        for step in 1..600 {
            for (env_id, action) in actions.iter_mut().enumerate() {
                *action = discrete_action(env_id as u32, step, 2);
            }
            record(&pool.step(&actions).unwrap());
        }
        log
    };
    let one = run(1);
    assert!(one.len() > 600 * 300 * 4);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    assert_eq!(one, run(4));
}

// ---- async mode ----

/// Runs an async pool until every env has taken `steps` steps; returns each env's first
/// `steps` transitions. Actions depend on the env and its own step count only.
fn async_trajectories(config: PoolConfig, max_steps: u32, steps: usize) -> Vec<Vec<Transition>> {
    let n = config.num_envs;
    let mut pool = walk_pool(config, max_steps);
    assert!(pool.is_async());
    let mut per_env: Vec<Vec<Transition>> = vec![Vec::new(); n];
    pool.async_reset().unwrap();
    let mut ids = Vec::new();
    let mut actions = Vec::new();
    let batch_size = pool.batch_size();
    while per_env.iter().any(|t| t.len() < steps) {
        let batch = pool.recv().unwrap();
        assert_eq!(batch.len(), batch_size);
        ids.clear();
        actions.clear();
        for (env_id, t) in transitions(&batch) {
            let env = &mut per_env[env_id as usize];
            env.push(t);
            ids.push(env_id);
            actions.push(discrete_action(env_id, env.len(), 3));
        }
        pool.send(&actions, &ids).unwrap();
    }
    per_env.iter_mut().for_each(|t| t.truncate(steps));
    per_env
}

#[test]
fn async_pool_yields_the_reference_trajectory_of_every_env() {
    let steps = 60;
    for (num_envs, batch_size, threads) in [
        (10, 1, 1),
        (10, 3, 2),
        (64, 32, 2),
        (100, 37, 3),
        (200, 100, 2),
    ] {
        for autoreset in [AutoReset::NextStep, AutoReset::SameStep] {
            let config = PoolConfig::new("walk", num_envs)
                .batch_size(batch_size)
                .num_threads(threads)
                .seed(3)
                .autoreset(autoreset);
            let got = async_trajectories(config.clone(), 7, steps);
            let want = reference_trajectories(&config, 7, Walk::default, steps);
            assert_eq!(
                got, want,
                "{num_envs} envs, batch {batch_size}, {threads} threads, {autoreset:?}"
            );
        }
    }
}

#[test]
fn async_batches_hold_distinct_envs_and_recv_returns_each_sent_env_once() {
    let mut pool = walk_pool(
        PoolConfig::new("walk", 50).batch_size(20).num_threads(2),
        100,
    );
    pool.async_reset().unwrap();
    let mut received = vec![0u32; 50];
    let mut ids = Vec::new();
    for _ in 0..40 {
        let batch = pool.recv().unwrap();
        ids.clear();
        ids.extend_from_slice(batch.env_id);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "a batch never holds an env twice");
        for &id in &ids {
            received[id as usize] += 1;
        }
        assert_eq!(pool.in_flight(), 30);
        pool.send(&vec![1i64; ids.len()], &ids).unwrap();
    }
    assert_eq!(received.iter().sum::<u32>(), 800);
    assert!(
        received.iter().all(|&r| r > 0),
        "every env comes back: {received:?}"
    );
}

// ---- time limits and episode statistics ----

#[test]
fn time_limit_truncates_and_the_episode_is_reported_once() {
    // Fragile never terminates: only the time limit ends its episodes.
    let mut pool = EnvPool::from_factory(
        PoolConfig::new("fragile", 3).max_episode_steps(4),
        1000,
        Fragile::default,
    )
    .unwrap();
    assert_eq!(pool.max_episode_steps(), 4);
    pool.reset().unwrap();
    let actions = [0i64, 1, 0];
    for step in 1..=4 {
        let batch = pool.step(&actions).unwrap();
        assert_eq!(batch.elapsed_step, &[step; 3]);
        assert_eq!(batch.truncated, &[step == 4; 3]);
        assert_eq!(batch.terminated, &[false; 3]);
        assert_eq!(batch.episodes.len(), if step == 4 { 3 } else { 0 });
    }
    let batch = pool.step(&actions).unwrap();
    assert_eq!(
        batch.elapsed_step, &[0; 3],
        "the step after truncation resets"
    );
    assert_eq!(batch.reward, &[0.0; 3]);
    assert_eq!(batch.observations, &[0.0; 3]);
    assert!(batch.episodes.is_empty());
}

#[test]
fn episode_returns_and_lengths_are_those_of_the_finished_episodes() {
    let mut pool =
        EnvPool::from_factory(PoolConfig::new("fragile", 2), 3, Fragile::default).unwrap();
    pool.reset().unwrap();
    for _ in 0..2 {
        pool.step(&[0i64, 0]).unwrap();
    }
    let batch = pool.step(&[1i64, 1]).unwrap();
    assert_eq!(batch.episodes.env_id, &[0, 1]);
    assert_eq!(batch.episodes.episode_return, &[3.0, 3.0]);
    assert_eq!(batch.episodes.length, &[3, 3]);
    assert!(
        batch.episodes.final_observation.is_empty(),
        "next-step mode keeps it in the row"
    );
}

// ---- registry ----

#[test]
fn builtin_tasks_have_gymnasium_time_limits_and_unknown_ids_list_the_known_ones() {
    let registry = Registry::with_builtins();
    for (id, steps) in [
        ("CartPole-v1", 500),
        ("Acrobot-v1", 500),
        ("MountainCar-v0", 200),
        ("MountainCarContinuous-v0", 999),
        ("Pendulum-v1", 200),
    ] {
        assert_eq!(registry.max_episode_steps(id).unwrap(), steps);
        let pool = registry.make(PoolConfig::new(id, 2)).unwrap();
        assert_eq!(pool.max_episode_steps(), steps, "{id}");
    }
    let error = hone_envs::make("CartPole-v0", PoolConfig::default()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::UnknownTask { .. }));
    for id in [
        "CartPole-v0",
        "CartPole-v1",
        "Acrobot-v1",
        "MountainCar-v0",
        "MountainCarContinuous-v0",
        "Pendulum-v1",
    ] {
        assert!(message.contains(id), "{message}");
    }
}

#[test]
fn registered_envs_are_made_by_id_with_their_time_limit_or_the_override() {
    registry::register("Walk-test-v0", 6, Walk::default).unwrap();
    assert_eq!(
        registry::register("Walk-test-v0", 6, Walk::default),
        Err(Error::DuplicateTask("Walk-test-v0".into()))
    );
    assert!(registry::task_ids().contains(&"Walk-test-v0".to_owned()));
    let pool = EnvPool::new(PoolConfig::new("Walk-test-v0", 3)).unwrap();
    assert_eq!(pool.max_episode_steps(), 6);
    // `make`'s id wins over the config's.
    let pool = hone_envs::make(
        "Walk-test-v0",
        PoolConfig::new("CartPole-v1", 3).max_episode_steps(2),
    )
    .unwrap();
    assert_eq!(pool.max_episode_steps(), 2);
    assert_eq!(pool.action_space(), &Space::Discrete { n: 3 });
    assert_eq!(pool.config().task_id, "Walk-test-v0");
}

#[test]
fn pools_and_errors_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<EnvPool>();
    assert_send::<Error>();
    let mut pool = EnvPool::new(PoolConfig::new("CartPole-v1", 64).num_threads(2)).unwrap();
    pool.reset().unwrap();
    let pool = std::thread::spawn(move || {
        pool.step(&[0i64; 64]).unwrap();
        pool
    })
    .join()
    .unwrap();
    assert_eq!(pool.num_envs(), 64);
}

#[test]
fn bad_configs_are_errors_naming_the_value() {
    let cases = [
        (PoolConfig::new("CartPole-v1", 0), "num_envs = 0"),
        (
            PoolConfig::new("CartPole-v1", 4).batch_size(0),
            "batch_size = 0",
        ),
        (
            PoolConfig::new("CartPole-v1", 4).batch_size(5),
            "batch_size = 5",
        ),
        (
            PoolConfig::new("CartPole-v1", 4).max_episode_steps(0),
            "max_episode_steps = 0",
        ),
    ];
    for (config, needle) in cases {
        let message = EnvPool::new(config).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
    }
    let pool = EnvPool::new(PoolConfig::new("CartPole-v1", 4).num_threads(0)).unwrap();
    assert!(pool.num_threads() >= 1);
}

// ---- bad input: each a clear error, and the pool goes on as if it had not happened ----

/// Steps `pool` and `twin` (same config) with the same actions and checks identical batches.
fn assert_in_step(pool: &mut EnvPool, twin: &mut EnvPool, actions: &[i64]) {
    let a = transitions(&pool.step(actions).unwrap());
    let b = transitions(&twin.step(actions).unwrap());
    assert_eq!(a, b);
}

#[test]
fn sync_bad_input_is_rejected_without_touching_the_pool() {
    let config = PoolConfig::new("walk", 64).num_threads(2).seed(9);
    let mut pool = walk_pool(config.clone(), 20);
    let mut twin = walk_pool(config, 20);

    assert_eq!(
        pool.step(&[0i64; 64]).unwrap_err(),
        Error::NotReset {
            operation: "step()",
            reset: "reset()"
        }
    );
    pool.reset().unwrap();
    twin.reset().unwrap();
    let good = vec![1i64; 64];
    assert_in_step(&mut pool, &mut twin, &good);

    let error = pool.step(&[1i64; 63]).unwrap_err();
    assert_eq!(
        error,
        Error::ActionCount {
            expected: 64,
            rows: 64,
            per_row: 1,
            got: 63
        }
    );
    let mut bad = good.clone();
    bad[17] = 3;
    let error = pool.step(&bad).unwrap_err();
    assert_eq!(
        error,
        Error::ActionOutOfRange {
            env_id: 17,
            value: 3,
            n: 3
        }
    );
    assert_eq!(
        error.to_string(),
        "action 3 for env 17 is out of range 0..3"
    );
    bad[17] = -1;
    assert_eq!(
        pool.step(&bad).unwrap_err(),
        Error::ActionOutOfRange {
            env_id: 17,
            value: -1,
            n: 3
        }
    );
    let error = pool.step(&vec![0.5f32; 64]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ActionType {
                expected: "i64",
                got: "f32",
                ..
            }
        ),
        "{error}"
    );
    assert!(matches!(
        pool.send(&good, &[0]).unwrap_err(),
        Error::WrongMode {
            operation: "send()",
            ..
        }
    ));
    assert!(matches!(
        pool.recv().unwrap_err(),
        Error::WrongMode {
            operation: "recv()",
            ..
        }
    ));
    assert!(matches!(
        pool.async_reset().unwrap_err(),
        Error::WrongMode { .. }
    ));

    // None of that moved the pool: it still steps in lockstep with its twin.
    for _ in 0..30 {
        assert_in_step(&mut pool, &mut twin, &good);
    }
}

#[test]
fn nan_in_a_continuous_action_is_rejected() {
    let mut pool = EnvPool::new(PoolConfig::new("Pendulum-v1", 8).num_threads(1)).unwrap();
    pool.reset().unwrap();
    let mut actions = vec![0.5f32; 8];
    actions[5] = f32::NAN;
    let error = pool.step(&actions).unwrap_err();
    assert_eq!(
        error,
        Error::ActionNaN {
            env_id: 5,
            element: 0
        }
    );
    assert!(error.to_string().contains("env 5"));
    assert!(matches!(
        pool.step(&[0i64; 8]).unwrap_err(),
        Error::ActionType {
            expected: "f32",
            got: "i64",
            ..
        }
    ));
    actions[5] = 0.0;
    assert_eq!(pool.step(&actions).unwrap().len(), 8);
}

#[test]
fn multi_discrete_actions_are_checked_per_element() {
    let mut pool = EnvPool::from_factory(PoolConfig::new("echo", 3), 10, || Echo).unwrap();
    pool.reset().unwrap();
    let batch = pool.step(&[1i64, 4, 0, 0, 1, 2]).unwrap();
    assert_eq!(batch.observations, &[1.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
    assert_eq!(batch.reward, &[5.0, 0.0, 3.0]);
    let error = pool.step(&[1i64, 4, 0, 5, 1, 2]).unwrap_err();
    assert_eq!(
        error,
        Error::MultiDiscreteActionOutOfRange {
            env_id: 1,
            element: 1,
            value: 5,
            n: 5
        }
    );
    assert_eq!(
        pool.step(&[1i64, 4, 0]).unwrap_err(),
        Error::ActionCount {
            expected: 6,
            rows: 3,
            per_row: 2,
            got: 3
        }
    );
}

#[test]
fn async_bad_input_is_rejected_without_touching_the_pool() {
    let mut pool = walk_pool(PoolConfig::new("walk", 8).batch_size(4).num_threads(2), 50);
    assert!(matches!(
        pool.send(&[0i64], &[0]).unwrap_err(),
        Error::NotReset { .. }
    ));
    assert_eq!(pool.recv().unwrap_err(), Error::NothingInFlight);
    assert!(matches!(
        pool.reset().unwrap_err(),
        Error::WrongMode {
            operation: "reset()",
            ..
        }
    ));
    assert!(matches!(
        pool.step(&[0i64; 8]).unwrap_err(),
        Error::WrongMode {
            operation: "step()",
            ..
        }
    ));

    pool.async_reset().unwrap();
    assert_eq!(
        pool.async_reset().unwrap_err(),
        Error::EnvInFlight { env_id: 0 }
    );
    let first = pool.recv().unwrap();
    let ids: Vec<u32> = first.env_id.to_vec();
    let idle: Vec<u32> = ids.clone();
    let busy: Vec<u32> = (0..8).filter(|id| !ids.contains(id)).collect();

    assert_eq!(
        pool.send(&[1i64], &[busy[0]]).unwrap_err(),
        Error::EnvInFlight { env_id: busy[0] }
    );
    assert_eq!(
        pool.send(&[1i64, 1], &[idle[0], idle[0]]).unwrap_err(),
        Error::DuplicateEnvId { env_id: idle[0] }
    );
    assert_eq!(
        pool.send(&[1i64], &[8]).unwrap_err(),
        Error::EnvIdOutOfRange {
            env_id: 8,
            num_envs: 8
        }
    );
    assert_eq!(
        pool.send(&[1i64, 1], &[idle[0]]).unwrap_err(),
        Error::ActionCount {
            expected: 1,
            rows: 1,
            per_row: 1,
            got: 2
        }
    );
    assert_eq!(pool.send(&[] as &[i64], &[]).unwrap_err(), Error::NoEnvIds);
    assert_eq!(
        pool.send(&[1i64, 7], &[idle[0], idle[1]]).unwrap_err(),
        Error::ActionOutOfRange {
            env_id: idle[1],
            value: 7,
            n: 3
        }
    );
    assert_eq!(pool.in_flight(), 4, "failed sends left nothing in flight");

    // The other 4 are in flight: a second recv gets exactly them, then nothing is left.
    let second: Vec<u32> = pool.recv().unwrap().env_id.to_vec();
    let mut sorted = second.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, busy);
    assert_eq!(pool.recv().unwrap_err(), Error::NothingInFlight);
    pool.send(&[1i64; 3], &second[..3]).unwrap();
    assert_eq!(
        pool.recv().unwrap_err(),
        Error::NotEnoughInFlight {
            in_flight: 3,
            batch_size: 4
        }
    );
    pool.send(&[1i64], &idle[..1]).unwrap();
    let batch = pool.recv().unwrap();
    assert_eq!(batch.len(), 4);
    assert!(
        batch
            .env_id
            .iter()
            .all(|id| second[..3].contains(id) || *id == idle[0])
    );
}

// ---- faults ----

#[test]
fn a_panicking_env_is_an_error_from_step_and_the_pool_goes_on() {
    within(Duration::from_secs(60), || {
        for threads in [1, 2] {
            let mut pool = EnvPool::from_factory(
                PoolConfig::new("fragile", 64).num_threads(threads),
                1000,
                Fragile::default,
            )
            .unwrap();
            pool.reset().unwrap();
            let mut actions = vec![0i64; 64];
            pool.step(&actions).unwrap();
            actions[3] = 2;
            actions[50] = 2;
            let error = pool.step(&actions).unwrap_err();
            assert_eq!(
                error,
                Error::EnvPanicked {
                    env_id: 3,
                    message: "boom at step 1".into(),
                    others: 1
                }
            );
            assert!(
                error.to_string().contains("env 3 panicked: boom at step 1"),
                "{error}"
            );
            actions[3] = 0;
            actions[50] = 0;
            let batch = pool.step(&actions).unwrap();
            // The panicked envs reset; the others went on through both steps.
            assert_eq!(batch.elapsed_step[3], 0);
            assert_eq!(batch.elapsed_step[50], 0);
            assert_eq!(batch.elapsed_step[4], 3);
            assert_eq!(batch.elapsed_step[63], 3);
            let batch = pool.step(&actions).unwrap();
            assert_eq!(batch.elapsed_step[3], 1);
            assert_eq!(batch.elapsed_step[4], 4);
        }
    });
}

#[test]
fn a_panicking_env_is_an_error_from_recv_and_the_others_are_still_delivered() {
    within(Duration::from_secs(60), || {
        let mut pool = EnvPool::from_factory(
            PoolConfig::new("fragile", 64).batch_size(32).num_threads(2),
            1000,
            Fragile::default,
        )
        .unwrap();
        pool.async_reset().unwrap();
        let first: Vec<u32> = pool.recv().unwrap().env_id.to_vec();
        let mut actions = vec![0i64; 32];
        actions[5] = 2;
        pool.send(&actions, &first).unwrap();
        // 64 in flight: the 32 never stepped since the reset, and `first`, env first[5] of which
        // panics. Receive until the error shows up; nothing may be lost.
        let mut delivered = Vec::new();
        let mut error = None;
        for _ in 0..3 {
            match pool.recv() {
                Ok(batch) => delivered.extend_from_slice(batch.env_id),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.expect("the panic surfaced as an error");
        assert_eq!(
            error,
            Error::EnvPanicked {
                env_id: first[5],
                message: "boom at step 0".into(),
                others: 0
            }
        );
        // 63 envs are still owed; 32 of them in the next batch (what the failed recv gathered
        // comes first).
        assert_eq!(pool.in_flight() + delivered.len(), 63);
        while pool.in_flight() >= 32 {
            delivered.extend_from_slice(pool.recv().unwrap().env_id);
        }
        // The panicked env can be sent again: it comes back as a reset row.
        let need = 32 - pool.in_flight();
        let to_send: Vec<u32> = std::iter::once(first[5])
            .chain(delivered.iter().copied())
            .take(need)
            .collect();
        pool.send(&vec![0i64; to_send.len()], &to_send).unwrap();
        let batch = pool.recv().unwrap();
        let row = batch
            .env_id
            .iter()
            .position(|&id| id == first[5])
            .expect("the reset env is in the batch");
        assert_eq!(batch.elapsed_step[row], 0);
        assert_eq!(batch.reward[row], 0.0);
    });
}

#[test]
fn dropping_pools_mid_flight_does_not_hang() {
    within(Duration::from_secs(30), || {
        for threads in [2, 3] {
            let mut pool = walk_pool(
                PoolConfig::new("walk", 256)
                    .batch_size(64)
                    .num_threads(threads),
                50,
            );
            pool.async_reset().unwrap();
            let ids: Vec<u32> = pool.recv().unwrap().env_id.to_vec();
            pool.send(&vec![1i64; ids.len()], &ids).unwrap();
            drop(pool); // envs still in flight
            let mut pool = walk_pool(PoolConfig::new("walk", 256).num_threads(threads), 50);
            pool.reset().unwrap();
            drop(pool);
        }
    });
}

#[test]
fn async_faults_in_wrapping_batches_lose_no_env_and_keep_rows_intact() {
    within(Duration::from_secs(60), || {
        // 13 envs, batches of 5: the row ring wraps every few batches. One env at a time is made
        // to panic; each delivered row must be its env's next step (Fragile's observation counts
        // its steps), whatever rows the fault handling moved.
        for threads in [1, 2, 3] {
            let (n, batch_size) = (13usize, 5usize);
            let config = PoolConfig::new("fragile", n)
                .batch_size(batch_size)
                .num_threads(threads);
            let mut pool = EnvPool::from_factory(config, 100_000, Fragile::default).unwrap();
            pool.async_reset().unwrap();
            let mut outstanding = vec![true; n];
            let mut next_elapsed = vec![0u32; n];
            let mut doomed: Option<u32> = None;
            let (mut faults, mut rows) = (0, 0);
            for round in 0..400 {
                let batch = match pool.recv() {
                    Ok(batch) => batch,
                    Err(Error::EnvPanicked { env_id, others, .. }) => {
                        assert_eq!(Some(env_id), doomed.take(), "round {round}");
                        assert_eq!(others, 0);
                        outstanding[env_id as usize] = false;
                        next_elapsed[env_id as usize] = 0; // its next row is a reset
                        faults += 1;
                        continue;
                    }
                    Err(error) => panic!("round {round}: {error}"),
                };
                for row in 0..batch.len() {
                    let id = batch.env_id[row] as usize;
                    assert!(
                        outstanding[id],
                        "env {id} delivered without being in flight"
                    );
                    assert_eq!(
                        batch.elapsed_step[row], next_elapsed[id],
                        "env {id}, round {round}"
                    );
                    assert_eq!(batch.observation(row), &[next_elapsed[id] as f32]);
                    outstanding[id] = false;
                    next_elapsed[id] += 1;
                    rows += 1;
                }
                // Send back every idle env (the panicked ones too), one of them doomed now and then.
                let idle: Vec<u32> = (0..n as u32)
                    .filter(|&id| !outstanding[id as usize])
                    .collect();
                let mut actions = vec![0i64; idle.len()];
                if doomed.is_none() && round % 3 == 0 {
                    let k = round % idle.len();
                    // An env sent after a panic resets, ignoring its action: pick a stepping one.
                    if next_elapsed[idle[k] as usize] > 0 {
                        actions[k] = 2;
                        doomed = Some(idle[k]);
                    }
                }
                for &id in &idle {
                    outstanding[id as usize] = true;
                }
                pool.send(&actions, &idle).unwrap();
            }
            assert!(faults > 20, "{faults} faults");
            assert!(rows > 1000, "{rows} rows");
        }
    });
}

#[test]
fn costly_envs_of_a_small_sync_pool_are_shared_by_its_threads() {
    within(Duration::from_secs(60), || {
        // Four envs of ~100 us a step on two threads: fewer envs than the 16 a claim takes when
        // envs are cheap, so only the pool's timing of the steps lets the worker take part. Every
        // env is stepped exactly once per step (its observation counts its steps).
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::clone(&threads);
        let config = PoolConfig::new("costly", 4).num_threads(2);
        let mut pool = EnvPool::from_factory(config, 100_000, move || Costly {
            steps: 0,
            threads: Arc::clone(&seen),
        })
        .unwrap();
        assert_eq!(pool.num_threads(), 2);
        pool.reset().unwrap();
        let actions = [0i64; 4];
        for step in 1..=200u32 {
            let batch = pool.step(&actions[..]).unwrap();
            for row in 0..4 {
                assert_eq!(batch.env_id[row], row as u32);
                assert_eq!(
                    batch.observation(row),
                    &[step as f32],
                    "env {row}, step {step}"
                );
            }
            if step >= 20 && threads.lock().unwrap().len() == 2 {
                return;
            }
        }
        panic!(
            "200 steps of costly envs ran on {} thread(s), not 2",
            threads.lock().unwrap().len()
        );
    });
}

#[test]
fn costly_envs_of_a_small_async_pool_are_shared_by_its_threads() {
    within(Duration::from_secs(60), || {
        // Eight envs of ~100 us a step, batches of four, on two threads: a send is smaller than
        // the 16 envs a job takes when envs are cheap, so only the pool's timing of the steps
        // hands some of them to the worker. Each received env has stepped once per send.
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::clone(&threads);
        let config = PoolConfig::new("costly", 8).batch_size(4).num_threads(2);
        let mut pool = EnvPool::from_factory(config, 100_000, move || Costly {
            steps: 0,
            threads: Arc::clone(&seen),
        })
        .unwrap();
        assert_eq!(pool.num_threads(), 2);
        pool.async_reset().unwrap();
        let mut sent = [0u32; 8];
        let mut ids = Vec::new();
        for round in 1..=400 {
            let batch = pool.recv().unwrap();
            ids.clear();
            for row in 0..batch.len() {
                let id = batch.env_id[row] as usize;
                assert_eq!(
                    batch.observation(row),
                    &[sent[id] as f32],
                    "env {id}, round {round}"
                );
                ids.push(id as u32);
            }
            for &id in &ids {
                sent[id as usize] += 1;
            }
            pool.send(&vec![0i64; ids.len()], &ids).unwrap();
            if round >= 20 && threads.lock().unwrap().len() == 2 {
                return;
            }
        }
        panic!(
            "400 batches of costly envs ran on {} thread(s), not 2",
            threads.lock().unwrap().len()
        );
    });
}

/// A pool too large for the machine is an error naming num_envs, before anything is allocated
/// (2^31 - 1 CartPole envs used to abort in the allocator).
#[test]
fn a_pool_too_large_for_the_machine_is_refused() {
    let err = EnvPool::new(PoolConfig::new("CartPole-v1", u32::MAX as usize / 2))
        .expect_err("a pool of 2^31 - 1 envs does not fit")
        .to_string();
    assert!(
        err.contains("num_envs = 2147483647 needs about") && err.contains("available"),
        "{err}"
    );
}
