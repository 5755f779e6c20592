//! The physics floor of the MuJoCo benchmark: how fast bare `mj_step` calls run on the same model,
//! states and controls as the env. A pool on `n` threads cannot step faster than `n` threads of
//! bare `mj_step`; what it loses below that is the engine's overhead and the env's own work
//! (`mj_rnePostConstraint`, observation, reward).
//!
//! [`PhysicsWorkload::record`] runs one env with random actions (new episodes as it terminates or
//! reaches its time limit) and keeps the actions and where episodes started.
//! [`PhysicsWorkload::bare_rate`] replays those episodes with only `mj_step`s between resets, on
//! one or several threads at once, timing the `mj_step`s alone. A replay reproduces the env's run
//! bit for bit ([`PhysicsWorkload::replay_matches`]), so both do the same physics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{MujocoEnv, Task};
use crate::env::{Action, Env};
use crate::error::{Error, Result};
use crate::rng::Pcg64;
use crate::space::Space;

/// One env's recorded run, replayable as bare physics.
#[derive(Clone)]
pub struct PhysicsWorkload {
    pub task: &'static str,
    pub frame_skip: u32,
    /// Seconds the recorded env steps took through `Env::step` on one thread (physics, contact
    /// forces, observation and reward).
    pub env_seconds: f64,
    nu: usize,
    actions: Arc<[f32]>,
    /// Env steps after which a new episode started.
    resets_after: Arc<[usize]>,
    seed: u64,
    final_qpos: Arc<[f64]>,
    replay: fn(&PhysicsWorkload, Replay) -> Result<ReplayOutcome>,
}

impl std::fmt::Debug for PhysicsWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicsWorkload")
            .field("task", &self.task)
            .field("env_steps", &self.env_steps())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Replay {
    /// Once through, for the final state.
    Once,
    /// Over and over (from the first episode again) until the time is up.
    For(Duration),
}

struct ReplayOutcome {
    physics_steps: u64,
    /// Time inside `mj_step` calls.
    physics_seconds: f64,
    final_qpos: Vec<f64>,
}

impl PhysicsWorkload {
    /// Runs `task_id` (one of `TASKS`) for about `duration` of env stepping on this thread.
    pub fn record(task_id: &str, duration: Duration, seed: u64) -> Result<Self> {
        use super::{arms, planar, spatial};
        match task_id {
            "Ant-v5" => record::<spatial::AntTask>(duration, seed),
            "HalfCheetah-v5" => record::<planar::HalfCheetahTask>(duration, seed),
            "Hopper-v5" => record::<planar::HopperTask>(duration, seed),
            "Walker2d-v5" => record::<planar::Walker2dTask>(duration, seed),
            "Humanoid-v5" => record::<spatial::HumanoidTask>(duration, seed),
            "Swimmer-v5" => record::<planar::SwimmerTask>(duration, seed),
            "Reacher-v5" => record::<arms::ReacherTask>(duration, seed),
            "Pusher-v5" => record::<arms::PusherTask>(duration, seed),
            "InvertedPendulum-v5" => record::<arms::InvertedPendulumTask>(duration, seed),
            "InvertedDoublePendulum-v5" => {
                record::<arms::InvertedDoublePendulumTask>(duration, seed)
            }
            other => Err(Error::UnknownTask {
                id: other.to_owned(),
                known: super::TASKS
                    .iter()
                    .map(|(id, _)| (*id).to_owned())
                    .collect(),
            }),
        }
    }

    pub fn env_steps(&self) -> usize {
        self.actions.len() / self.nu.max(1)
    }

    /// Env-steps per second of `Env::step` alone on one thread, while recording.
    pub fn env_step_rate(&self) -> f64 {
        self.env_steps() as f64 / self.env_seconds
    }

    /// A replay with bare `mj_step`s ends in the recorded run's final state, bit for bit.
    pub fn replay_matches(&self) -> Result<bool> {
        let outcome = (self.replay)(self, Replay::Once)?;
        Ok(outcome
            .final_qpos
            .iter()
            .map(|v| v.to_bits())
            .eq(self.final_qpos.iter().map(|v| v.to_bits())))
    }

