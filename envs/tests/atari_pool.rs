//! Atari in the pool (feature `atari`): `Pong-v5` and the other envpool ids make `EnvPool<u8>`s
//! whose frames are byte-equal to `AtariEnv`s stepped directly with seeds `seed + i`, whatever the
//! thread count or mode; options pass through the config; bad input is a clear error.

use hone_envs::atari::{AtariEnv, AtariOptions, GAMES, MAX_EPISODE_STEPS};
use hone_envs::{AutoReset, Dtype, EnvPool, Error, PoolConfig, Space, registry};

/// The action env `env` takes at its `k`-th step (an LCG; any valid stream will do).
fn action(env: usize, k: usize, n: i64) -> i64 {
    let x = (env as u64 + 1)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add((k as u64).wrapping_mul(1_442_695_040_888_963_407));
    ((x >> 33) % n as u64) as i64
}

/// One env stepped directly, with envpool's own autoreset: what pool row `env` must equal.
struct Direct {
    env: AtariEnv,
    obs: Vec<u8>,
    steps: usize,
}

impl Direct {
    fn new(game: &str, options: &AtariOptions, env_id: i32) -> Self {
        let env = AtariEnv::new(game, options, env_id).unwrap();
        let (s, h, w) = env.observation_shape();
        Self {
            env,
            obs: vec![0; s * h * w],
            steps: 0,
        }
    }

    /// The next transition: a reset first, then steps with `action(env, k)`.
    fn next(&mut self, env: usize) -> (f32, bool, bool, i32, f32) {
        let n = self.env.num_actions() as i64;
        let step = if self.steps == 0 {
            self.env.reset(&mut self.obs).unwrap()
        } else {
            self.env
                .step(action(env, self.steps - 1, n), &mut self.obs)
                .unwrap()
        };
        self.steps += 1;
        (
            step.reward,
            step.terminated,
            step.truncated,
            step.lives,
            step.info_reward,
        )
    }
}

fn options(seed: i32, max_episode_steps: i32) -> AtariOptions {
    AtariOptions {
        seed,
        max_episode_steps,
        ..AtariOptions::default()
    }
}

/// Steps a sync pool `steps` times and checks every row against the direct envs.
fn check_sync(game: &str, config: PoolConfig, direct: &AtariOptions, steps: usize) -> usize {
    let num_envs = config.num_envs;
    let mut pool = EnvPool::<u8>::make(config).unwrap();
    let n = match pool.action_space() {
        Space::Discrete { n } => *n,
        other => panic!("{other:?}"),
    };
    let mut envs: Vec<Direct> = (0..num_envs)
        .map(|i| Direct::new(game, direct, i as i32))
        .collect();
    let mut ends = 0;
    let mut actions = vec![0i64; num_envs];
    for k in 0..=steps {
        let batch = if k == 0 {
            pool.reset().unwrap()
        } else {
            for (i, a) in actions.iter_mut().enumerate() {
                *a = action(i, k - 1, n);
            }
            pool.step(&actions).unwrap()
        };
        assert_eq!(batch.lives.len(), num_envs);
        for (i, env) in envs.iter_mut().enumerate() {
            let (reward, terminated, truncated, lives, raw) = env.next(i);
            assert!(
                batch.observation(i) == env.obs.as_slice(),
                "env {i} step {k}"
            );
            assert_eq!(
                (
                    batch.reward[i],
                    batch.terminated[i],
                    batch.truncated[i],
                    batch.lives[i],
                    batch.raw_reward[i]
                ),
                (reward, terminated, truncated, lives, raw),
                "env {i} step {k}"
            );
            ends += usize::from(terminated || truncated);
        }
    }
    ends
}

#[test]
fn a_sync_pong_pool_equals_direct_envs_byte_for_byte_on_1_and_2_threads() {
    for threads in [1, 2] {
        let config = PoolConfig::new("Pong-v5", 4)
            .seed(7)
            .num_threads(threads)
            .max_episode_steps(60);
        let ends = check_sync("Pong", config, &options(7, 60), 150);
        // Every env truncated twice: the resets after them ran through the pool's autoreset.
        assert_eq!(ends, 8, "{threads} threads");
    }
}

