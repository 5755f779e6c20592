//! The physics floor of the MuJoCo benchmark: how fast bare `mj_step` calls run on the same model,
//! states and controls as the envs of a run. A pool on `n` threads cannot step faster than `n`
//! threads of bare `mj_step`; what it loses below that is the engine's overhead and the env's
//! own work (`mj_rnePostConstraint`, observation, reward).
//!
//! A [`PhysicsWorkload`] is what some envs did, env by env: resets and the actions of their steps
//! (recorded by the benchmark from a pool's batches, or by [`PhysicsWorkload::record`] from one
//! env). [`PhysicsWorkload::bare_runs`] replays it with only `mj_step`s between resets, one env
//! after the other (each hot in cache, as a single-env loop), on one or several threads, and times
//! the `mj_step`s of the steps marked as measured. A replay reproduces the envs' trajectories bit
//! for bit: its final observations are the envs' own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{MujocoEnv, Task};
use crate::env::{Action, Env};
use crate::error::{Error, Result};
use crate::rng::Pcg64;
use crate::space::Space;

/// One entry of an env's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A new episode (`Env::reset` from the env's generator).
    Reset,
    /// A step with the action at `action` (an offset into the workload's actions).
    Step { action: usize, measured: bool },
}

/// What some envs of one task did, replayable as bare physics. Env `i` starts from a reset on
/// `Pcg64::from_seed(seed + i)`, as in a pool.
#[derive(Clone)]
pub struct PhysicsWorkload {
    pub task: &'static str,
    pub frame_skip: u32,
    seed: u64,
    actions: Arc<[f32]>,
    envs: Arc<[Vec<Entry>]>,
    replay: fn(&PhysicsWorkload, &[usize], Order) -> Result<BareRun>,
}

impl std::fmt::Debug for PhysicsWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicsWorkload")
            .field("task", &self.task)
            .field("envs", &self.envs.len())
            .field("measured_steps", &self.measured_steps())
            .finish_non_exhaustive()
    }
}

/// How a thread goes through its envs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// One env's whole history after the other's (each hot in cache: the floor).
    EnvByEnv,
    /// A step of every env in turn, as a pool does (every env's data cycles through the caches).
    RoundRobin,
}

/// One thread's bare replay of some envs.
#[derive(Clone, Debug, PartialEq)]
pub struct BareRun {
    /// Measured env-steps and `mj_step`s.
    pub env_steps: u64,
    pub physics_steps: u64,
    /// Wall time inside the measured `mj_step` calls.
    pub physics_seconds: f64,
    /// The thread's CPU time inside them (Linux; the wall time elsewhere).
    pub physics_cpu_seconds: f64,
    /// Each replayed env's observation at the end, as the pool would have written it.
    pub final_observations: Vec<(usize, Vec<f32>)>,
}

impl BareRun {
    pub fn env_steps_per_second(&self) -> f64 {
        self.env_steps as f64 / self.physics_seconds
    }
}

impl PhysicsWorkload {
    /// A workload of `task_id` (one of `TASKS`): env `i` did `envs[i]`, its actions at the offsets
    /// into `actions` the entries name (one action row each).
    pub fn new(task_id: &str, seed: u64, actions: Vec<f32>, envs: Vec<Vec<Entry>>) -> Result<Self> {
        use super::{arms, planar, spatial};
        let (spec, replay): (&super::TaskSpec, ReplayFn) = match task_id {
            "Ant-v5" => task::<spatial::AntTask>(),
            "HalfCheetah-v5" => task::<planar::HalfCheetahTask>(),
            "Hopper-v5" => task::<planar::HopperTask>(),
            "Walker2d-v5" => task::<planar::Walker2dTask>(),
            "Humanoid-v5" => task::<spatial::HumanoidTask>(),
            "Swimmer-v5" => task::<planar::SwimmerTask>(),
            "Reacher-v5" => task::<arms::ReacherTask>(),
            "Pusher-v5" => task::<arms::PusherTask>(),
            "InvertedPendulum-v5" => task::<arms::InvertedPendulumTask>(),
            "InvertedDoublePendulum-v5" => task::<arms::InvertedDoublePendulumTask>(),
            other => {
                return Err(Error::UnknownTask {
                    id: other.to_owned(),
                    known: super::TASKS
                        .iter()
                        .map(|(id, _)| (*id).to_owned())
                        .collect(),
                });
            }
        };
        Ok(Self {
            task: spec.id,
            frame_skip: spec.frame_skip,
            seed,
            actions: actions.into(),
            envs: envs.into(),
            replay,
        })
    }

