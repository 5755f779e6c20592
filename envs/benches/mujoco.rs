//! `cargo bench -p hone-envs --features mujoco --bench mujoco [-- OPTIONS]`: the MuJoCo tasks in
//! the pool over the engine's grid, each cell against its physics floor: the cell's own env
//! trajectories (logged from its batches) replayed with bare `mj_step`s, env after env
//! (`PhysicsWorkload`; the replay must end on the pool's observations, checked). The measured
//! time is cut into windows, and after each window the replays go over what the envs did in it,
//! so that the pool and its floor are timed close together (on a shared machine, whatever else
//! runs changes the speed of both alike). Three comparisons per cell:
//!
//! - the floor: the single-thread bare rate (env after env, each hot in cache) times the
//!   threads the pool used;
//! - round-robin: the same on one thread but a step of every env in turn, as the pool steps them
//!   (every env's data cycles through the caches), times the threads: what is left below it is
//!   the engine's overhead and the env's own work;
//! - concurrent: the envs split over that many threads of bare `mj_step` at once (below the
//!   floor when other work shares the cores);
//! - CPU efficiency: the thread CPU time of the bare `mj_step`s over the CPU time the process
//!   spent in the cell (the engine's and the env's own overhead, spinning included, whatever
//!   else runs on the machine).
//!
//! `scripts/bench_mujoco.sh` adds envpool's figures from the same run.
//!
//! Options: `--ms N` measured milliseconds per cell (default 1000), `--tasks A,B` (default
//! Ant-v5,HalfCheetah-v5), `--envs 1,8,...`, `--threads 1,2`, `--modes sync,async`, `--windows N`
//! (measured windows per cell, default 5), `--csv PATH` (the pool's rows, in
//! `hone_envs::bench::format_csv`'s format), `--floor-csv PATH` (each cell's rate and its three
//! references, in env-steps/s, and its CPU efficiency as a fraction).

use std::time::{Duration, Instant};

use hone_envs::bench::{BenchMode, Grid, Row, format_csv, parse_list};
use hone_envs::mujoco::{BareRun, Entry, Order, PhysicsWorkload, Replay, TASKS};
use hone_envs::rng::Pcg64;
use hone_envs::{EnvPool, PoolConfig, Space};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".to_owned(), |l| l.trim().to_owned())
}

unsafe extern "C" {
    /// POSIX `getrusage`; `usage` receives a `struct rusage` (x86-64 / aarch64 Linux: two
    /// `timeval`s, then 14 longs).
    fn getrusage(who: i32, usage: *mut [i64; 18]) -> i32;
}

/// User plus system CPU seconds of the whole process (every thread) so far.
fn process_cpu_seconds() -> f64 {
    const RUSAGE_SELF: i32 = 0;
    let mut usage = [0i64; 18];
    // SAFETY: `usage` is larger than struct rusage on 64-bit Linux, and getrusage only writes it.
    let status = unsafe { getrusage(RUSAGE_SELF, &mut usage) };
    assert_eq!(status, 0, "getrusage failed");
    (usage[0] + usage[2]) as f64 + (usage[1] + usage[3]) as f64 * 1e-6
}

/// A timed cell: env-steps, wall seconds and process CPU seconds of the measured part, and the
/// bare replays of what its envs did, timed right after each measured window.
struct Cell {
    row: Row,
    cpu_seconds: f64,
    /// One thread, env by env.
    single: BareRun,
    /// One thread, round robin.
    round_robin: BareRun,
    /// As many threads as the pool used, env by env, each thread's run.
    concurrent: Vec<BareRun>,
    /// Whether every replay ended on the pool's last observations.
    same: bool,
}

