//! `hone train` and `hone eval`: PPO on a hone-envs task in a run directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hone_envs::{PoolConfig, Space};
use hone_telemetry::{Event, RunControl};
use hone_trainer::ppo::run::{Observer, RunSummary};
use hone_trainer::ppo::{self, PpoConfig};
use hone_trainer::run_dir::{CheckpointStore, RunDir};
use hone_tui::{DashboardOptions, DashboardThread, Mode, Source, TextProgress};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Task id, e.g. CartPole-v1 (default: the config file's env_id).
    #[arg(long)]
    env: Option<String>,
    /// A TOML file of PPO settings over the defaults (CleanRL's ppo.py for discrete actions,
    /// ppo_continuous_action.py for continuous ones).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides one setting, e.g. --set learning_rate=1e-3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    total_steps: Option<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Run name (default: <env>__ppo__<seed>__<unix time>, as CleanRL).
    #[arg(long)]
    name: Option<String>,
    /// Folder that holds the run directories.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Continue the run in this run directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["env", "config", "sets", "seed", "device", "name"])]
    resume: Option<PathBuf>,
    /// Episodes of the deterministic policy to evaluate at the end (0: none).
    #[arg(long, default_value_t = 10)]
    eval_episodes: usize,
    /// Print a progress bar and periodic summaries instead of opening the dashboard (the
    /// default when stdout is not a terminal).
    #[arg(long)]
    no_tui: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run directory.
    run: PathBuf,
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Seed of the evaluation envs (env i gets seed + i).
    #[arg(long, default_value_t = 1_000_000)]
    seed: u64,
    /// `latest`, `best`, or a checkpoint folder.
    #[arg(long, default_value = "latest")]
    checkpoint: String,
}

/// The PPO defaults that fit the task's action space.
fn defaults_for(env_id: &str) -> Result<PpoConfig> {
    let pool = hone_envs::registry::make(env_id, PoolConfig::new(env_id, 1).num_threads(1))?;
    let mut defaults = match pool.action_space() {
        Space::Box { .. } => PpoConfig::continuous(),
        _ => PpoConfig::default(),
    };
    defaults.env_id = env_id.to_owned();
    Ok(defaults)
}

/// The env id from the command line, else from the config file.
fn env_id(args: &TrainArgs) -> Result<String> {
    if let Some(env) = &args.env {
        return Ok(env.clone());
    }
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if let Some(toml::Value::String(env)) = table.get("env_id") {
            return Ok(env.clone());
        }
    }
    bail!(
        "no task given: pass --env <id> (known ids: {})",
        hone_envs::registry::task_ids().join(", ")
    )
}

/// What `hone train` will do once its run directory is ready.
enum Plan {
    Start(Box<PpoConfig>),
    Resume,
}

pub fn run_train(args: &TrainArgs) -> Result<()> {
    let dashboard = !args.no_tui && std::io::stdout().is_terminal();
    let (run, plan) = if let Some(run_path) = &args.resume {
        (RunDir::open_to_continue(run_path)?, Plan::Resume)
    } else {
        let env_id = env_id(args)?;
        let mut config: PpoConfig = hone_trainer::config::resolve(
            &defaults_for(&env_id)?,
            args.config.as_deref(),
            &args.sets,
        )?;
        config.env_id = env_id;
        if let Some(seed) = args.seed {
            config.seed = seed;
        }
        if let Some(total) = args.total_steps {
            config.total_timesteps = total;
        }
        if let Some(device) = &args.device {
            config.device = device.clone();
        }
        config.validate()?;
        ppo::check_rollout_fits(&config)?;
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| default_run_name(&config));
        let run = RunDir::create_in(&args.runs_dir, &name)?;
        (run, Plan::Start(Box::new(config)))
    };
    crate::logging::log_to(&run.log_path())?;
    let control = install_ctrl_c(dashboard)?;
    let train = |observer: Observer<'_>| -> Result<RunSummary> {
        Ok(match plan {
            Plan::Start(config) => ppo::run::start(&run, *config, &control, observer)?,
            Plan::Resume => ppo::run::resume(&run, args.total_steps, &control, observer)?,
        })
    };
    let summary = if dashboard {
        let summary = train_with_dashboard(run.root(), &control, train)?;
        println!("run directory: {}", run.root().display());
        summary
    } else {
        println!("run directory: {}", run.root().display());
        train_with_progress(train)?
    };
    report(&summary, args.eval_episodes)
}

