//! Replays gymnasium's recorded trajectories (`scripts/record_gymnasium.py`, files in
//! `tests/data/`) through the Rust environments: same resets (seeded through `Pcg64`, continued
//! from the same generator, or set to the recorded state), same actions, the time limit applied
//! here as the pool applies it. Every observation, reward, terminated and truncated flag must
//! agree to 1e-6 relative (with a tiny absolute floor for values near 0), the seeded initial
//! states bit for bit, and the spaces exactly.

use crate::recorded::{MAX_REPORTED, Reader, Replay, ResetKind, close};
use hone_envs::rng::Pcg64;
use hone_envs::{
    Acrobot, Action, CartPole, Env, MountainCar, MountainCarContinuous, Pendulum, Space,
};

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

// ---- the recorded file format (see the docstring of scripts/record_gymnasium.py) ----

#[derive(Debug)]
enum RecordedActions {
    Discrete(Vec<i64>),
    /// Row-major, `action_len` per step.
    Continuous(Vec<f32>),
}

#[derive(Debug)]
struct Episode {
    kind: ResetKind,
    seed: u64,
    initial_state: Vec<f64>,
    reset_obs: Vec<f32>,
    steps: usize,
    actions: RecordedActions,
    /// Row-major, `obs_len` per step.
    obs: Vec<f32>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_state: Vec<f64>,
}

#[derive(Debug)]
struct Recording {
    env_id: String,
    provenance: String,
    max_episode_steps: usize,
    observation_space: Space,
    action_space: Space,
    state_len: usize,
    episodes: Vec<Episode>,
}

fn load(env_id: &str) -> Recording {
    let path = format!("{DATA_DIR}/{env_id}.bin");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (recorded by scripts/record_gymnasium.py)"));
    let mut r = Reader::new(&bytes);
    assert_eq!(r.take(8), b"HONEREF1", "{path}: not a reference recording");
    let recorded_id = r.text();
    assert_eq!(recorded_id, env_id, "{path}: holds another environment");
    let provenance = r.text();
    let max_episode_steps = r.u32();
    let obs_len = r.u32();
    let observation_space = Space::Box {
        low: r.f32s(obs_len),
        high: r.f32s(obs_len),
        shape: vec![obs_len],
        dtype: hone_envs::space::Dtype::Float32,
    };
    let (action_space, action_len) = match r.u8() {
        0 => (Space::Discrete { n: r.i64() }, 1),
        1 => {
            let len = r.u32();
            (
                Space::Box {
                    low: r.f32s(len),
                    high: r.f32s(len),
                    shape: vec![len],
                    dtype: hone_envs::space::Dtype::Float32,
                },
                len,
            )
        }
        kind => panic!("{path}: unknown action space kind {kind}"),
    };
    let discrete = matches!(action_space, Space::Discrete { .. });
    let state_len = r.u32();
    let episode_count = r.u32();
    let episodes = (0..episode_count)
        .map(|_| {
            let kind = ResetKind::from_byte(r.u8(), &path);
            let seed = r.u64();
            let initial_state = r.f64s(state_len);
            let reset_obs = r.f32s(obs_len);
            let steps = r.u32();
            let mut actions = if discrete {
                RecordedActions::Discrete(Vec::with_capacity(steps))
            } else {
                RecordedActions::Continuous(Vec::with_capacity(steps * action_len))
            };
            let mut obs = Vec::with_capacity(steps * obs_len);
            let (mut rewards, mut terminated, mut truncated) = (vec![], vec![], vec![]);
            for _ in 0..steps {
                match &mut actions {
                    RecordedActions::Discrete(a) => a.push(r.i64()),
                    RecordedActions::Continuous(a) => a.extend(r.f32s(action_len)),
                }
                obs.extend(r.f32s(obs_len));
                rewards.push(r.f64());
                let flags = r.u8();
                terminated.push(flags & 1 != 0);
                truncated.push(flags & 2 != 0);
            }
            let final_state = r.f64s(state_len);
            Episode {
                kind,
                seed,
                initial_state,
                reset_obs,
                steps,
                actions,
                obs,
                rewards,
                terminated,
                truncated,
                final_state,
            }
        })
        .collect();
    r.assert_finished(&path);
    Recording {
        env_id: recorded_id,
        provenance,
        max_episode_steps,
        observation_space,
        action_space,
        state_len,
        episodes,
    }
}