#[test]
fn episodic_life_and_options_pass_through_the_config() {
    let config = PoolConfig::new("Breakout-v5", 2)
        .seed(3)
        .num_threads(2)
        .max_episode_steps(400)
        .option("episodic_life", true)
        .option("reward_clip", true)
        .option("stack_num", 2)
        .option("img_height", 42)
        .option("img_width", 40)
        .option("noop_max", 5)
        .option("repeat_action_probability", 0.25)
        .option("full_action_space", true);
    let direct = AtariOptions {
        episodic_life: true,
        reward_clip: true,
        stack_num: 2,
        img_height: 42,
        img_width: 40,
        noop_max: 5,
        repeat_action_probability: 0.25,
        full_action_space: true,
        ..options(3, 400)
    };
    let pool = EnvPool::<u8>::make(config.clone()).unwrap();
    assert_eq!(
        pool.observation_space(),
        &Space::uint8_box(0, 255, &[2, 42, 40])
    );
    assert_eq!(pool.observation_space().dtype(), Some(Dtype::Uint8));
    assert_eq!(pool.action_space(), &Space::Discrete { n: 18 });
    drop(pool);
    let ends = check_sync("Breakout", config, &direct, 400);
    assert!(ends >= 2, "{ends} episode ends");
}

#[test]
fn an_async_pong_pool_gives_each_env_its_direct_trajectory() {
    for threads in [1, 2] {
        let (num_envs, batch_size) = (4, 2);
        let config = PoolConfig::new("Pong-v5", num_envs)
            .batch_size(batch_size)
            .seed(11)
            .num_threads(threads)
            .max_episode_steps(40);
        let mut pool = EnvPool::<u8>::make(config).unwrap();
        let mut envs: Vec<Direct> = (0..num_envs)
            .map(|i| Direct::new("Pong", &options(11, 40), i as i32))
            .collect();
        pool.async_reset().unwrap();
        let (mut rows, mut ends) = (0, 0);
        while rows < 400 {
            let batch = pool.recv().unwrap();
            let ids = batch.env_id.to_vec();
            let mut actions = Vec::new();
            for (row, &id) in ids.iter().enumerate() {
                let env = &mut envs[id as usize];
                let (reward, terminated, truncated, lives, raw) = env.next(id as usize);
                assert!(batch.observation(row) == env.obs.as_slice(), "env {id}");
                assert_eq!(
                    (
                        batch.reward[row],
                        batch.terminated[row],
                        batch.truncated[row],
                        batch.lives[row],
                        batch.raw_reward[row]
                    ),
                    (reward, terminated, truncated, lives, raw),
                    "env {id}"
                );
                ends += usize::from(terminated || truncated);
                actions.push(action(id as usize, env.steps - 1, 6));
            }
            rows += ids.len();
            pool.send(&actions, &ids).unwrap();
        }
        assert!(ends >= 4, "{threads} threads: {ends} ends");
    }
}

#[test]
fn same_step_autoreset_keeps_the_final_frames() {
    let config = PoolConfig::new("Pong-v5", 2)
        .seed(5)
        .num_threads(1)
        .max_episode_steps(10)
        .autoreset(AutoReset::SameStep);
    let mut pool = EnvPool::<u8>::make(config).unwrap();
    pool.reset().unwrap();
    for _ in 0..9 {
        pool.step(&[0i64, 1]).unwrap();
    }
    let batch = pool.step(&[0i64, 1]).unwrap();
    assert_eq!(batch.truncated, &[true, true]);
    assert_eq!(batch.episodes.len(), 2);
    assert_eq!(batch.episodes.final_observation.len(), 2 * 4 * 84 * 84);
    assert_eq!(batch.elapsed_step, &[0, 0]);
}

