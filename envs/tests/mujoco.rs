//! The MuJoCo envs (feature `mujoco`): gymnasium's recorded trajectories replayed
//! (`scripts/record_gymnasium_mujoco.py`, files in `tests/data/mujoco/`), and the envs in the
//! pool (sync and async, seeded, deterministic, checkpoints).
//!
//! The replay resets as gymnasium did (seeded through `Pcg64`, continued from the same generator,
//! or set to the recorded qpos and qvel), applies the recorded actions, and requires the
//! observation, reward, every info number, terminated and truncated of every step to agree to
//! 1e-6 relative (with a tiny absolute floor for values that are 0 up to rounding), the seeded
//! initial states bit for bit. Observations and info numbers are stored as float32 (the f64
//! values hone computes are compared with them: float32's rounding, 6e-8, is far inside 1e-6);
//! rewards and states as float64.

use std::time::Duration;

use crate::recorded::{MAX_REPORTED, Reader, Replay, ResetKind};
use hone_envs::mujoco::{
    Ant, Entry, HalfCheetah, Hopper, Humanoid, InvertedDoublePendulum, InvertedPendulum, MujocoEnv,
    Order, PhysicsWorkload, Pusher, Reacher, Swimmer, Task, Walker2d,
};
use hone_envs::rng::Pcg64;
use hone_envs::{Action, AutoReset, Batch, Env, PoolConfig, Space, registry};

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mujoco");

// ---- the recorded file format (see the docstring of scripts/record_gymnasium_mujoco.py) ----

#[derive(Debug)]
struct Step {
    action: Vec<f32>,
    /// The observation's head, and the rest on full steps.
    obs: Vec<f32>,
    reward: f64,
    terminated: bool,
    truncated: bool,
    info: Vec<f32>,
}

#[derive(Debug)]
struct Episode {
    kind: ResetKind,
    seed: u64,
    qpos: Vec<f64>,
    qvel: Vec<f64>,
    reset_obs_head: Vec<f32>,
    steps: Vec<Step>,
    final_qpos: Vec<f64>,
    final_qvel: Vec<f64>,
}

#[derive(Debug)]
struct Recording {
    env_id: String,
    provenance: String,
    registered_limit: u32,
    time_limit: usize,
    obs_len: usize,
    action_low: Vec<f32>,
    action_high: Vec<f32>,
    info_keys: Vec<String>,
    obs_head: usize,
    episodes: Vec<Episode>,
}

fn load(env_id: &str) -> Recording {
    let path = format!("{DATA_DIR}/{env_id}.bin");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (recorded by scripts/record_gymnasium_mujoco.py)"));
    let mut r = Reader::new(&bytes);
    assert_eq!(r.take(8), b"HONEMJC1", "{path}: not a MuJoCo recording");
    let recorded_id = r.text();
    assert_eq!(recorded_id, env_id, "{path}: holds another environment");
    let provenance = r.text();
    let registered_limit = r.u32() as u32;
    let time_limit = r.u32();
    let obs_len = r.u32();
    let nu = r.u32();
    let action_low = r.f32s(nu);
    let action_high = r.f32s(nu);
    let (nq, nv) = (r.u32(), r.u32());
    let info_keys: Vec<String> = (0..r.u16()).map(|_| r.text()).collect();
    let obs_head = r.u32();
    let obs_stride = r.u32();
    let episode_count = r.u32();
    let episodes = (0..episode_count)
        .map(|_| {
            let kind = ResetKind::from_byte(r.u8(), &path);
            let seed = r.u64();
            let qpos = r.f64s(nq);
            let qvel = r.f64s(nv);
            let reset_obs_head = r.f32s(obs_head);
            let count = r.u32();
            let steps = (0..count)
                .map(|i| {
                    let action = r.f32s(nu);
                    let mut obs = r.f32s(obs_head);
                    if (i + 1) % obs_stride == 0 || i + 1 == count {
                        obs.extend(r.f32s(obs_len - obs_head));
                    }
                    let reward = r.f64();
                    let flags = r.u8();
                    let info = r.f32s(info_keys.len());
                    Step {
                        action,
                        obs,
                        reward,
                        terminated: flags & 1 != 0,
                        truncated: flags & 2 != 0,
                        info,
                    }
                })
                .collect();
            Episode {
                kind,
                seed,
                qpos,
                qvel,
                reset_obs_head,
                steps,
                final_qpos: r.f64s(nq),
                final_qvel: r.f64s(nv),
            }
        })
        .collect();
    r.assert_finished(&path);
    Recording {
        env_id: recorded_id,
        provenance,
        registered_limit,
        time_limit,
        obs_len,
        action_low,
        action_high,
        info_keys,
        obs_head,
        episodes,
    }
}

