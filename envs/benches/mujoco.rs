//! `cargo bench -p hone-envs --features mujoco --bench mujoco [-- OPTIONS]`: the MuJoCo tasks in
//! the pool over the engine's grid, each cell against its physics floor: bare `mj_step` on the
//! env's own recorded trajectory (same model, states and controls; `PhysicsWorkload`), measured
//! right before and after the cell. Two floors: the issue's, the single-thread rate times the
//! threads the pool used; and the concurrent one, that many threads of bare `mj_step` at once
//! (lower than the first when the cores are shared with other work). `scripts/bench_mujoco.sh`
//! adds envpool's figures from the same run.
//!
//! Options: `--ms N` measured milliseconds per cell and per floor (default 1000), `--tasks A,B`
//! (default Ant-v5,HalfCheetah-v5), `--envs 1,8,...`, `--threads 1,2`, `--modes sync,async`,
//! `--csv PATH` (the pool's rows, in `hone_envs::bench::format_csv`'s format).

use std::time::Duration;

use hone_envs::bench::{BenchMode, Grid, format_csv, run_cell};
use hone_envs::mujoco::{PhysicsWorkload, TASKS};

fn list<T: std::str::FromStr>(value: &str, what: &str) -> Vec<T> {
    value
        .split(',')
        .map(|item| {
            item.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad {what}: `{item}`"))
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".to_owned(), |l| l.trim().to_owned())
}

fn main() {
    let mut grid = Grid {
        tasks: vec!["Ant-v5".to_owned(), "HalfCheetah-v5".to_owned()],
        duration: Duration::from_millis(1000),
        ..Grid::default()
    };
    let mut csv_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--ms" => grid.duration = Duration::from_millis(list::<u64>(&value(), "--ms")[0]),
            "--tasks" => grid.tasks = list(&value(), "--tasks"),
            "--envs" => grid.num_envs = list(&value(), "--envs"),
            "--threads" => grid.num_threads = list(&value(), "--threads"),
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
        let workload = PhysicsWorkload::record(task, duration * 2, grid.seed)
            .unwrap_or_else(|e| panic!("{task}: {e}"));
        let same = workload
            .replay_matches()
            .unwrap_or_else(|e| panic!("{task}: {e}"));
        let single = workload.bare_rate(1, duration).expect("replay");
        println!(
            "\n{task}: frame skip {}; recorded {} env-steps of random actions; bare replay ends in \
             the same state: {same}",
            workload.frame_skip,
            workload.env_steps()
        );
        println!(
            "one thread: bare mj_step {:.0}/s = {:.0} env-steps/s; Env::step {:.0} env-steps/s",
            single,
            single / f64::from(workload.frame_skip),
            workload.env_step_rate()
        );
        println!(
            "{:<5} {:>5} {:>7} {:>4} {:>6} {:>12} {:>12} {:>7} {:>12} {:>7}",
            "mode",
            "envs",
            "threads",
            "used",
            "batch",
            "env-steps/s",
            "1-thr x used",
            "of it",
            "concurrent",
            "of it"
        );
        for &mode in &grid.modes {
            for &num_envs in &grid.num_envs {
                if mode == BenchMode::Async && num_envs < 2 {
                    continue;
                }
                for &num_threads in &grid.num_threads {
                    let floor = |threads: usize| {
                        workload.bare_rate(threads, duration).expect("replay")
                            / f64::from(workload.frame_skip)
                    };
                    // The floors around the cell: the machine's load drifts. The pool uses a
                    // thread per 16 envs of a batch at most.
                    let batch = match mode {
                        BenchMode::Sync => num_envs,
                        BenchMode::Async => num_envs / 2,
                    };
                    let used = num_threads.min(batch.div_ceil(16)).max(1);
                    let single_before = floor(1);
                    let concurrent_before = floor(used);
                    let row = run_cell(task, mode, num_envs, num_threads, duration, grid.seed)
                        .unwrap_or_else(|e| panic!("{task}: {e}"));
                    assert_eq!(row.threads_used, used, "the pool's thread count");
                    let concurrent = (concurrent_before + floor(used)) / 2.0;
                    let single = (single_before + floor(1)) / 2.0;
                    let rate = row.steps_per_second();
                    println!(
                        "{:<5} {:>5} {:>7} {:>4} {:>6} {:>12.0} {:>12.0} {:>6.1}% {:>12.0} {:>6.1}%",
                        mode.name(),
                        num_envs,
                        num_threads,
                        used,
                        row.batch_size,
                        rate,
                        single * used as f64,
                        100.0 * rate / (single * used as f64),
                        concurrent,
                        100.0 * rate / concurrent
                    );
                    rows.push(row);
                }
            }
        }
    }
    println!("load average at end: {}", load_average());
    if let Some(path) = csv_path {
        std::fs::write(&path, format_csv(&rows))
            .unwrap_or_else(|error| panic!("writing {path}: {error}"));
    }
}
