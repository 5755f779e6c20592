//! `hone rlhf` (a scripted RLHF run from a TOML run file, and the built-in task generators).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hone_rlhf::run::{RlhfStep, RunConfig, RunMessage, StartOptions, run_rlhf};
use hone_rlhf::tasks;
use hone_trainer::run_dir::RunDir;

mod demo;

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
    /// The whole pipeline on the built-in tasks with tiny models, on a CPU: SFT and ReMax on
    /// sorting, then best-of-N, SFT-sharpening and RLHF-sharpening on the decoy task, with
    /// greedy accuracy before and after each stage (minutes; --quick: seconds).
    Demo(demo::DemoArgs),
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
    /// Print each step instead of opening the dashboard (the default when stdout is a terminal).
    #[arg(long)]
    no_tui: bool,
    /// Start even when a step's estimated peak memory exceeds the memory this machine has
    /// available (the estimate is rough; without --force that is an error before any work).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct TaskArgs {
    /// sort (digit sorting), decoy (digit sorting with decoy-prefixed wrong responses) or add
    /// ("What is a+b? Answer with just the number.", --min-len/--max-len digits per operand).
    task: String,
    /// The JSONL file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Fewest digits.
    #[arg(long, default_value_t = 3)]
    min_len: usize,
    /// Most digits.
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
        Some(RlhfCommand::Demo(demo)) => demo::run(demo),
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
        "add" => tasks::addition(args.count, args.min_len, args.max_len, args.seed)?,
        other => bail!("unknown task {other:?}: expected sort, decoy or add"),
    };
    tasks::write_jsonl(&args.out, &examples)?;
    println!(
        "wrote {} examples to {}",
        examples.len(),
        args.out.display()
    );
    Ok(())
}

/// The warning for a step whose KL to the reference passed the run file's `alert_kl`.
fn kl_warning(step: &RlhfStep) -> Option<String> {
    let threshold = step.alert_kl?;
    (step.kl_to_reference > threshold).then(|| {
        format!(
            "warning: step {} kl_to_reference {:.4} > alert_kl {threshold} (the policy is \
             drifting from its reference; raise remax.kl_coef or lower learning_rate)",
            step.step, step.kl_to_reference
        )
    })
}

pub fn print_message(message: &RunMessage) {
    if let RunMessage::Step(step) = message
        && let Some(warning) = kl_warning(step)
    {
        println!("{warning}");
    }
    match message {
        RunMessage::Plan(plan) => println!("{plan}"),
        RunMessage::Eval { step, accuracy } => {
            println!(
                "eval  step {step:>5}  greedy accuracy {:.1}%",
                accuracy * 100.0
            )
        }
        RunMessage::Step(s) => {
            let optional = |name: &str, value: Option<f64>, digits: usize| {
                value.map_or(String::new(), |v| format!("  {name} {v:.digits$}"))
            };
            println!(
                "step {:>5}  reward {:.3}{}{}  kl {:.4}{}  loss {:.4}{}{}  grad-norm {:.3}  \
                 len {:.1}  gen {:.2}s ref {:.2}s reward {:.2}s update {:.2}s",
                s.step,
                s.reward_mean,
                optional("baseline", s.baseline_reward_mean, 3),
                s.trained_responses
                    .map_or(String::new(), |n| format!("  trained {n}")),
                s.kl_to_reference,
                optional("beta", s.kl_coef, 4),
                s.policy_loss.unwrap_or(f64::NAN),
                optional("value-loss", s.value_loss, 4),
                optional("clipped", s.clip_fraction, 3),
                s.grad_norm,
                s.response_length_mean,
                s.timing.generate_s,
                s.timing.reference_s,
                s.timing.reward_s,
                s.timing.update_s,
            )
        }
        RunMessage::Checkpoint(path) => println!("checkpoint: {}", path.display()),
        RunMessage::Telemetry(_) => {}
    }
}