// ---- replay ----

/// Replays `recording` through a fresh env, `perturb` applied to every action (the identity for
/// the real test); returns what disagreed.
fn replay_with<T: Task>(recording: &Recording, perturb: impl Fn(&mut [f32])) -> Replay {
    let id = &recording.env_id;
    let mut env = MujocoEnv::<T>::new().expect("the model loads");
    let mut replay = Replay::default();
    let mut rng: Option<Pcg64> = None;
    let mut obs = vec![0.0f32; recording.obs_len];
    let mut action = Vec::new();
    'episodes: for (index, episode) in recording.episodes.iter().enumerate() {
        let at = |what: &str| {
            format!(
                "{id} episode {index} ({:?}, seed {}) {what}",
                episode.kind, episode.seed
            )
        };
        match episode.kind {
            ResetKind::Seeded | ResetKind::SetState => rng = Some(Pcg64::from_seed(episode.seed)),
            ResetKind::Continued => assert!(rng.is_some(), "{}: no generator", at("reset")),
        }
        let rng = rng.as_mut().expect("a generator");
        env.reset(rng, &mut obs);
        if episode.kind == ResetKind::SetState {
            env.set_state(&episode.qpos, &episode.qvel)
                .expect("recorded state sizes");
        } else {
            let sim = env.simulation();
            let exact = sim
                .qpos()
                .iter()
                .chain(sim.qvel())
                .map(|v| v.to_bits())
                .eq(episode
                    .qpos
                    .iter()
                    .chain(&episode.qvel)
                    .map(|v| v.to_bits()));
            if !exact {
                replay.mismatches.push(format!(
                    "{}: initial state: gymnasium {:?} {:?}, hone {:?} {:?}",
                    at("reset"),
                    episode.qpos,
                    episode.qvel,
                    sim.qpos(),
                    sim.qvel()
                ));
                continue;
            }
        }
        for (i, (&expected, &actual)) in episode
            .reset_obs_head
            .iter()
            .zip(env.observation_f64())
            .enumerate()
        {
            if !replay.check(&at("reset"), &format!("obs[{i}]"), expected.into(), actual) {
                continue 'episodes;
            }
        }
        for (t, step) in episode.steps.iter().enumerate() {
            let where_ = at(&format!("step {t}"));
            action.clear();
            action.extend_from_slice(&step.action);
            perturb(&mut action);
            let outcome = env.step(Action::Continuous(&action), rng, &mut obs);
            let truncated = t + 1 >= recording.time_limit;
            let mut agree = true;
            for (i, (&expected, &actual)) in step.obs.iter().zip(env.observation_f64()).enumerate()
            {
                agree &= replay.check(&where_, &format!("obs[{i}]"), expected.into(), actual);
            }
            for (f32_row, f64_value) in obs.iter().zip(env.observation_f64()) {
                agree &= *f32_row == *f64_value as f32;
            }
            agree &= replay.check_exact(&where_, "reward", step.reward, outcome.reward);
            for (key, &expected) in recording.info_keys.iter().zip(&step.info) {
                let actual = env.info_value(key).expect("a recorded info key");
                agree &= replay.check(&where_, &format!("info {key}"), expected.into(), actual);
            }
            agree &= replay.check_flag(&where_, "terminated", step.terminated, outcome.terminated);
            agree &= replay.check_flag(&where_, "truncated", step.truncated, truncated);
            replay.steps += 1;
            if !agree {
                continue 'episodes;
            }
        }
        let sim = env.simulation();
        let finals = episode.final_qpos.iter().chain(&episode.final_qvel);
        for (i, (&expected, &actual)) in finals.zip(sim.qpos().iter().chain(sim.qvel())).enumerate()
        {
            if !replay.check_exact(&at("end"), &format!("state[{i}]"), expected, actual) {
                break;
            }
        }
    }
    replay
}