/// Runs one pool cell: random actions within the bounds (drawn beforehand), a warm-up of a fifth
/// of `duration`, then `duration` measured in `windows` stretches. After each stretch the three
/// replays of the cell's floor are advanced over what the envs did in it, so the pool and its
/// floor are timed on the machine in the same state (whatever else shares its cores then). Async
/// cells use batch_size = num_envs / 2 and send each received batch straight back, as
/// `hone_envs::bench` and `scripts/bench_envpool.py` do.
fn run_cell(
    task: &str,
    mode: BenchMode,
    num_envs: usize,
    threads: usize,
    duration: Duration,
    windows: u32,
) -> Cell {
    let batch_size = match mode {
        BenchMode::Sync => num_envs,
        BenchMode::Async => (num_envs / 2).max(1),
    };
    let config = PoolConfig::new(task, num_envs)
        .batch_size(batch_size)
        .num_threads(threads)
        .seed(0);
    let mut pool = EnvPool::new(config).unwrap_or_else(|e| panic!("{task}: {e}"));
    let Space::Box { low, high, .. } = pool.action_space().clone() else {
        panic!("{task}: MuJoCo tasks have Box actions")
    };
    let per_row = low.len();
    let mut noise = Pcg64::from_seed(1);
    let batches = 16;
    let actions: Vec<f32> = (0..batches * batch_size * per_row)
        .map(|i| noise.uniform(f64::from(low[i % per_row]), f64::from(high[i % per_row])) as f32)
        .collect();
    let rows_of = |step: usize, rows: usize| {
        let start = (step % batches) * batch_size * per_row;
        &actions[start..start + rows * per_row]
    };
    let mut env_ids: Vec<u32> = Vec::with_capacity(batch_size);
    let mut step = 0usize;
    let mut log: Vec<Vec<Entry>> = vec![Vec::new(); num_envs];
    let mut pending: Vec<Option<(usize, bool)>> = vec![None; num_envs];
    let mut last_observations: Vec<Vec<f32>> = vec![Vec::new(); num_envs];
    match mode {
        BenchMode::Sync => {
            let batch = pool.reset().expect("reset");
            for (r, obs) in last_observations.iter_mut().enumerate() {
                obs.extend_from_slice(batch.observation(r));
            }
        }
        BenchMode::Async => pool.async_reset().expect("async_reset"),
    }
    let offset_of =
        |step: usize, row: usize| (step % batches) * batch_size * per_row + row * per_row;
    let mut run_for = |pool: &mut EnvPool,
                       log: &mut Vec<Vec<Entry>>,
                       limit: Duration,
                       measured: bool|
     -> (u64, f64, f64) {
        let (start, cpu_start) = (Instant::now(), process_cpu_seconds());
        let mut rows = 0u64;
        loop {
            for _ in 0..4 {
                let batch = if mode == BenchMode::Sync {
                    for (i, entries) in pending.iter_mut().enumerate() {
                        *entries = Some((offset_of(step, i), measured));
                    }
                    pool.step(rows_of(step, batch_size)).expect("step")
                } else {
                    pool.recv().expect("recv")
                };
                rows += batch.len() as u64;
                for (r, &env_id) in batch.env_id.iter().enumerate() {
                    let env = env_id as usize;
                    if let Some((action, measured)) = pending[env].take() {
                        log[env].push(if batch.elapsed_step[r] == 0 {
                            Entry::Reset
                        } else {
                            Entry::Step { action, measured }
                        });
                    }
                    last_observations[env].clear();
                    last_observations[env].extend_from_slice(batch.observation(r));
                }
                if mode == BenchMode::Async {
                    env_ids.clear();
                    env_ids.extend_from_slice(batch.env_id);
                    for (r, &env_id) in env_ids.iter().enumerate() {
                        pending[env_id as usize] = Some((offset_of(step, r), measured));
                    }
                    pool.send(rows_of(step, env_ids.len()), &env_ids)
                        .expect("send");
                }
                step += 1;
            }
            if start.elapsed() >= limit {
                let cpu = process_cpu_seconds() - cpu_start;
                return (rows, start.elapsed().as_secs_f64(), cpu);
            }
        }
    };
    let workload_now = |log: &[Vec<Entry>]| {
        PhysicsWorkload::new(task, 0, actions.clone(), log.to_vec()).expect("a MuJoCo task")
    };
    let replays = |threads: usize, order: Order| {
        workload_now(&log)
            .replays(threads, order)
            .expect("replay set-up")
    };
    let (mut single, mut round_robin, mut concurrent) = (
        replays(1, Order::EnvByEnv),
        replays(1, Order::RoundRobin),
        replays(pool.num_threads(), Order::EnvByEnv),
    );
    run_for(&mut pool, &mut log, duration / 5, false);
    let (mut env_steps, mut seconds, mut cpu_seconds) = (0, 0.0, 0.0);
    let mut totals: Option<(BareRun, BareRun, Vec<BareRun>)> = None;
    for _ in 0..windows.max(1) {
        let (rows, wall, cpu) = run_for(&mut pool, &mut log, duration / windows.max(1), true);
        env_steps += rows;
        seconds += wall;
        cpu_seconds += cpu;
        let workload = workload_now(&log);
        let advance =
            |replays: &mut Vec<Replay>| Replay::advance_all(replays, &workload).expect("replay");
        let runs = (
            advance(&mut single).remove(0),
            advance(&mut round_robin).remove(0),
            advance(&mut concurrent),
        );
        totals = Some(match totals {
            None => runs,
            Some((mut a, mut b, mut c)) => {
                a.extend(runs.0);
                b.extend(runs.1);
                for (total, run) in c.iter_mut().zip(runs.2) {
                    total.extend(run);
                }
                (a, b, c)
            }
        });
    }
    let (single, round_robin, concurrent) = totals.expect("at least one window");
    // The replays did what the pool's envs did: they end on their observations.
    let same = single
        .final_observations
        .iter()
        .chain(&round_robin.final_observations)
        .chain(concurrent.iter().flat_map(|run| &run.final_observations))
        .all(|(env, obs)| *obs == last_observations[*env]);
    Cell {
        row: Row {
            task: task.to_owned(),
            mode,
            num_envs,
            num_threads: threads,
            threads_used: pool.num_threads(),
            batch_size,
            env_steps,
            seconds,
        },
        cpu_seconds,
        single,
        round_robin,
        concurrent,
        same,
    }
}