    /// Bare `mj_step`s per second of `threads` threads replaying the workload at once for
    /// `duration`, summed over the threads (each thread's steps over its time inside `mj_step`).
    pub fn bare_rate(&self, threads: usize, duration: Duration) -> Result<f64> {
        let threads = threads.max(1);
        let outcomes: Vec<Result<ReplayOutcome>> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads)
                .map(|_| scope.spawn(|| (self.replay)(self, Replay::For(duration))))
                .collect();
            let mut outcomes = vec![(self.replay)(self, Replay::For(duration))];
            for handle in others {
                outcomes.push(handle.join().unwrap_or_else(|_| {
                    Err(Error::InvalidConfig("a replay thread panicked".to_owned()))
                }));
            }
            outcomes
        });
        let mut rate = 0.0;
        for outcome in outcomes {
            let outcome = outcome?;
            rate += outcome.physics_steps as f64 / outcome.physics_seconds;
        }
        Ok(rate)
    }
}

fn record<T: Task>(duration: Duration, seed: u64) -> Result<PhysicsWorkload> {
    let spec = &T::SPEC;
    let mut env = MujocoEnv::<T>::new()?;
    let nu = env.action_space().flat_len();
    let (low, high) = match env.action_space() {
        Space::Box { low, high, .. } => (low, high),
        _ => (vec![-1.0; nu], vec![1.0; nu]),
    };
    let mut noise = Pcg64::from_seed(seed ^ 0x5eed);
    let mut obs = vec![0.0f32; spec.obs_len];
    let mut actions: Vec<f32> = Vec::new();
    let mut resets_after: Vec<usize> = Vec::new();
    let mut rng = Pcg64::from_seed(seed);
    env.reset(&mut rng, &mut obs);
    let (mut steps, mut elapsed_in_episode) = (0usize, 0u32);
    let mut env_seconds = 0.0;
    let start = Instant::now();
    let mut action = vec![0.0f32; nu];
    while start.elapsed() < duration {
        for (a, (&lo, &hi)) in action.iter_mut().zip(low.iter().zip(&high)) {
            *a = noise.uniform(f64::from(lo), f64::from(hi)) as f32;
        }
        actions.extend_from_slice(&action);
        let step_start = Instant::now();
        let outcome = env.step(Action::Continuous(&action), &mut rng, &mut obs);
        env_seconds += step_start.elapsed().as_secs_f64();
        steps += 1;
        elapsed_in_episode += 1;
        if outcome.terminated || elapsed_in_episode >= spec.max_episode_steps {
            resets_after.push(steps);
            env.reset(&mut rng, &mut obs);
            elapsed_in_episode = 0;
        }
    }
    Ok(PhysicsWorkload {
        task: spec.id,
        frame_skip: spec.frame_skip,
        env_seconds,
        nu,
        actions: actions.into(),
        resets_after: resets_after.into(),
        seed,
        final_qpos: env.simulation().qpos().into(),
        replay: replay::<T>,
    })
}

fn replay<T: Task>(workload: &PhysicsWorkload, how: Replay) -> Result<ReplayOutcome> {
    let mut env = MujocoEnv::<T>::new()?;
    let mut obs = vec![0.0f32; T::SPEC.obs_len];
    let (mut physics_steps, mut physics_seconds) = (0u64, 0.0);
    let start = Instant::now();
    loop {
        let mut rng = Pcg64::from_seed(workload.seed);
        env.reset(&mut rng, &mut obs);
        let mut next_reset = workload.resets_after.iter().peekable();
        for (step, action) in workload.actions.chunks_exact(workload.nu).enumerate() {
            let sim = env.simulation_mut();
            sim.set_ctrl(action);
            let physics_start = Instant::now();
            for _ in 0..workload.frame_skip {
                sim.physics_step();
            }
            physics_seconds += physics_start.elapsed().as_secs_f64();
            physics_steps += u64::from(workload.frame_skip);
            if next_reset.next_if(|&&after| after == step + 1).is_some() {
                env.reset(&mut rng, &mut obs);
            }
            if let Replay::For(limit) = how {
                if step % 64 == 63 && start.elapsed() >= limit {
                    break;
                }
            }
        }
        match how {
            Replay::For(limit) if start.elapsed() < limit => continue,
            _ => break,
        }
    }
    Ok(ReplayOutcome {
        physics_steps,
        physics_seconds,
        final_qpos: env.simulation().qpos().to_vec(),
    })
}