/// Replays the recording of `T`, checks the spaces and the file's coverage, and panics listing
/// the disagreements.
fn replay<T: Task>(can_terminate: bool) {
    let spec = &T::SPEC;
    let recording = load(spec.id);
    let env = MujocoEnv::<T>::new().expect("the model loads");
    assert_eq!(
        env.observation_space(),
        Space::uniform_box(f32::NEG_INFINITY, f32::INFINITY, &[recording.obs_len]),
        "{}: observation space",
        spec.id
    );
    let nu = recording.action_low.len();
    assert_eq!(
        env.action_space(),
        Space::Box {
            low: recording.action_low.clone(),
            high: recording.action_high.clone(),
            shape: vec![nu],
            dtype: hone_envs::space::Dtype::Float32,
        },
        "{}: action space",
        spec.id
    );
    assert_eq!(
        recording.registered_limit, spec.max_episode_steps,
        "time limit"
    );
    assert_eq!(
        recording.info_keys, spec.info_keys,
        "{}: info keys",
        spec.id
    );

    let replay = replay_with::<T>(&recording, |_| {});
    println!(
        "{}: {} episodes, {} steps, {} values compared, {} of {} float64 values (rewards, final \
         states) bit-identical (recorded with {})",
        spec.id,
        recording.episodes.len(),
        replay.steps,
        replay.values,
        replay.exact,
        replay.exact_of,
        recording.provenance
    );
    if !replay.mismatches.is_empty() {
        let count = replay.mismatches.len();
        let mut shown = replay.mismatches;
        shown.truncate(MAX_REPORTED);
        panic!(
            "{}: {count} episodes disagree with gymnasium:\n{}",
            spec.id,
            shown.join("\n")
        );
    }

    // Coverage: many episodes, thousands of steps, every reset kind, both endings.
    let episodes = &recording.episodes;
    let steps: usize = episodes.iter().map(|e| e.steps.len()).sum();
    assert!(
        episodes.len() >= 10,
        "{}: {} episodes",
        spec.id,
        episodes.len()
    );
    assert!(steps >= 1200, "{}: only {steps} steps", spec.id);
    for kind in [ResetKind::Seeded, ResetKind::Continued, ResetKind::SetState] {
        assert!(
            episodes.iter().any(|e| e.kind == kind),
            "{}: no {kind:?}",
            spec.id
        );
    }
    let last = |e: &Episode| e.steps.last().map(|s| (s.terminated, s.truncated));
    assert!(
        episodes.iter().any(|e| last(e).is_some_and(|(_, tr)| tr)),
        "{}: no truncation",
        spec.id
    );
    assert_eq!(
        episodes.iter().any(|e| last(e).is_some_and(|(te, _)| te)),
        can_terminate,
        "{}: terminations",
        spec.id
    );
    assert!(recording.obs_head <= recording.obs_len);
}

#[test]
fn ant_matches_gymnasium() {
    replay::<<Ant as HasTask>::T>(true);
}

#[test]
fn half_cheetah_matches_gymnasium() {
    replay::<<HalfCheetah as HasTask>::T>(false);
}

#[test]
fn hopper_matches_gymnasium() {
    replay::<<Hopper as HasTask>::T>(true);
}

#[test]
fn walker2d_matches_gymnasium() {
    replay::<<Walker2d as HasTask>::T>(true);
}

#[test]
fn humanoid_matches_gymnasium() {
    replay::<<Humanoid as HasTask>::T>(true);
}

#[test]
fn swimmer_matches_gymnasium() {
    replay::<<Swimmer as HasTask>::T>(false);
}

#[test]
fn reacher_matches_gymnasium() {
    replay::<<Reacher as HasTask>::T>(false);
}

#[test]
fn pusher_matches_gymnasium() {
    replay::<<Pusher as HasTask>::T>(false);
}

#[test]
fn inverted_pendulum_matches_gymnasium() {
    replay::<<InvertedPendulum as HasTask>::T>(true);
}

#[test]
fn inverted_double_pendulum_matches_gymnasium() {
    replay::<<InvertedDoublePendulum as HasTask>::T>(true);
}

/// The task type behind an env alias.
trait HasTask {
    type T: Task;
}