fn main() {
    let mut grid = Grid {
        tasks: vec!["Ant-v5".to_owned(), "HalfCheetah-v5".to_owned()],
        duration: Duration::from_millis(1000),
        ..Grid::default()
    };
    let mut csv_path = None;
    let mut windows = 5;
    let mut floor_csv_path = None;
    let mut floor_csv = String::from(
        "task,mode,num_envs,num_threads,threads_used,steps_per_second,floor,round_robin,concurrent,cpu_efficiency\n",
    );
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--ms" => grid.duration = Duration::from_millis(parse_list::<u64>(&value(), "--ms")[0]),
            "--tasks" => grid.tasks = parse_list(&value(), "--tasks"),
            "--envs" => grid.num_envs = parse_list(&value(), "--envs"),
            "--threads" => grid.num_threads = parse_list(&value(), "--threads"),
            "--modes" => {
                grid.modes = value()
                    .split(',')
                    .map(|mode| match mode {
                        "sync" => BenchMode::Sync,
                        "async" => BenchMode::Async,
                        other => panic!("bad mode `{other}`: sync or async"),
                    })
                    .collect()
            }
            "--csv" => csv_path = Some(value()),
            "--floor-csv" => floor_csv_path = Some(value()),
            "--windows" => windows = parse_list::<u32>(&value(), "--windows")[0].max(1),
            _ => {}
        }
    }
    for task in &grid.tasks {
        assert!(
            TASKS.iter().any(|(id, _)| id == task),
            "{task} is not a MuJoCo task"
        );
    }
    println!("load average at start: {}", load_average());
    let duration = grid.duration;
    let mut rows = Vec::new();
    for task in &grid.tasks {
        let (_, env_rate, _) =
            PhysicsWorkload::record(task, duration, 0).unwrap_or_else(|e| panic!("{task}: {e}"));
        println!("\n{task}: Env::step alone, one env on one thread: {env_rate:.0} env-steps/s");
        println!(
            "{:<5} {:>5} {:>7} {:>4} {:>6} {:>11} | {:>11} {:>6} | {:>11} {:>6} | {:>11} {:>6} | {:>7} {:>5}",
            "mode",
            "envs",
            "threads",
            "used",
            "batch",
            "env-steps/s",
            "floor",
            "of it",
            "round-robin",
            "of it",
            "concurrent",
            "of it",
            "CPU eff",
            "same"
        );
        for &mode in &grid.modes {
            for &num_envs in &grid.num_envs {
                if mode == BenchMode::Async && num_envs < 2 {
                    continue;
                }
                for &num_threads in &grid.num_threads {
                    let cell = run_cell(task, mode, num_envs, num_threads, duration, windows);
                    let row = &cell.row;
                    let used = row.threads_used as f64;
                    let single = &cell.single;
                    let concurrent: f64 = cell
                        .concurrent
                        .iter()
                        .map(BareRun::env_steps_per_second)
                        .sum();
                    let floor = single.env_steps_per_second() * used;
                    let round_robin = cell.round_robin.env_steps_per_second() * used;
                    let bare_cpu =
                        single.physics_cpu_seconds / single.env_steps as f64 * row.env_steps as f64;
                    let rate = row.steps_per_second();
                    let percent = |reference: f64| 100.0 * rate / reference;
                    println!(
                        "{:<5} {:>5} {:>7} {:>4} {:>6} {:>11.0} | {:>11.0} {:>5.0}% | {:>11.0} {:>5.0}% | {:>11.0} {:>5.0}% | {:>6.0}% {:>5}",
                        mode.name(),
                        num_envs,
                        num_threads,
                        row.threads_used,
                        row.batch_size,
                        rate,
                        floor,
                        percent(floor),
                        round_robin,
                        percent(round_robin),
                        concurrent,
                        percent(concurrent),
                        100.0 * bare_cpu / cell.cpu_seconds,
                        cell.same
                    );
                    floor_csv.push_str(&format!(
                        "{task},{},{num_envs},{num_threads},{},{rate},{floor},{round_robin},{concurrent},{}\n",
                        mode.name(),
                        row.threads_used,
                        bare_cpu / cell.cpu_seconds
                    ));
                    rows.push(cell.row);
                }
            }
        }
    }
    println!("load average at end: {}", load_average());
    if let Some(path) = csv_path {
        std::fs::write(&path, format_csv(&rows))
            .unwrap_or_else(|error| panic!("writing {path}: {error}"));
    }
    if let Some(path) = floor_csv_path {
        std::fs::write(&path, floor_csv).unwrap_or_else(|error| panic!("writing {path}: {error}"));
    }
}