// ---- replay ----

/// The hidden state hooks of the classic envs, behind one interface for the replay.
trait Replayable: Env + Default {
    fn internal_state(&self) -> Vec<f64>;
    fn set_internal_state(&mut self, state: &[f64]);
}

macro_rules! replayable {
    ($env:ty, $len:literal) => {
        impl Replayable for $env {
            fn internal_state(&self) -> Vec<f64> {
                self.state().to_vec()
            }
            fn set_internal_state(&mut self, state: &[f64]) {
                let state: [f64; $len] = state.try_into().expect("recorded state length");
                self.set_state(state);
            }
        }
    };
}

replayable!(CartPole, 4);
replayable!(Acrobot, 4);
replayable!(MountainCar, 2);
replayable!(MountainCarContinuous, 2);
replayable!(Pendulum, 2);

fn replay<E: Replayable>(env_id: &str) -> Recording {
    let recording = load(env_id);
    let mut env = E::default();
    assert_eq!(
        env.observation_space(),
        recording.observation_space,
        "{env_id}: observation space"
    );
    assert_eq!(
        env.action_space(),
        recording.action_space,
        "{env_id}: action space"
    );
    assert_eq!(
        env.internal_state().len(),
        recording.state_len,
        "{env_id}: state length"
    );
    let obs_len = recording.observation_space.flat_len();
    let action_len = recording.action_space.flat_len();

    let mut replay = Replay::default();
    let mut rng: Option<Pcg64> = None;
    let mut obs = vec![0.0f32; obs_len];
    'episodes: for (index, episode) in recording.episodes.iter().enumerate() {
        let at = |step: &str| {
            format!(
                "{env_id} episode {index} ({:?}, seed {}) {step}",
                episode.kind, episode.seed
            )
        };
        match episode.kind {
            ResetKind::Seeded | ResetKind::SetState => rng = Some(Pcg64::from_seed(episode.seed)),
            ResetKind::Continued => {
                assert!(rng.is_some(), "{}: continues no generator", at("reset"))
            }
        }
        let rng = rng.as_mut().expect("a generator");
        env.reset(rng, &mut obs);
        if episode.kind == ResetKind::SetState {
            env.set_internal_state(&episode.initial_state);
        } else {
            // The reset path is exact: numpy's generator, then the same arithmetic.
            let state = env.internal_state();
            let exact = state
                .iter()
                .zip(&episode.initial_state)
                .all(|(a, e)| a.to_bits() == e.to_bits());
            if !exact {
                replay.mismatches.push(format!(
                    "{}: initial state: gymnasium {:?}, hone {state:?}",
                    at("reset"),
                    episode.initial_state
                ));
                continue;
            }
            for (i, (&expected, &actual)) in episode.reset_obs.iter().zip(&obs).enumerate() {
                if !replay.check_exact(
                    &at("reset"),
                    &format!("obs[{i}]"),
                    expected.into(),
                    actual.into(),
                ) {
                    continue 'episodes;
                }
            }
        }

        for step in 0..episode.steps {
            let action = match &episode.actions {
                RecordedActions::Discrete(actions) => Action::Discrete(actions[step]),
                RecordedActions::Continuous(actions) => {
                    Action::Continuous(&actions[step * action_len..(step + 1) * action_len])
                }
            };
            let outcome = env.step(action, rng, &mut obs);
            let truncated = step + 1 >= recording.max_episode_steps;
            let where_ = at(&format!("step {step}"));
            let expected_obs = &episode.obs[step * obs_len..(step + 1) * obs_len];
            let mut agree = true;
            for (i, (&expected, &actual)) in expected_obs.iter().zip(&obs).enumerate() {
                agree &= replay.check_exact(
                    &where_,
                    &format!("obs[{i}]"),
                    expected.into(),
                    actual.into(),
                );
            }
            agree &= replay.check_exact(&where_, "reward", episode.rewards[step], outcome.reward);
            agree &= replay.check_flag(
                &where_,
                "terminated",
                episode.terminated[step],
                outcome.terminated,
            );
            agree &= replay.check_flag(&where_, "truncated", episode.truncated[step], truncated);
            replay.steps += 1;
            if !agree {
                continue 'episodes;
            }
        }
        if let Some(last) = episode.steps.checked_sub(1) {
            assert!(
                episode.terminated[last] || episode.truncated[last],
                "{}: the recorded episode ends before it is done",
                at("end")
            );
        }
        for (i, (&expected, &actual)) in episode
            .final_state
            .iter()
            .zip(&env.internal_state())
            .enumerate()
        {
            if !replay.check_exact(&at("end"), &format!("state[{i}]"), expected, actual) {
                break;
            }
        }
    }

    println!(
        "{env_id}: {} episodes, {} steps, {} of {} compared values bit-identical (recorded with {})",
        recording.episodes.len(),
        replay.steps,
        replay.exact,
        replay.values,
        recording.provenance
    );
    if !replay.mismatches.is_empty() {
        let count = replay.mismatches.len();
        replay.mismatches.truncate(MAX_REPORTED);
        panic!(
            "{env_id}: {count} episodes disagree with gymnasium:\n{}",
            replay.mismatches.join("\n")
        );
    }
    recording
}