impl<T: Task> HasTask for MujocoEnv<T> {
    type T = T;
}

/// The replay can fail: a control 1% off in one actuator changes the physics, and the replay
/// must notice in (nearly) every episode.
#[test]
fn the_replay_detects_a_perturbed_action() {
    let recording = load("HalfCheetah-v5");
    let replay = replay_with::<<HalfCheetah as HasTask>::T>(&recording, |action| action[0] *= 1.01);
    assert!(
        replay.mismatches.len() >= recording.episodes.len() / 2,
        "only {} of {} episodes noticed",
        replay.mismatches.len(),
        recording.episodes.len()
    );
}

// ---- in the pool ----

/// Everything a batch reports, as bits.
fn record(batch: &Batch<'_>, log: &mut Vec<u64>) {
    log.extend(batch.observations.iter().map(|x| u64::from(x.to_bits())));
    log.extend(batch.reward.iter().map(|x| u64::from(x.to_bits())));
    log.extend(
        batch
            .terminated
            .iter()
            .zip(batch.truncated)
            .map(|(&a, &b)| u64::from(a) | u64::from(b) << 1),
    );
    log.extend(batch.env_id.iter().map(|&e| u64::from(e)));
    log.extend(batch.episodes.episode_return.iter().map(|r| r.to_bits()));
}

