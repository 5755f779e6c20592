//! The env-engine benchmark behind `cargo bench -p hone-envs` (and `hone bench envs`): env-steps
//! per second over a grid of tasks, pool sizes, thread counts and modes.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::batch::Actions;
use crate::error::Result;
use crate::pool::{EnvPool, PoolConfig};
use crate::space::Space;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchMode {
    /// `step` over every env.
    Sync,
    /// `send`/`recv` with `batch_size = num_envs / 2`.
    Async,
}

impl BenchMode {
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Sync => "sync",
            BenchMode::Async => "async",
        }
    }
}

/// The cells to measure: every combination, except async with fewer than 2 envs.
#[derive(Clone, Debug)]
pub struct Grid {
    pub tasks: Vec<String>,
    pub num_envs: Vec<usize>,
    pub num_threads: Vec<usize>,
    pub modes: Vec<BenchMode>,
    /// Measured time per cell (after a warm-up of a fifth of it).
    pub duration: Duration,
    pub seed: u64,
}

impl Default for Grid {
    /// The grid: the built-in tasks, 1 to 1024 envs, 1 and 2 threads, both modes.
    fn default() -> Self {
        Self {
            tasks: crate::registry::BUILTIN_TASKS
                .iter()
                .map(|(id, _)| (*id).to_owned())
                .collect(),
            num_envs: vec![1, 8, 64, 256, 1024],
            num_threads: vec![1, 2],
            modes: vec![BenchMode::Sync, BenchMode::Async],
            duration: Duration::from_millis(300),
            seed: 0,
        }
    }
}

/// One measured cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub task: String,
    pub mode: BenchMode,
    pub num_envs: usize,
    /// As asked for.
    pub num_threads: usize,
    /// What the pool used (`EnvPool::num_threads`: fewer for small pools).
    pub threads_used: usize,
    pub batch_size: usize,
    /// Env-steps (batch rows, reset rows included) in the measured time.
    pub env_steps: u64,
    pub seconds: f64,
}

impl Row {
    pub fn steps_per_second(&self) -> f64 {
        self.env_steps as f64 / self.seconds
    }

    /// Wall time per env-step.
    pub fn nanos_per_step(&self) -> f64 {
        self.seconds * 1e9 / self.env_steps as f64
    }
}

/// Random valid actions, a few batches' worth, drawn once so the timing is the pool's alone.
struct ActionTable {
    int: Vec<i64>,
    float: Vec<f32>,
    per_batch: usize,
    batches: usize,
}

impl ActionTable {
    fn new(space: &Space, rows: usize, seed: u64) -> Self {
        const BATCHES: usize = 16;
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        // splitmix64: independent of the envs' generator, good enough for benchmark inputs.
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let per_row = space.flat_len();
        let count = rows * per_row * BATCHES;
        let (int, float) = match space {
            Space::Discrete { n } => (
                (0..count).map(|_| (next() % *n as u64) as i64).collect(),
                Vec::new(),
            ),
            Space::MultiDiscrete { nvec } => (
                (0..count)
                    .map(|i| (next() % nvec[i % per_row] as u64) as i64)
                    .collect(),
                Vec::new(),
            ),
            Space::Box { low, high, .. } => (
                Vec::new(),
                (0..count)
                    .map(|i| {
                        let unit = (next() >> 40) as f32 / (1u64 << 24) as f32;
                        let (lo, hi) = (low[i % per_row].max(-1e3), high[i % per_row].min(1e3));
                        lo + unit * (hi - lo)
                    })
                    .collect(),
            ),
        };
        Self {
            int,
            float,
            per_batch: rows * per_row,
            batches: BATCHES,
        }
    }

    /// The actions of batch `step` (cycling), `rows` rows of them.
    fn get(&self, step: usize, rows: usize, per_row: usize) -> Actions<'_> {
        let start = (step % self.batches) * self.per_batch;
        let len = rows * per_row;
        if self.float.is_empty() {
            Actions::Int(&self.int[start..start + len])
        } else {
            Actions::Float(&self.float[start..start + len])
        }
    }
}