/// Trains on this thread while the dashboard draws on its own, fed through a bounded channel
/// the trainer never waits on. Any trainer that reports through an observer can use it (the
/// RLHF commands too): `run_dir` holds its `metrics.jsonl` and `hone.log`.
pub(crate) fn train_with_dashboard<T>(
    run_dir: &Path,
    control: &Arc<RunControl>,
    train: impl FnOnce(Observer<'_>) -> Result<T>,
) -> Result<T> {
    let (sender, receiver) = hone_tui::event_channel(hone_tui::DEFAULT_CAPACITY);
    let mut options = DashboardOptions::new(Mode::Train);
    options.run_dir = Some(run_dir.to_owned());
    options.control = Some(Arc::clone(control));
    // A resumed run shows its history too (the trainer's Start event trims what it drops).
    let metrics = run_dir.join("metrics.jsonl");
    if metrics.exists() {
        options.history = hone_telemetry::read_events(&metrics)?;
    }
    let dashboard = DashboardThread::spawn(Source::Live(receiver), options)
        .context("opening the dashboard (use --no-tui to train without it)")?;
    let result = {
        let mut observer = |event: &Event| sender.send(event);
        train(&mut observer)
    };
    let dropped = sender.dropped();
    // The dashboard sees the run has returned once the last sender is gone.
    drop(sender);
    let shown = match &result {
        Ok(_) => dashboard.join(),
        Err(_) => dashboard.close(),
    };
    if let Err(err) = shown {
        eprintln!("warning: the dashboard failed: {err}");
    }
    if dropped > 0 {
        println!(
            "the dashboard fell behind: {dropped} events were not shown (all are in metrics.jsonl)"
        );
    }
    result
}

/// Trains with a progress bar on stderr (when it is a terminal) and a summary line on stdout
/// every few seconds.
pub(crate) fn train_with_progress<T>(train: impl FnOnce(Observer<'_>) -> Result<T>) -> Result<T> {
    let bar = std::io::stderr().is_terminal().then(std::io::stderr);
    let columns = hone_tui::terminal_columns().map_or(100, usize::from);
    let mut progress = TextProgress::new(std::io::stdout(), bar, columns, Duration::from_secs(5));
    let mut observer = |event: &Event| progress.observe(event);
    train(&mut observer)
}

fn report(summary: &RunSummary, eval_episodes: usize) -> Result<()> {
    let how = if summary.interrupted {
        "stopped on request"
    } else {
        "finished"
    };
    println!(
        "{how} after {} steps ({} updates)",
        summary.global_step, summary.iterations
    );
    if let Some(path) = &summary.last_checkpoint {
        println!("checkpoint: {}", path.display());
    }
    if eval_episodes > 0 && !summary.interrupted {
        let returns = evaluate(&summary.run_dir, "latest", eval_episodes, 1_000_000)?;
        print_returns(&returns);
    }
    Ok(())
}

pub fn run_eval(args: &EvalArgs) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let returns = evaluate(&args.run, &args.checkpoint, args.episodes, args.seed)?;
    print_returns(&returns);
    Ok(())
}

fn print_returns(returns: &[f64]) {
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let std = (returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n).sqrt();
    let min = returns.iter().copied().fold(f64::INFINITY, f64::min);
    let max = returns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "evaluation: mean return {mean:.2} ± {std:.2} over {} episodes (min {min:.2}, max {max:.2})",
        returns.len()
    );
}

fn evaluate(run: &Path, which: &str, episodes: usize, seed: u64) -> Result<Vec<f64>> {
    let run = RunDir::open(run)?;
    let store = CheckpointStore::new(run.checkpoints_dir(), 1);
    let checkpoint = match which {
        "latest" => store
            .latest()?
            .with_context(|| format!("{} has no checkpoint", run.root().display()))?,
        "best" => store
            .best()
            .with_context(|| format!("{} has no best checkpoint", run.root().display()))?,
        path => PathBuf::from(path),
    };
    let text = std::fs::read_to_string(checkpoint.join("config.toml")).with_context(|| {
        format!(
            "{}: not a checkpoint (no config.toml)",
            checkpoint.display()
        )
    })?;
    let config: PpoConfig =
        toml::from_str(&text).with_context(|| format!("{}/config.toml", checkpoint.display()))?;
    let policy = ppo::Ppo::load(config, &checkpoint)?;
    // Beyond one round of envs, a line every 5 s says how far the evaluation is.
    let mut last = Instant::now();
    let mut progress = |done: usize| {
        if last.elapsed() >= Duration::from_secs(5) {
            eprintln!("evaluation: {done} of {episodes} episodes");
            last = Instant::now();
        }
    };
    Ok(policy.evaluate_with_progress(episodes, seed, &mut progress)?)
}

fn default_run_name(config: &PpoConfig) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{}__ppo__{}__{now}", config.env_id, config.seed)
}

/// The first Ctrl-C (SIGINT) asks the run to stop after the current update and checkpoint; a
/// second one exits at once. Under the dashboard the terminal is in raw mode, so Ctrl-C typed
/// there is a key the dashboard handles; a SIGINT from elsewhere lands here, and the dashboard
/// shows the stop, so nothing is printed over it.
pub(crate) fn install_ctrl_c(dashboard: bool) -> Result<Arc<RunControl>> {
    let control = Arc::new(RunControl::default());
    let handle = Arc::clone(&control);
    ctrlc::set_handler(move || {
        if handle.request_stop() {
            hone_tui::restore_terminal();
            eprintln!("\ninterrupted again: exiting without a checkpoint");
            // SAFETY: _exit ends the process at once and touches no Rust or C++ state. Not
            // `exit`: it runs libtorch's static destructors while the main thread may still be
            // inside a libtorch operation, which then panics ("Invalid (backend, op) pair").
            // What was written is on disk already: metrics lines and checkpoints are whole
            // files or single writes.
            unsafe { libc::_exit(130) };
        }
        if !dashboard {
            eprintln!("\nstopping after this update (Ctrl-C again to exit now)");
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(control)
}
