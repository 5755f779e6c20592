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
//! for bit: its final observations are the envs' own. [`PhysicsWorkload::replays`] gives replays
//! that go on as the workload grows ([`Replay::advance`]); env by env, each env's state is then
//! loaded into the one hot simulation before its next stretch of steps (`mjSTATE_INTEGRATION`,
//! which the next step depends on entirely).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{MujocoEnv, Task};
use crate::env::{Action, Env};
use crate::error::{Error, Result};
use crate::rng::{Pcg64, env_seed};
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
/// `Pcg64::from_wide_seed(env_seed(seed, i))`, as in a pool.
#[derive(Clone)]
pub struct PhysicsWorkload {
    pub task: &'static str,
    pub frame_skip: u32,
    seed: u64,
    actions: Arc<[f32]>,
    envs: Arc<[Vec<Entry>]>,
    start_replay: StartFn,
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
        let (spec, start_replay): (&super::TaskSpec, StartFn) = match task_id {
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
            start_replay,
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
        let mut replays = self.replays(threads, order)?;
        Replay::advance_all(&mut replays, self)
    }

    /// Replays of the envs split into `threads` contiguous groups (as `bare_runs` splits them),
    /// each at its envs' first reset, to be advanced as the workload grows: a benchmark can
    /// replay each measured stretch of a pool's run right after the pool ran it, so that the pool
    /// and its floor are timed on the machine in the same state.
    pub fn replays(&self, threads: usize, order: Order) -> Result<Vec<Replay>> {
        let n = self.envs.len();
        let threads = threads.clamp(1, n.max(1));
        (0..threads)
            .map(|t| {
                (self.start_replay)(
                    self,
                    (t * n / threads..(t + 1) * n / threads).collect(),
                    order,
                )
            })
            .collect()
    }
}

/// A bare replay of some envs of a workload, continued by [`Replay::advance`] as the workload
/// grows (a workload built from the same envs' longer histories).
pub struct Replay(Box<dyn Continue>);

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

trait Continue: Send {
    fn advance(&mut self, workload: &PhysicsWorkload) -> Result<BareRun>;
}

impl Replay {
    /// Replays the entries the workload gained since the last advance (all of them the first
    /// time); the run counts those entries' measured steps, and its final observations are every
    /// replayed env's after them.
    pub fn advance(&mut self, workload: &PhysicsWorkload) -> Result<BareRun> {
        self.0.advance(workload)
    }

    /// Advances every replay at once, each on a thread of its own (the first on this one).
    pub fn advance_all(replays: &mut [Replay], workload: &PhysicsWorkload) -> Result<Vec<BareRun>> {
        let Some((first, rest)) = replays.split_first_mut() else {
            return Ok(Vec::new());
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter_mut()
                .map(|replay| scope.spawn(|| replay.advance(workload)))
                .collect();
            let mut runs = vec![first.advance(workload)];
            for handle in others {
                runs.push(handle.join().unwrap_or_else(|_| {
                    Err(Error::InvalidConfig("a replay thread panicked".to_owned()))
                }));
            }
            runs.into_iter().collect()
        })
    }
}

impl BareRun {
    /// Adds a later stretch of the same replay: counts and times add up, the final observations
    /// are the later ones.
    pub fn extend(&mut self, later: BareRun) {
        self.env_steps += later.env_steps;
        self.physics_steps += later.physics_steps;
        self.physics_seconds += later.physics_seconds;
        self.physics_cpu_seconds += later.physics_cpu_seconds;
        self.final_observations = later.final_observations;
    }
}

type StartFn = fn(&PhysicsWorkload, Vec<usize>, Order) -> Result<Replay>;
type RecordFn = fn(PhysicsWorkload, Duration) -> Result<(PhysicsWorkload, f64, Vec<f32>)>;