    /// One env of `task_id` run for about `duration` with random actions within the bounds (new
    /// episodes as it terminates or reaches its time limit), every step measured; with the
    /// env-steps/s `Env::step` ran at and the observation it ended on.
    pub fn record(task_id: &str, duration: Duration, seed: u64) -> Result<(Self, f64, Vec<f32>)> {
        let workload = Self::new(task_id, seed, Vec::new(), vec![Vec::new()])?;
        (record_fn(task_id)?)(workload, duration)
    }

    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// Steps marked as measured, all envs together.
    pub fn measured_steps(&self) -> usize {
        self.envs
            .iter()
            .flatten()
            .filter(|entry| matches!(entry, Entry::Step { measured: true, .. }))
            .count()
    }

    /// The envs replayed with bare `mj_step`s, split into `threads` contiguous groups replayed at
    /// once (one thread, env by env: the single-thread floor).
    pub fn bare_runs(&self, threads: usize, order: Order) -> Result<Vec<BareRun>> {
        let n = self.envs.len();
        let threads = threads.clamp(1, n.max(1));
        let groups: Vec<Vec<usize>> = (0..threads)
            .map(|t| (t * n / threads..(t + 1) * n / threads).collect())
            .collect();
        let (first, rest) = groups.split_first().expect("at least one group");
        std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter()
                .map(|group| scope.spawn(|| (self.replay)(self, group, order)))
                .collect();
            let mut runs = vec![(self.replay)(self, first, order)];
            for handle in others {
                runs.push(handle.join().unwrap_or_else(|_| {
                    Err(Error::InvalidConfig("a replay thread panicked".to_owned()))
                }));
            }
            runs.into_iter().collect()
        })
    }
}

type ReplayFn = fn(&PhysicsWorkload, &[usize], Order) -> Result<BareRun>;
type RecordFn = fn(PhysicsWorkload, Duration) -> Result<(PhysicsWorkload, f64, Vec<f32>)>;

fn task<T: Task>() -> (&'static super::TaskSpec, ReplayFn) {
    (&T::SPEC, replay::<T>)
}

fn record_fn(task_id: &str) -> Result<RecordFn> {
    use super::{arms, planar, spatial};
    Ok(match task_id {
        "Ant-v5" => record::<spatial::AntTask>,
        "HalfCheetah-v5" => record::<planar::HalfCheetahTask>,
        "Hopper-v5" => record::<planar::HopperTask>,
        "Walker2d-v5" => record::<planar::Walker2dTask>,
        "Humanoid-v5" => record::<spatial::HumanoidTask>,
        "Swimmer-v5" => record::<planar::SwimmerTask>,
        "Reacher-v5" => record::<arms::ReacherTask>,
        "Pusher-v5" => record::<arms::PusherTask>,
        "InvertedPendulum-v5" => record::<arms::InvertedPendulumTask>,
        _ => record::<arms::InvertedDoublePendulumTask>,
    })
}

fn record<T: Task>(
    workload: PhysicsWorkload,
    duration: Duration,
) -> Result<(PhysicsWorkload, f64, Vec<f32>)> {
    let spec = &T::SPEC;
    let mut env = MujocoEnv::<T>::new()?;
    let nu = env.action_space().flat_len();
    let (low, high) = match env.action_space() {
        Space::Box { low, high, .. } => (low, high),
        _ => (vec![-1.0; nu], vec![1.0; nu]),
    };
    let mut noise = Pcg64::from_seed(workload.seed ^ 0x5eed);
    let mut obs = vec![0.0f32; spec.obs_len];
    let (mut actions, mut entries) = (Vec::new(), Vec::new());
    let mut rng = Pcg64::from_seed(workload.seed);
    env.reset(&mut rng, &mut obs);
    let mut elapsed_in_episode = 0u32;
    let mut env_seconds = 0.0;
    let start = Instant::now();
    let mut action = vec![0.0f32; nu];
    while start.elapsed() < duration {
        for (a, (&lo, &hi)) in action.iter_mut().zip(low.iter().zip(&high)) {
            *a = noise.uniform(f64::from(lo), f64::from(hi)) as f32;
        }
        entries.push(Entry::Step {
            action: actions.len(),
            measured: true,
        });
        actions.extend_from_slice(&action);
        let step_start = Instant::now();
        let outcome = env.step(Action::Continuous(&action), &mut rng, &mut obs);
        env_seconds += step_start.elapsed().as_secs_f64();
        elapsed_in_episode += 1;
        if outcome.terminated || elapsed_in_episode >= spec.max_episode_steps {
            entries.push(Entry::Reset);
            env.reset(&mut rng, &mut obs);
            elapsed_in_episode = 0;
        }
    }
    let steps = actions.len() / nu.max(1);
    let workload = PhysicsWorkload {
        actions: actions.into(),
        envs: vec![entries].into(),
        ..workload
    };
    Ok((workload, steps as f64 / env_seconds, obs))
}

