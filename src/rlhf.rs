//! `hone rlhf` (a scripted RLHF run from a TOML run file, and the built-in task generators).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hone_rlhf::run::{RunConfig, RunMessage, run_rlhf};
use hone_rlhf::tasks;
use hone_telemetry::RunControl;
use hone_trainer::run_dir::RunDir;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RlhfArgs {
    #[command(subcommand)]
    command: Option<RlhfCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum RlhfCommand {
    /// Write a built-in task's examples as JSONL ({"prompt", "response", "answer"}).
    Task(TaskArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The TOML run file (policy, data, reward, algorithm, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides one setting, e.g. --set remax.kl_coef=0.05 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run name (default: rlhf__<algorithm>__<seed>__<unix time>).
    #[arg(long)]
    name: Option<String>,
    /// Folder that holds the run directories.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Continue the run in this run directory from its latest checkpoint (its config.toml;
    /// --set may change settings such as steps).
    #[arg(long, conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// libtorch threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct TaskArgs {
    /// sort (digit sorting) or decoy (the decoy-prefix copy task).
    task: String,
    /// The JSONL file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Shortest digit/letter string.
    #[arg(long, default_value_t = 3)]
    min_len: usize,
    /// Longest digit/letter string.
    #[arg(long, default_value_t = 5)]
    max_len: usize,
    /// decoy: probability that a training response is correct.
    #[arg(long, default_value_t = 0.4)]
    p_correct: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: &RlhfArgs) -> Result<()> {
    match &args.command {
        Some(RlhfCommand::Task(task)) => write_task(task),
        None => run_file(&args.run),
    }
}

fn write_task(args: &TaskArgs) -> Result<()> {
    let examples = match args.task.as_str() {
        "sort" => tasks::sorting(args.count, args.min_len, args.max_len, args.seed)?,
        "decoy" => tasks::decoy(
            args.count,
            args.min_len,
            args.max_len,
            args.p_correct,
            args.seed,
        )?,
        other => bail!("unknown task {other:?}: expected sort or decoy"),
    };
    tasks::write_jsonl(&args.out, &examples)?;
    println!(
        "wrote {} examples to {}",
        examples.len(),
        args.out.display()
    );
    Ok(())
}

pub fn print_message(message: &RunMessage) {
    match message {
        RunMessage::Plan(plan) => println!("{plan}"),
        RunMessage::Eval { step, accuracy } => {
            println!(
                "eval  step {step:>5}  greedy accuracy {:.1}%",
                accuracy * 100.0
            )
        }
        RunMessage::Step(s) => println!(
            "step {:>5}  reward {:.3}  baseline {:.3}  kl {:.4}  loss {:.4}  grad-norm {:.3}  \
             len {:.1}  gen {:.2}s ref {:.2}s reward {:.2}s update {:.2}s",
            s.step,
            s.reward_mean,
            s.baseline_reward_mean.unwrap_or(f64::NAN),
            s.kl_to_reference,
            s.policy_loss.unwrap_or(f64::NAN),
            s.grad_norm,
            s.response_length_mean,
            s.timing.generate_s,
            s.timing.reference_s,
            s.timing.reward_s,
            s.timing.update_s,
        ),
        RunMessage::Checkpoint(path) => println!("checkpoint: {}", path.display()),
    }
}

pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.unwrap_or(cores);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    tch::set_num_threads(i32::try_from(threads).context("--threads is too large")?);
    Ok(())
}

fn run_file(args: &RunArgs) -> Result<()> {
    set_threads(args.threads)?;
    let (run, config, resume) = match &args.resume {
        Some(dir) => {
            let run = RunDir::open(dir)?;
            let config: RunConfig = hone_trainer::config::resolve(
                &RunConfig::default(),
                Some(&run.config_path()),
                &args.sets,
            )?;
            (run, config, true)
        }
        None => {
            if args.config.is_none() {
                bail!("hone rlhf needs --config <run.toml> (or --resume <run dir>)");
            }
            let config: RunConfig = hone_trainer::config::resolve(
                &RunConfig::default(),
                args.config.as_deref(),
                &args.sets,
            )?;
            // Every check that needs no model happens before the run directory exists.
            config.validate()?;
            let name = args.name.clone().unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format!("rlhf__{:?}__{}__{now}", config.algorithm, config.seed).to_lowercase()
            });
            (RunDir::create(&args.runs_dir.join(name))?, config, false)
        }
    };
    crate::logging::log_to(&run.log_path())?;
    println!("run directory: {}", run.root().display());
    let control = Arc::new(RunControl::default());
    let handle = Arc::clone(&control);
    ctrlc::set_handler(move || {
        if handle.request_stop() {
            eprintln!("\ninterrupted again: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (Ctrl-C again to exit now)");
    })
    .context("installing the Ctrl-C handler")?;
    let result = run_rlhf(&run, &config, resume, Some(&control), &mut print_message);
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => {
            // A run that failed before its first step leaves nothing worth keeping.
            let checkpoints = std::fs::read_dir(run.checkpoints_dir())
                .map(|d| d.count())
                .unwrap_or(0);
            if !resume && checkpoints == 0 {
                let _ = std::fs::remove_dir_all(run.root());
            }
            return Err(err.into());
        }
    };
    println!("finished after {} steps", summary.steps);
    if let (Some(before), Some(after)) = (summary.initial_accuracy, summary.final_accuracy) {
        println!(
            "greedy accuracy: {:.1}% -> {:.1}%",
            before * 100.0,
            after * 100.0
        );
    }
    if let Some(path) = &summary.last_checkpoint {
        println!("checkpoint: {}", path.display());
    }
    Ok(())
}