fn task<T: Task>() -> (&'static super::TaskSpec, StartFn) {
    (&T::SPEC, start_replay::<T>)
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

/// A replay in progress of one task's envs.
struct ReplayOf<T: Task> {
    order: Order,
    /// The replayed envs (workload indices).
    envs: Vec<usize>,
    /// Env by env: one simulation, each env's state loaded into it in turn (so that its steps run
    /// hot in cache); round robin: a simulation per env.
    sims: Vec<MujocoEnv<T>>,
    /// Env by env: each env's simulation state between its stretches.
    saved: Vec<Vec<f64>>,
    rngs: Vec<Pcg64>,
    /// Entries of each env replayed so far.
    cursors: Vec<usize>,
    observations: Vec<Vec<f32>>,
    scratch: Vec<f32>,
}

fn start_replay<T: Task>(
    workload: &PhysicsWorkload,
    envs: Vec<usize>,
    order: Order,
) -> Result<Replay> {
    let live = match order {
        Order::EnvByEnv => 1,
        Order::RoundRobin => envs.len(),
    };
    let mut sims = (0..live)
        .map(|_| MujocoEnv::<T>::new())
        .collect::<Result<Vec<_>>>()?;
    let mut scratch = vec![0.0f32; T::SPEC.obs_len];
    let (mut saved, mut rngs, mut observations) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &i) in envs.iter().enumerate() {
        let env = &mut sims[if order == Order::EnvByEnv { 0 } else { k }];
        let mut rng = Pcg64::from_wide_seed(env_seed(workload.seed, i));
        env.reset(&mut rng, &mut scratch);
        observations.push(scratch.clone());
        if order == Order::EnvByEnv {
            let mut state = Vec::new();
            env.simulation().save_state(&mut state);
            saved.push(state);
        }
        rngs.push(rng);
    }
    Ok(Replay(Box::new(ReplayOf {
        order,
        cursors: vec![0; envs.len()],
        envs,
        sims,
        saved,
        rngs,
        observations,
        scratch,
    })))
}

impl<T: Task> ReplayOf<T> {
    /// Applies one entry to `env`, timing its `mj_step`s if the step is measured.
    fn apply(
        workload: &PhysicsWorkload,
        env: &mut MujocoEnv<T>,
        rng: &mut Pcg64,
        entry: Entry,
        scratch: &mut [f32],
        run: &mut BareRun,
    ) {
        let spec = &T::SPEC;
        match entry {
            Entry::Reset => env.reset(rng, scratch),
            Entry::Step { action, measured } => {
                let nu = env.simulation().model().nu();
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
        }
    }
}

impl<T: Task> Continue for ReplayOf<T> {
    fn advance(&mut self, workload: &PhysicsWorkload) -> Result<BareRun> {
        let mut run = BareRun {
            env_steps: 0,
            physics_steps: 0,
            physics_seconds: 0.0,
            physics_cpu_seconds: 0.0,
            final_observations: Vec::with_capacity(self.envs.len()),
        };
        let history = |i: usize| workload.envs.get(i).map_or(&[][..], Vec::as_slice);
        match self.order {
            Order::EnvByEnv => {
                let env = &mut self.sims[0];
                for (k, &i) in self.envs.iter().enumerate() {
                    let entries = &history(i)[self.cursors[k].min(history(i).len())..];
                    if entries.is_empty() {
                        continue;
                    }
                    env.simulation_mut()
                        .load_state(&self.saved[k])
                        .map_err(Error::InvalidConfig)?;
                    for &entry in entries {
                        Self::apply(
                            workload,
                            env,
                            &mut self.rngs[k],
                            entry,
                            &mut self.scratch,
                            &mut run,
                        );
                    }
                    self.cursors[k] += entries.len();
                    let last_was_step = matches!(entries.last(), Some(Entry::Step { .. }));
                    self.observations[k] = env.observe_current(last_was_step);
                    self.saved[k].clear();
                    env.simulation().save_state(&mut self.saved[k]);
                }
            }
            Order::RoundRobin => {
                let longest = (0..self.envs.len())
                    .map(|k| history(self.envs[k]).len().saturating_sub(self.cursors[k]))
                    .max()
                    .unwrap_or(0);
                for t in 0..longest {
                    for (k, &i) in self.envs.iter().enumerate() {
                        if let Some(&entry) = history(i).get(self.cursors[k] + t) {
                            Self::apply(
                                workload,
                                &mut self.sims[k],
                                &mut self.rngs[k],
                                entry,
                                &mut self.scratch,
                                &mut run,
                            );
                        }
                    }
                }
                for (k, &i) in self.envs.iter().enumerate() {
                    let entries = &history(i)[self.cursors[k].min(history(i).len())..];
                    if let Some(last) = entries.last() {
                        let last_was_step = matches!(last, Entry::Step { .. });
                        self.observations[k] = self.sims[k].observe_current(last_was_step);
                    }
                    self.cursors[k] += entries.len();
                }
            }
        }
        run.final_observations = self
            .envs
            .iter()
            .zip(&self.observations)
            .map(|(&i, obs)| (i, obs.clone()))
            .collect();
        Ok(run)
    }
}