fn run_file(args: &RunArgs) -> Result<()> {
    crate::llm::set_up_libtorch(args.threads)?;
    let (run, config, resume) = match &args.resume {
        Some(dir) => {
            let run = RunDir::open_to_continue(dir)?;
            let config: RunConfig = hone_trainer::config::resolve(
                &RunConfig::default(),
                Some(&run.config_path()),
                &args.sets,
            )?;
            (run, config, true)
        }
        None => {
            if args.config.is_none() && args.sets.is_empty() {
                bail!(
                    "hone rlhf needs --config <run.toml> and/or --set key=value (or --resume <run dir>)"
                );
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
            (RunDir::create_in(&args.runs_dir, &name)?, config, false)
        }
    };
    crate::logging::log_to(&run.log_path())?;
    println!("run directory: {}", run.root().display());
    let start = StartOptions {
        resume,
        force: args.force,
    };
    let dashboard = !args.no_tui && std::io::stdout().is_terminal();
    let control = crate::train::install_ctrl_c(dashboard)?;
    let result = if dashboard {
        crate::train::train_with_dashboard(run.root(), &control, |observer| {
            let mut forward = |message: &RunMessage| match message {
                RunMessage::Telemetry(event) => observer(event),
                // The dashboard's log pane tails hone.log.
                RunMessage::Plan(plan) => tracing::info!("{plan}"),
                RunMessage::Step(step) => {
                    if let Some(warning) = kl_warning(step) {
                        tracing::warn!("{warning}");
                    }
                }
                _ => {}
            };
            Ok(run_rlhf(
                &run,
                &config,
                start,
                Some(&control),
                &mut forward,
            )?)
        })
    } else {
        run_rlhf(&run, &config, start, Some(&control), &mut print_message).map_err(Into::into)
    };
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
            return Err(err);
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

#[derive(Debug, Subcommand)]
pub enum SharpenCommand {
    /// Best-of-N with the model's own log-likelihood as the reward: greedy accuracy, then
    /// accuracy against N (when the prompts have answers); --winners writes the best-of-N
    /// responses as SFT data (SFT-sharpening: then `hone sft` on them).
    Bon(BonArgs),
}

#[derive(Debug, Args)]
pub struct BonArgs {
    /// A checkpoint folder (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// JSONL with `prompt` and optional `answer`.
    #[arg(long)]
    data: PathBuf,
    /// The N to report, comma-separated; the largest is how many responses are sampled.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    n: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: i64,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    top_k: Option<i64>,
    /// Score by the mean log-probability per token instead of the sum.
    #[arg(long)]
    length_normalised: bool,
    /// exact_match or last_number.
    #[arg(long, default_value = "exact_match")]
    rule: String,
    /// Wrap prompts in the tokenizer's chat template.
    #[arg(long)]
    chat: bool,
    /// Use only the first this many prompts (0: all).
    #[arg(long, default_value_t = 0)]
    max_prompts: usize,
    /// Prompts per generation batch (each repeated N times).
    #[arg(long, default_value_t = 16)]
    batch_prompts: usize,
    /// Write {"prompt", "response", "answer"} of the best-of-(largest N) responses here.
    #[arg(long)]
    winners: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// libtorch threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run_sharpen(command: &SharpenCommand) -> Result<()> {
    let SharpenCommand::Bon(args) = command;
    use hone_rlhf::checkpoint::Checkpoint;
    use hone_rlhf::run::{Prompts, Tokens, greedy_accuracy};
    use hone_rlhf::sharpen::{accuracy_vs_n, sample_candidates};
    use hone_rlhf::tasks::Rule;
    crate::llm::set_up_libtorch(args.threads)?;
    let rule = match args.rule.as_str() {
        "exact_match" => Rule::ExactMatch,
        "last_number" => Rule::LastNumber,
        other => bail!("--rule {other}: expected exact_match or last_number"),
    };
    let n_max = args.n.iter().copied().max().unwrap_or(0);
    if n_max == 0 {
        bail!("--n needs at least one value >= 1");
    }
    let device = crate::llm::parse_device(&args.device)?;
    let ckpt = Checkpoint::load(&args.model, device, tch::Kind::Float)?;
    let tokenizer = ckpt.tokenizer()?;
    let tokens = Tokens::of(&ckpt.generation);
    let prompts = Prompts::load(
        &args.data,
        tokenizer,
        args.chat,
        ckpt.model.config().max_positions(),
        args.max_new_tokens,
        false,
        args.max_prompts,
    )?;
    let has_answers = prompts.answers.iter().all(Option::is_some);
    println!(
        "best-of-N with the self-reward log pi(y|x){}: {} prompts, {n_max} samples each",
        if args.length_normalised {
            " per token"
        } else {
            ""
        },
        prompts.len()
    );
    if has_answers {
        let greedy = greedy_accuracy(
            &ckpt.model,
            tokenizer,
            &prompts,
            rule,
            &tokens,
            args.max_new_tokens,
            args.batch_prompts * 4,
        )?;
        println!("greedy accuracy: {:.1}%", greedy * 100.0);
    }
    tch::manual_seed(args.seed as i64);
    let config = hone_rlhf::GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: Some(hone_kernels::SamplingFilter {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        }),
        use_cache: true,
    };
    let candidates = sample_candidates(
        &ckpt.model,
        tokenizer,
        &prompts,
        &tokens,
        n_max,
        &config,
        args.length_normalised,
        args.batch_prompts,
    )?;
    if has_answers {
        println!("{:>6}  {:>9}", "N", "accuracy");
        for (n, accuracy) in accuracy_vs_n(&candidates, &prompts.answers, rule, &args.n)? {
            println!("{n:>6}  {:>8.1}%", accuracy * 100.0);
        }
    } else {
        println!(
            "(no answers in {}: accuracy not measured)",
            args.data.display()
        );
    }
    if let Some(path) = &args.winners {
        let examples: Vec<tasks::TaskExample> = prompts
            .texts
            .iter()
            .zip(&candidates)
            .zip(&prompts.answers)
            .map(|((prompt, c), answer)| tasks::TaskExample {
                prompt: prompt.clone(),
                response: c.best_of(n_max).to_owned(),
                answer: answer.clone().unwrap_or_default(),
            })
            .collect();
        tasks::write_jsonl(path, &examples)?;
        println!(
            "wrote {} best-of-{n_max} responses to {}",
            examples.len(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_over_alert_kl_gets_a_warning_line() {
        let step = |kl: f64, alert_kl: Option<f64>| RlhfStep {
            step: 12,
            kl_to_reference: kl,
            alert_kl,
            ..RlhfStep::default()
        };
        assert_eq!(kl_warning(&step(9.0, None)), None);
        assert_eq!(kl_warning(&step(0.5, Some(0.5))), None);
        let warning = kl_warning(&step(0.75, Some(0.5))).unwrap();
        assert!(
            warning.starts_with("warning: step 12 kl_to_reference 0.7500 > alert_kl 0.5"),
            "{warning}"
        );
    }
}