/// Measures one cell.
pub fn run_cell(
    task: &str,
    mode: BenchMode,
    num_envs: usize,
    num_threads: usize,
    duration: Duration,
    seed: u64,
) -> Result<Row> {
    let batch_size = match mode {
        BenchMode::Sync => num_envs,
        BenchMode::Async => (num_envs / 2).max(1),
    };
    let config = PoolConfig::new(task, num_envs)
        .batch_size(batch_size)
        .num_threads(num_threads)
        .seed(seed);
    let mut pool = EnvPool::new(config)?;
    let per_row = pool.action_space().flat_len();
    let actions = ActionTable::new(pool.action_space(), batch_size, seed);
    // Time checks every few thousand env-steps keep the clock out of the measurement.
    let steps_per_check = (4096 / batch_size).max(1);
    let warm_up = duration / 5;

    let (env_steps, seconds) = match mode {
        BenchMode::Sync => {
            pool.reset()?;
            let mut step = 0;
            let mut run_for = |limit: Duration| -> Result<(u64, f64)> {
                let start = Instant::now();
                let mut rows = 0u64;
                loop {
                    for _ in 0..steps_per_check {
                        rows += pool.step(actions.get(step, batch_size, per_row))?.len() as u64;
                        step += 1;
                    }
                    let elapsed = start.elapsed();
                    if elapsed >= limit {
                        return Ok((rows, elapsed.as_secs_f64()));
                    }
                }
            };
            run_for(warm_up)?;
            run_for(duration)?
        }
        BenchMode::Async => {
            pool.async_reset()?;
            let mut env_ids = Vec::with_capacity(batch_size);
            let mut step = 0;
            let mut run_for = |limit: Duration| -> Result<(u64, f64)> {
                let start = Instant::now();
                let mut rows = 0u64;
                loop {
                    for _ in 0..steps_per_check {
                        let batch = pool.recv()?;
                        rows += batch.len() as u64;
                        env_ids.clear();
                        env_ids.extend_from_slice(batch.env_id);
                        pool.send(actions.get(step, env_ids.len(), per_row), &env_ids)?;
                        step += 1;
                    }
                    let elapsed = start.elapsed();
                    if elapsed >= limit {
                        return Ok((rows, elapsed.as_secs_f64()));
                    }
                }
            };
            run_for(warm_up)?;
            run_for(duration)?
        }
    };
    Ok(Row {
        task: task.to_owned(),
        mode,
        num_envs,
        num_threads,
        threads_used: pool.num_threads(),
        batch_size,
        env_steps,
        seconds,
    })
}

/// Measures every cell of `grid`, calling `on_row` as each finishes (to print progressively).
pub fn run_grid(grid: &Grid, mut on_row: impl FnMut(&Row)) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for task in &grid.tasks {
        for &mode in &grid.modes {
            for &num_envs in &grid.num_envs {
                if mode == BenchMode::Async && num_envs < 2 {
                    continue;
                }
                for &num_threads in &grid.num_threads {
                    let row =
                        run_cell(task, mode, num_envs, num_threads, grid.duration, grid.seed)?;
                    let row = Row { num_threads, ..row };
                    on_row(&row);
                    rows.push(row);
                }
            }
        }
    }
    Ok(rows)
}

/// The header of `format_row`'s lines.
/// A comma-separated list of a benchmark's command line (`--envs 8,64,256`); a clear panic on a
/// bad item.
pub fn parse_list<T: std::str::FromStr>(value: &str, what: &str) -> Vec<T> {
    value
        .split(',')
        .map(|item| {
            item.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad {what}: `{item}`"))
        })
        .collect()
}

pub fn table_header() -> String {
    format!(
        "{:<26} {:<5} {:>6} {:>7} {:>4} {:>6} {:>14} {:>10}",
        "task", "mode", "envs", "threads", "used", "batch", "env-steps/s", "ns/step"
    )
}

pub fn format_row(row: &Row) -> String {
    format!(
        "{:<26} {:<5} {:>6} {:>7} {:>4} {:>6} {:>14.0} {:>10.1}",
        row.task,
        row.mode.name(),
        row.num_envs,
        row.num_threads,
        row.threads_used,
        row.batch_size,
        row.steps_per_second(),
        row.nanos_per_step()
    )
}

/// The rows as a table, one line each under `table_header`.
pub fn format_table(rows: &[Row]) -> String {
    let mut table = table_header();
    for row in rows {
        let _ = write!(table, "\n{}", format_row(row));
    }
    table
}

/// The rows as CSV (`task,mode,num_envs,num_threads,batch_size,steps_per_second`), the format
/// `scripts/bench_envpool.py` reads to compute ratios.
pub fn format_csv(rows: &[Row]) -> String {
    let mut csv = "task,mode,num_envs,num_threads,batch_size,steps_per_second\n".to_owned();
    for row in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.1}",
            row.task,
            row.mode.name(),
            row.num_envs,
            row.num_threads,
            row.batch_size,
            row.steps_per_second()
        );
    }
    csv
}