/// A deterministic action in [-1.2, 1.2] for (env, its step, element).
fn action(env_id: u32, step: usize, element: usize) -> f32 {
    let mut z = (u64::from(env_id) << 40 | (step as u64) << 8 | element as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 31;
    (z % 2401) as f32 / 1000.0 - 1.2
}

fn sync_log(task: &str, num_envs: usize, threads: usize, steps: usize) -> Vec<u64> {
    let config = PoolConfig::new(task, num_envs)
        .num_threads(threads)
        .seed(11)
        .max_episode_steps(40);
    let mut pool = registry::make(task, config).expect("pool");
    assert_eq!(pool.num_threads(), threads);
    let nu = pool.action_space().flat_len();
    let mut log = Vec::new();
    record(&pool.reset().unwrap(), &mut log);
    let mut actions = vec![0.0f32; num_envs * nu];
    for step in 1..steps {
        for (i, a) in actions.iter_mut().enumerate() {
            *a = action((i / nu) as u32, step, i % nu);
        }
        record(&pool.step(&actions).unwrap(), &mut log);
    }
    log
}

#[test]
fn sync_pools_are_bit_identical_whatever_the_thread_count() {
    for task in ["Hopper-v5", "Ant-v5"] {
        // 48 envs: three chunks of 16, so every thread takes part.
        let one = sync_log(task, 48, 1, 120);
        assert_eq!(one, sync_log(task, 48, 2, 120), "{task}: 2 threads");
        assert_eq!(one, sync_log(task, 48, 3, 120), "{task}: 3 threads");
    }
}

/// Per env: (reward bits, terminated, truncated, observation bits) of each of its rows.
type Trajectory = Vec<(u32, bool, bool, Vec<u32>)>;

fn row(batch: &Batch<'_>, row: usize) -> (u32, bool, bool, Vec<u32>) {
    (
        batch.reward[row].to_bits(),
        batch.terminated[row],
        batch.truncated[row],
        batch.observation(row).iter().map(|x| x.to_bits()).collect(),
    )
}

#[test]
fn async_pools_give_every_env_its_sync_trajectory() {
    let task = "HalfCheetah-v5";
    let (num_envs, steps) = (24, 50);
    let config = PoolConfig::new(task, num_envs)
        .seed(4)
        .max_episode_steps(30)
        .autoreset(AutoReset::SameStep);
    let nu = 6;

    let mut sync = registry::make(task, config.clone().num_threads(2)).unwrap();
    let mut want: Vec<Trajectory> = vec![Vec::new(); num_envs];
    let batch = sync.reset().unwrap();
    for (r, trajectory) in want.iter_mut().enumerate() {
        trajectory.push(row(&batch, r));
    }
    let mut actions = vec![0.0f32; num_envs * nu];
    for step in 1..steps {
        for (i, a) in actions.iter_mut().enumerate() {
            *a = action((i / nu) as u32, step, i % nu);
        }
        let batch = sync.step(&actions).unwrap();
        for (r, trajectory) in want.iter_mut().enumerate() {
            trajectory.push(row(&batch, r));
        }
    }

    let mut pool = registry::make(task, config.batch_size(7).num_threads(3)).unwrap();
    assert!(pool.is_async());
    pool.async_reset().unwrap();
    let mut got: Vec<Trajectory> = vec![Vec::new(); num_envs];
    let (mut ids, mut sent) = (Vec::new(), Vec::new());
    while got.iter().any(|t| t.len() < steps) {
        let batch = pool.recv().unwrap();
        ids.clear();
        sent.clear();
        for r in 0..batch.len() {
            let env_id = batch.env_id[r];
            let trajectory = &mut got[env_id as usize];
            trajectory.push(row(&batch, r));
            ids.push(env_id);
            let step = trajectory.len();
            sent.extend((0..nu).map(|e| action(env_id, step, e)));
        }
        pool.send(&sent, &ids).unwrap();
    }
    for (env_id, trajectory) in got.iter_mut().enumerate() {
        trajectory.truncate(steps);
        assert_eq!(*trajectory, want[env_id], "env {env_id}");
    }
}

/// Env i of a pool seeded with s starts where gymnasium's `reset(seed=s + i)` does (the recorded
/// seeded episodes pin that to gymnasium); here: where a lone env on `Pcg64::from_seed(s + i)`
/// does, and distinct envs start apart.
#[test]
fn pool_envs_are_seeded_with_seed_plus_index() {
    let mut pool = registry::make("Ant-v5", PoolConfig::new("Ant-v5", 5).seed(100)).unwrap();
    let batch = pool.reset().unwrap();
    let mut env = Ant::new().unwrap();
    let mut obs = vec![0.0f32; 105];
    for i in 0..5 {
        env.reset(&mut Pcg64::from_seed(100 + i as u64), &mut obs);
        assert_eq!(batch.observation(i), obs.as_slice(), "env {i}");
    }
    assert_ne!(batch.observation(0), batch.observation(1));
}

#[test]
fn every_task_steps_in_the_pool_with_its_spaces() {
    for (id, limit) in hone_envs::mujoco::TASKS {
        let mut pool = registry::make(id, PoolConfig::new(id, 3).num_threads(1)).unwrap();
        assert_eq!(pool.max_episode_steps(), limit, "{id}");
        let nu = pool.action_space().flat_len();
        let obs_len = pool.observation_space().flat_len();
        let batch = pool.reset().unwrap();
        assert_eq!(batch.observations.len(), 3 * obs_len, "{id}");
        let actions = vec![0.1f32; 3 * nu];
        for _ in 0..5 {
            let batch = pool.step(&actions).unwrap();
            assert!(
                batch.observations.iter().all(|x| x.is_finite()),
                "{id}: finite observations"
            );
            assert!(batch.reward.iter().all(|r| r.is_finite()), "{id}");
        }
    }
}

/// A checkpoint mid-episode continues bit for bit, also in the envs whose velocity starts from
/// a position carried from the previous step (Ant, Humanoid) and with RK4 (most models).
#[test]
fn a_restored_env_continues_bit_for_bit() {
    fn check<T: Task>() {
        let mut env = MujocoEnv::<T>::new().unwrap();
        let obs_len = T::SPEC.obs_len;
        let nu = env.action_space().flat_len();
        let mut rng = Pcg64::from_seed(5);
        let mut obs = vec![0.0f32; obs_len];
        env.reset(&mut rng, &mut obs);
        let actions: Vec<Vec<f32>> = (0..20)
            .map(|t| (0..nu).map(|e| action(0, t, e) * 0.3).collect())
            .collect();
        let run = |env: &mut MujocoEnv<T>, rng: &mut Pcg64, from: usize| {
            let mut obs = vec![0.0f32; obs_len];
            (from..20)
                .map(|t| {
                    let outcome = env.step(Action::Continuous(&actions[t]), rng, &mut obs);
                    (outcome.reward.to_bits(), outcome.terminated, obs.clone())
                })
                .collect::<Vec<_>>()
        };
        let mut obs_steps = vec![0.0f32; obs_len];
        for a in &actions[..8] {
            env.step(Action::Continuous(a), &mut rng, &mut obs_steps);
        }
        let state = env.save_state().expect("MuJoCo envs support checkpoints");
        let expected = run(&mut env, &mut rng.clone(), 8);

        let mut restored = MujocoEnv::<T>::new().unwrap();
        restored.reset(&mut Pcg64::from_seed(999), &mut obs);
        restored.load_state(&state).unwrap();
        let got = run(&mut restored, &mut rng.clone(), 8);
        assert_eq!(got, expected, "{}", T::SPEC.id);
        assert!(
            restored.load_state(&state[1..]).is_err(),
            "a short state is rejected"
        );
    }
    check::<<Ant as HasTask>::T>();
    check::<<Humanoid as HasTask>::T>();
    check::<<HalfCheetah as HasTask>::T>();
    check::<<InvertedDoublePendulum as HasTask>::T>();
}

/// A pool snapshot mid-run restores into a fresh pool that continues bit for bit (episodes end
/// and reset around the snapshot; Ant and Humanoid carry their start position).
#[test]
fn a_restored_pool_continues_exactly() {
    for task in ["Ant-v5", "Humanoid-v5", "Hopper-v5", "Pusher-v5"] {
        for autoreset in [AutoReset::NextStep, AutoReset::SameStep] {
            let config = PoolConfig::new(task, 4)
                .seed(9)
                .num_threads(2)
                .max_episode_steps(17)
                .autoreset(autoreset);
            let mut pool = registry::make(task, config.clone()).unwrap();
            let nu = pool.action_space().flat_len();
            let actions = |t: usize| -> Vec<f32> {
                (0..4 * nu)
                    .map(|i| action((i / nu) as u32, t, i % nu))
                    .collect()
            };
            let run = |pool: &mut hone_envs::EnvPool, steps: std::ops::Range<usize>| {
                let mut log = Vec::new();
                for t in steps {
                    record(&pool.step(&actions(t)).unwrap(), &mut log);
                }
                log
            };
            pool.reset().unwrap();
            run(&mut pool, 0..30);
            let snapshot = pool.snapshot().unwrap();
            let expected = run(&mut pool, 30..70);
            let mut restored = registry::make(task, config.seed(777)).unwrap();
            restored.reset().unwrap();
            restored.restore(&snapshot).unwrap();
            assert_eq!(run(&mut restored, 30..70), expected, "{task} {autoreset:?}");
        }
    }
}

#[test]
fn info_holds_the_reward_terms_that_sum_to_the_reward() {
    let mut env = HalfCheetah::new().unwrap();
    let mut rng = Pcg64::from_seed(1);
    let mut obs = vec![0.0f32; 17];
    env.reset(&mut rng, &mut obs);
    let outcome = env.step(Action::Continuous(&[0.5; 6]), &mut rng, &mut obs);
    let forward = env.info_value("reward_forward").unwrap();
    let ctrl = env.info_value("reward_ctrl").unwrap();
    assert_eq!(outcome.reward, forward + ctrl);
    // 0.1 * 6 * 0.25, in float32.
    assert_eq!(ctrl, f64::from(-(0.1f32 * 1.5f32)));
    assert_eq!(env.info_value("no such key"), None);
    assert_eq!(
        env.info().map(|(k, _)| k).collect::<Vec<_>>(),
        ["x_position", "x_velocity", "reward_forward", "reward_ctrl"]
    );
}

/// The benchmark's physics floor replays envs' runs with bare mj_steps; that must be the same
/// physics (mj_rnePostConstraint, observations and rewards change no state), episodes included.
#[test]
fn a_bare_mj_step_replay_follows_the_envs_trajectory() {
    for task in ["Ant-v5", "Hopper-v5"] {
        let (workload, _, obs) =
            PhysicsWorkload::record(task, Duration::from_millis(150), 3).unwrap();
        assert!(workload.measured_steps() > 10, "{task}: {workload:?}");
        let runs = workload.bare_runs(1, Order::EnvByEnv).unwrap();
        assert_eq!(runs[0].env_steps as usize, workload.measured_steps());
        assert_eq!(runs[0].final_observations, vec![(0, obs)], "{task}");
    }
    assert!(PhysicsWorkload::record("CartPole-v1", Duration::ZERO, 0).is_err());
}

/// An Ant pool's run logged as the benchmark logs it: the actions, each env's entries, and the
/// batch observations after each step.
fn logged_ant_run(num_envs: usize, steps: usize) -> (Vec<f32>, Vec<Vec<Entry>>, Vec<Vec<f32>>) {
    let config = PoolConfig::new("Ant-v5", num_envs)
        .seed(21)
        .max_episode_steps(25);
    let mut pool = registry::make("Ant-v5", config).unwrap();
    let nu = 8;
    let actions: Vec<f32> = (0..steps * num_envs * nu)
        .map(|i| action((i / nu % num_envs) as u32, i / (nu * num_envs), i % nu))
        .collect();
    let mut envs = vec![Vec::new(); num_envs];
    pool.reset().unwrap();
    let mut observations = Vec::new();
    for step in 0..steps {
        let offset = step * num_envs * nu;
        let batch = pool.step(&actions[offset..offset + num_envs * nu]).unwrap();
        for (i, entries) in envs.iter_mut().enumerate() {
            entries.push(if batch.elapsed_step[i] == 0 {
                Entry::Reset
            } else {
                Entry::Step {
                    action: offset + i * nu,
                    measured: step >= 10,
                }
            });
        }
        observations.push(batch.observations.to_vec());
    }
    (actions, envs, observations)
}

/// Every env of the replays ends on its row of `observations` (Ant's 105 values a row).
fn assert_replays_end_on(
    runs: &[hone_envs::mujoco::BareRun],
    observations: &[f32],
    num_envs: usize,
    context: &str,
) {
    let finals: Vec<_> = runs.iter().flat_map(|r| &r.final_observations).collect();
    assert_eq!(finals.len(), num_envs, "{context}");
    for (i, obs) in finals {
        assert_eq!(
            obs.as_slice(),
            &observations[i * 105..(i + 1) * 105],
            "env {i}, {context}"
        );
    }
}

/// The benchmark replays a pool's run window by window, each replay continued from where the last
/// window left it: that ends where one replay of the whole run does, on the pool's observations.
#[test]
fn a_replay_continued_window_by_window_follows_the_pool() {
    let (num_envs, steps) = (5, 60);
    let (actions, envs, observations) = logged_ant_run(num_envs, steps);
    let whole = PhysicsWorkload::new("Ant-v5", 21, actions.clone(), envs.clone()).unwrap();
    for (threads, order) in [
        (1, Order::EnvByEnv),
        (2, Order::EnvByEnv),
        (1, Order::RoundRobin),
    ] {
        let mut replays = whole.replays(threads, order).unwrap();
        let mut measured = 0;
        for end in [7, 7, 20, 33, 60] {
            let prefix: Vec<Vec<Entry>> = envs.iter().map(|e| e[..end].to_vec()).collect();
            let workload = PhysicsWorkload::new("Ant-v5", 21, actions.clone(), prefix).unwrap();
            let runs = hone_envs::mujoco::Replay::advance_all(&mut replays, &workload).unwrap();
            measured += runs.iter().map(|r| r.env_steps).sum::<u64>();
            let context = format!("after step {end}, {threads} threads, {order:?}");
            assert_replays_end_on(&runs, &observations[end - 1], num_envs, &context);
        }
        assert_eq!(
            measured as usize,
            whole.measured_steps(),
            "{threads} threads, {order:?}"
        );
    }
}

/// A workload logged from a pool's batches (as the benchmark logs it) replays to the pool's final
/// observations, on one thread or split over several.
#[test]
fn a_pool_run_replays_as_bare_physics() {
    let (num_envs, steps) = (5, 60);
    let (actions, envs, observations) = logged_ant_run(num_envs, steps);
    let last = &observations[steps - 1];
    let workload = PhysicsWorkload::new("Ant-v5", 21, actions, envs).unwrap();
    for (threads, order) in [
        (1, Order::EnvByEnv),
        (2, Order::EnvByEnv),
        (1, Order::RoundRobin),
        (2, Order::RoundRobin),
    ] {
        let runs = workload.bare_runs(threads, order).unwrap();
        let context = format!("{threads} threads, {order:?}");
        assert_replays_end_on(&runs, last, num_envs, &context);
        let measured: u64 = runs.iter().map(|r| r.env_steps).sum();
        assert_eq!(measured as usize, workload.measured_steps());
    }
}