/// The calling thread's CPU seconds (Linux), for the floor's CPU cost.
#[cfg(target_os = "linux")]
fn thread_cpu_seconds() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux) into `time`.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (status == 0).then_some(time.seconds as f64 + time.nanoseconds as f64 * 1e-9)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> Option<f64> {
    None
}

fn replay<T: Task>(workload: &PhysicsWorkload, envs: &[usize], order: Order) -> Result<BareRun> {
    let spec = &T::SPEC;
    let mut run = BareRun {
        env_steps: 0,
        physics_steps: 0,
        physics_seconds: 0.0,
        physics_cpu_seconds: 0.0,
        final_observations: Vec::with_capacity(envs.len()),
    };
    // Env by env: one env, reset for each history; round robin: an env per history.
    let live = match order {
        Order::EnvByEnv => 1,
        Order::RoundRobin => envs.len(),
    };
    let mut replayers = (0..live)
        .map(|_| MujocoEnv::<T>::new())
        .collect::<Result<Vec<_>>>()?;
    let nu = replayers[0].action_space().flat_len();
    let mut obs = vec![0.0f32; spec.obs_len];
    let mut rngs: Vec<Pcg64> = Vec::with_capacity(live);
    let mut apply =
        |env: &mut MujocoEnv<T>, rng: &mut Pcg64, entry: Entry, run: &mut BareRun| match entry {
            Entry::Reset => env.reset(rng, &mut obs),
            Entry::Step { action, measured } => {
                let sim = env.simulation_mut();
                sim.set_ctrl(&workload.actions[action..action + nu]);
                let (wall, cpu) = (Instant::now(), thread_cpu_seconds());
                for _ in 0..spec.frame_skip {
                    sim.physics_step();
                }
                if measured {
                    let wall = wall.elapsed().as_secs_f64();
                    run.physics_seconds += wall;
                    run.physics_cpu_seconds += match (cpu, thread_cpu_seconds()) {
                        (Some(before), Some(after)) => after - before,
                        _ => wall,
                    };
                    run.env_steps += 1;
                    run.physics_steps += u64::from(spec.frame_skip);
                }
            }
        };
    let mut first_obs = vec![0.0f32; spec.obs_len];
    let mut start = |env: &mut MujocoEnv<T>, i: usize| {
        let mut rng = Pcg64::from_seed(workload.seed.wrapping_add(i as u64));
        env.reset(&mut rng, &mut first_obs);
        rng
    };
    // The env's contact forces and observation, as its last step or reset left them.
    let finish = |env: &mut MujocoEnv<T>, i: usize| {
        let last_was_step = matches!(workload.envs[i].last(), Some(Entry::Step { .. }));
        (i, env.observe_current(last_was_step))
    };
    match order {
        Order::EnvByEnv => {
            let env = &mut replayers[0];
            for &i in envs {
                let mut rng = start(env, i);
                for &entry in &workload.envs[i] {
                    apply(env, &mut rng, entry, &mut run);
                }
                run.final_observations.push(finish(env, i));
            }
        }
        Order::RoundRobin => {
            for (env, &i) in replayers.iter_mut().zip(envs) {
                rngs.push(start(env, i));
            }
            let longest = envs
                .iter()
                .map(|&i| workload.envs[i].len())
                .max()
                .unwrap_or(0);
            for t in 0..longest {
                for ((env, rng), &i) in replayers.iter_mut().zip(&mut rngs).zip(envs) {
                    if let Some(&entry) = workload.envs[i].get(t) {
                        apply(env, rng, entry, &mut run);
                    }
                }
            }
            for (env, &i) in replayers.iter_mut().zip(envs) {
                run.final_observations.push(finish(env, i));
            }
        }
    }
    Ok(run)
}