/// Guards against a recording too thin to prove much: many episodes, thousands of steps, every
/// kind of reset, and episodes that end both ways (where the env can terminate at all).
fn assert_covers(recording: &Recording, can_terminate: bool) {
    let id = &recording.env_id;
    let episodes = &recording.episodes;
    let steps: usize = episodes.iter().map(|e| e.steps).sum();
    assert!(
        episodes.len() >= 20,
        "{id}: only {} episodes",
        episodes.len()
    );
    assert!(steps >= 3000, "{id}: only {steps} steps");
    for kind in [ResetKind::Seeded, ResetKind::Continued, ResetKind::SetState] {
        assert!(
            episodes.iter().any(|e| e.kind == kind),
            "{id}: no {kind:?} episode"
        );
    }
    let ends = |flags: fn(&Episode) -> &Vec<bool>| {
        episodes
            .iter()
            .filter(|e| flags(e).last() == Some(&true))
            .count()
    };
    assert!(
        ends(|e| &e.truncated) > 0,
        "{id}: no episode reaches the time limit"
    );
    assert_eq!(
        ends(|e| &e.terminated) > 0,
        can_terminate,
        "{id}: terminations"
    );
}

#[test]
fn cartpole_matches_gymnasium() {
    let recording = replay::<CartPole>("CartPole-v1");
    assert_eq!(recording.max_episode_steps, 500);
    assert_covers(&recording, true);
}

#[test]
fn acrobot_matches_gymnasium() {
    let recording = replay::<Acrobot>("Acrobot-v1");
    assert_eq!(recording.max_episode_steps, 500);
    assert_covers(&recording, true);
}

#[test]
fn mountain_car_matches_gymnasium() {
    let recording = replay::<MountainCar>("MountainCar-v0");
    assert_eq!(recording.max_episode_steps, 200);
    assert_covers(&recording, true);
}

#[test]
fn mountain_car_continuous_matches_gymnasium() {
    let recording = replay::<MountainCarContinuous>("MountainCarContinuous-v0");
    assert_eq!(recording.max_episode_steps, 999);
    assert_covers(&recording, true);
}

#[test]
fn pendulum_matches_gymnasium() {
    let recording = replay::<Pendulum>("Pendulum-v1");
    assert_eq!(recording.max_episode_steps, 200);
    assert_covers(&recording, false);
}

/// The replay must be able to fail: the CartPole recording replayed with one action flipped
/// has to be reported at that step.
#[test]
fn replay_reports_a_diverging_step() {
    let recording = load("CartPole-v1");
    let episode = recording
        .episodes
        .iter()
        .find(|e| e.kind == ResetKind::Seeded && e.steps > 5)
        .expect("an episode");
    let RecordedActions::Discrete(actions) = &episode.actions else {
        panic!("CartPole is discrete")
    };
    let mut rng = Pcg64::from_seed(episode.seed);
    let mut env = CartPole::default();
    let mut obs = [0.0f32; 4];
    env.reset(&mut rng, &mut obs);
    for (step, &action) in actions.iter().enumerate().take(3) {
        let flipped = if step == 2 { 1 - action } else { action };
        env.step(Action::Discrete(flipped), &mut rng, &mut obs);
        let expected = &episode.obs[step * 4..step * 4 + 4];
        let agree = expected
            .iter()
            .zip(&obs)
            .all(|(&e, &a)| close(e.into(), a.into()));
        assert_eq!(
            agree,
            step < 2,
            "step {step}: expected {expected:?}, got {obs:?}"
        );
    }
}