/// Sticky actions (`repeat_action_probability > 0`) are left out: ALE's state does not hold the
/// previous action they repeat (`StellaEnvironment::m_player_a_action`), so no restore is exact.
#[test]
fn a_snapshot_of_an_atari_pool_resumes_byte_for_byte() {
    let config = PoolConfig::new("Breakout-v5", 3)
        .seed(9)
        .num_threads(2)
        .option("episodic_life", true);
    let mut pool = EnvPool::<u8>::make(config.clone()).unwrap();
    pool.reset().unwrap();
    let actions = |k: usize| -> Vec<i64> { (0..3).map(|i| action(i, k, 4)).collect() };
    for k in 0..30 {
        pool.step(&actions(k)).unwrap();
    }
    let snapshot = pool.snapshot().unwrap();
    assert!(
        snapshot
            .envs
            .iter()
            .all(|e| e.state.is_empty() && !e.bytes.is_empty())
    );
    let run = |pool: &mut EnvPool<u8>| -> Vec<u8> {
        let mut frames = Vec::new();
        for k in 30..200 {
            frames.extend_from_slice(pool.step(&actions(k)).unwrap().observations);
        }
        frames
    };
    let first = run(&mut pool);
    pool.restore(&snapshot).unwrap();
    assert!(run(&mut pool) == first, "restored into the same pool");
    let mut other = EnvPool::<u8>::make(config).unwrap();
    other.restore(&snapshot).unwrap();
    assert!(run(&mut other) == first, "restored into a new pool");
}

#[test]
fn every_envpool_game_is_registered_with_its_time_limit_and_dtype() {
    assert_eq!(GAMES.len(), 104);
    let ids = registry::task_ids();
    for game in GAMES {
        let id = format!("{game}-v5");
        assert!(ids.contains(&id), "{id}");
        assert_eq!(registry::observation_dtype(&id), Ok("uint8"));
        hone_envs::atari::rom_path(game).unwrap();
    }
    assert_eq!(registry::observation_dtype("CartPole-v1"), Ok("float32"));
    let registry = hone_envs::Registry::with_builtins();
    assert_eq!(registry.max_episode_steps("Pong-v5"), Ok(MAX_EPISODE_STEPS));
    let pool = EnvPool::<u8>::make(PoolConfig::new("SpaceInvaders-v5", 1)).unwrap();
    assert_eq!(pool.max_episode_steps(), 27_000);
    assert_eq!(
        pool.observation_space(),
        &Space::uint8_box(0, 255, &[4, 84, 84])
    );
}

#[test]
fn bad_ids_options_and_actions_are_clear_errors() {
    let message = |config: PoolConfig| EnvPool::<u8>::make(config).unwrap_err().to_string();
    let unknown = message(PoolConfig::new("Pongg-v5", 1));
    assert!(unknown.contains("closest ids: Pong-v5"), "{unknown}");
    let key = message(PoolConfig::new("Pong-v5", 1).option("episodic_lives", true));
    assert!(
        key.contains("`episodic_lives`") && key.contains("episodic_life"),
        "{key}"
    );
    let kind = message(PoolConfig::new("Pong-v5", 1).option("frame_skip", true));
    assert!(
        kind.contains("frame_skip") && kind.contains("integer"),
        "{kind}"
    );
    let noop = message(PoolConfig::new("Pong-v5", 1).option("noop_max", 0));
    assert!(noop.contains("noop_max is 0"), "{noop}");
    let seed = message(PoolConfig::new("Pong-v5", 2).seed(i32::MAX as u64));
    assert!(seed.contains("seed"), "{seed}");
    // The dtype is the task's: an f32 pool of an Atari id, options for a task without any.
    let dtype = EnvPool::new(PoolConfig::new("Pong-v5", 1))
        .unwrap_err()
        .to_string();
    assert!(
        dtype.contains("uint8") && dtype.contains("EnvPool::<u8>"),
        "{dtype}"
    );
    let classic = EnvPool::new(PoolConfig::new("CartPole-v1", 1).option("frame_skip", 2));
    assert!(
        classic
            .unwrap_err()
            .to_string()
            .contains("takes no options")
    );

    let mut pool = EnvPool::<u8>::make(PoolConfig::new("Pong-v5", 2).num_threads(1)).unwrap();
    pool.reset().unwrap();
    let error = pool.step(&[0i64, 6]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ActionOutOfRange {
                env_id: 1,
                value: 6,
                n: 6
            }
        ),
        "{error}"
    );
    assert!(pool.step(&[0.5f32, 1.0]).is_err());
    // Still usable, and the rejected steps stepped nothing.
    let batch = pool.step(&[1i64, 2]).unwrap();
    assert_eq!(batch.elapsed_step, &[1, 1]);
}
