//! `cargo bench -p hone-envs --bench envs [-- OPTIONS]`: env-steps/s of every built-in task over
//! the grid (1 to 1024 envs, 1 and 2 threads, sync and async), as a table.
//!
//! Options: `--ms N` measured milliseconds per cell (default 300), `--tasks A,B`,
//! `--envs 1,8,...`, `--threads 1,2`, `--modes sync,async`, `--csv PATH` (also write CSV, for
//! `scripts/bench_envs.sh`).

use std::time::Duration;

use hone_envs::bench::{BenchMode, Grid, format_csv, format_row, parse_list, table_header};

fn main() {
    let mut grid = Grid::default();
    let mut csv_path = None;
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
            // cargo bench passes --bench; ignore what is not ours.
            _ => {}
        }
    }
    // Other processes share the cores: say how busy the machine was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    println!("{}", table_header());
    let rows = hone_envs::bench::run_grid(&grid, |row| println!("{}", format_row(row)))
        .unwrap_or_else(|error| panic!("benchmark failed: {error}"));
    for row in rows
        .iter()
        .filter(|row| row.num_envs == 1 && row.mode == BenchMode::Sync)
    {
        println!(
            "single env, {} thread(s): {:.0} ns per step ({})",
            row.num_threads,
            row.nanos_per_step(),
            row.task
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", load.trim());
    }
    if let Some(path) = csv_path {
        std::fs::write(&path, format_csv(&rows))
            .unwrap_or_else(|error| panic!("writing {path}: {error}"));
    }
}
