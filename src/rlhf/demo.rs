//! `hone rlhf demo`: the whole alignment pipeline on the built-in tasks, with tiny models trained
//! from scratch on a CPU, printing greedy accuracy before and after each stage: SFT on digit
//! sorting, then ReMax with the exact-match rule; SFT on the decoy task, then best-of-N with the
//! self-reward, SFT-sharpening and RLHF-sharpening.
//!
//! The stages use the shipped run files (`configs/*.toml`, compiled in) and the shapes of
//! `scripts/remax_sort.sh` and `scripts/sharpen_decoy.sh`; `--quick` shrinks every stage to a
//! few steps on a few prompts, which checks the plumbing and says nothing about the bars.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::init::{InitSpec, create_random_checkpoint};
use hone_rlhf::run::{
    Prompts, RewardKind, RunConfig, RunMessage, Tokens, greedy_accuracy, run_rlhf,
};
use hone_rlhf::sharpen::{accuracy_vs_n, sample_candidates};
use hone_rlhf::tasks::{self, Rule, TaskExample};
use hone_rlhf::train::{TrainConfig, run_sft};
use hone_trainer::run_dir::RunDir;

const SFT_SORT: &str = include_str!("../../configs/sft_sort.toml");
const REMAX_SORT: &str = include_str!("../../configs/remax_sort.toml");
const SFT_DECOY: &str = include_str!("../../configs/sft_decoy.toml");
const SFT_SHARPEN_DECOY: &str = include_str!("../../configs/sft_sharpen_decoy.toml");
const RLHF_SHARPEN_DECOY: &str = include_str!("../../configs/rlhf_sharpen_decoy.toml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Work folder for data, checkpoints and run directories (default: a new folder under the
    /// system's temporary folder). Stages already in it are redone.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A seconds-long run: every stage for a few steps on a few prompts (checks the pipeline;
    /// its accuracies mean nothing).
    #[arg(long)]
    quick: bool,
    /// Seeds the task data, the models' initialisation and every run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// libtorch threads (tiny models run fastest on one).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// How big each stage is; `full` is what the scripts run.
#[derive(Clone, Debug)]
struct Scale {
    sort_train: usize,
    decoy_train: usize,
    /// Held-out prompts of each task (the same before and after every stage).
    eval: usize,
    /// Training prompts whose best-of-N winners become SFT-sharpening data.
    winner_prompts: usize,
    /// Best-of-N: the N reported (the largest is sampled).
    bon_n: Vec<usize>,
    /// The N whose winners become SFT-sharpening data.
    winners_n: usize,
    /// Overrides of the run files' steps (None: the file's).
    steps: Option<u64>,
    prompts_per_step: Option<usize>,
}

impl Scale {
    fn full() -> Self {
        Self {
            sort_train: 4000,
            decoy_train: 8000,
            eval: 200,
            winner_prompts: 1000,
            bon_n: vec![1, 2, 4, 8, 16],
            winners_n: 32,
            steps: None,
            prompts_per_step: None,
        }
    }

    fn quick() -> Self {
        Self {
            sort_train: 64,
            decoy_train: 64,
            eval: 16,
            winner_prompts: 16,
            bon_n: vec![1, 2, 4],
            winners_n: 4,
            steps: Some(2),
            prompts_per_step: Some(8),
        }
    }
}

/// The tiny Llama both tasks start from (as `hone init --layers 2 --hidden 64 --heads 4
/// --max-positions 64` in the scripts).
fn model_spec(seed: u64) -> InitSpec {
    InitSpec {
        layers: 2,
        hidden: 64,
        heads: 4,
        max_positions: 64,
        seed,
        ..InitSpec::default()
    }
}

/// Sorting: 3 to 6 digits. Decoy: 4 digits (few enough that the tiny base model sorts well on
/// its correct branch, the ceiling of sharpening; one length, so no short prompt recurs often
/// enough to be memorised), training responses right with p = 0.35 (at 0.4 the decoy's lead on
/// the first token was too thin for greedy decoding to take it reliably).
const SORT_DIGITS: (usize, usize) = (3, 6);
const DECOY_DIGITS: (usize, usize) = (4, 4);
const DECOY_P_CORRECT: f64 = 0.35;
/// Responses are at most this many tokens (the longest answer, a decoy and EOS fit).
const MAX_NEW_TOKENS: i64 = 8;

/// One stage's line of the closing table.
struct StageResult {
    stage: &'static str,
    before: f64,
    after: f64,
    seconds: f64,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    crate::llm::set_up_libtorch(Some(args.threads))?;
    let scale = if args.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            std::env::temp_dir().join(format!("hone-rlhf-demo-{now}"))
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    crate::logging::log_to(&dir.join("hone.log"))?;
    println!(
        "hone rlhf demo{} in {} (seed {})",
        if args.quick { " --quick" } else { "" },
        dir.display(),
        args.seed
    );
    let started = Instant::now();
    let demo = Demo {
        dir: dir.clone(),
        scale,
        seed: args.seed,
    };
    let results = demo.run_all()?;
    println!();
    println!(
        "{:<34} {:>8} {:>8} {:>8}",
        "stage", "before", "after", "time"
    );
    for r in &results {
        println!(
            "{:<34} {:>7.1}% {:>7.1}% {:>7.0}s",
            r.stage,
            100.0 * r.before,
            100.0 * r.after,
            r.seconds
        );
    }
    println!(
        "demo finished in {:.0} s; everything is in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

struct Demo {
    dir: PathBuf,
    scale: Scale,
    seed: u64,
}

impl Demo {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn run_all(&self) -> Result<Vec<StageResult>> {
        let s = &self.scale;
        let seed = self.seed;
        println!("== data: the built-in sorting and decoy tasks");
        let sort_train = self.path("sort_train.jsonl");
        let sort_eval = self.path("sort_eval.jsonl");
        let decoy_train = self.path("decoy_train.jsonl");
        let decoy_eval = self.path("decoy_eval.jsonl");
        let winner_prompts = self.path("decoy_winner_prompts.jsonl");
        let (lo, hi) = SORT_DIGITS;
        // Training and held-out sets come from different seeds (as in the scripts).
        let (train_seed, eval_seed) = (seed, seed.wrapping_add(1));
        write(
            &sort_train,
            &tasks::sorting(s.sort_train, lo, hi, train_seed)?,
        )?;
        write(&sort_eval, &tasks::sorting(s.eval, lo, hi, eval_seed)?)?;
        let (lo, hi) = DECOY_DIGITS;
        let decoy = tasks::decoy(s.decoy_train, lo, hi, DECOY_P_CORRECT, train_seed)?;
        write(&decoy_train, &decoy)?;
        write(&winner_prompts, &decoy[..s.winner_prompts.min(decoy.len())])?;
        // Evaluation reads prompts and (correct) answers only: plain sorting examples.
        write(&decoy_eval, &tasks::sorting(s.eval, lo, hi, eval_seed)?)?;

        let init = self.path("init");
        create_random_checkpoint(&model_spec(seed), &init, true)?;
        println!("tiny Llama (2 layers, hidden 64) at {}", init.display());
        let mut results = Vec::new();

        // Sorting: SFT, then ReMax with the exact-match rule.
        let t = Instant::now();
        let before = accuracy(&init, &sort_eval)?;
        let sft_sort = self.sft("sft-sort", SFT_SORT, &init, &sort_train)?;
        let after = accuracy(&sft_sort, &sort_eval)?;
        results.push(stage("SFT on sorting", before, after, t));

        let t = Instant::now();
        let (before, after, _) =
            self.rlhf("remax-sort", REMAX_SORT, &sft_sort, &sort_train, &sort_eval)?;
        results.push(stage("ReMax, exact-match reward", before, after, t));

        // Decoy: SFT makes greedy decoding fall for the decoy.
        let t = Instant::now();
        let before = accuracy(&init, &decoy_eval)?;
        let base = self.sft("sft-decoy", SFT_DECOY, &init, &decoy_train)?;
        let after = accuracy(&base, &decoy_eval)?;
        results.push(stage("SFT on decoy (p = 0.35 right)", before, after, t));

        // Best-of-N with the self-reward at inference time.
        let t = Instant::now();
        println!("== best-of-N with the self-reward log pi(y|x), on the held-out prompts");
        let curve = best_of_n(&base, &decoy_eval, &s.bon_n, seed, None)?;
        println!("{:>6}  {:>9}", "N", "accuracy");
        for (n, a) in &curve {
            println!("{n:>6}  {:>8.1}%", 100.0 * a);
        }
        let greedy = results.last().map_or(0.0, |r| r.after);
        let largest = curve.last().map_or(0.0, |c| c.1);
        results.push(stage(
            "best-of-N (largest N), no training",
            greedy,
            largest,
            t,
        ));

        // SFT-sharpening: the best-of-N winners on training prompts become SFT data.
        let t = Instant::now();
        println!(
            "== SFT-sharpening: best-of-{} winners on {} training prompts, then SFT",
            s.winners_n, s.winner_prompts
        );
        let winners = self.path("decoy_winners.jsonl");
        best_of_n(&base, &winner_prompts, &[s.winners_n], seed, Some(&winners))?;
        let sharpened = self.sft("sft-sharpened", SFT_SHARPEN_DECOY, &base, &winners)?;
        let after = accuracy(&sharpened, &decoy_eval)?;
        results.push(stage("SFT-sharpening", greedy, after, t));

        // RLHF-sharpening: ReMax with the base model's log-likelihood as the reward.
        let t = Instant::now();
        let (before, after, _) = self.rlhf(
            "rl-sharpened",
            RLHF_SHARPEN_DECOY,
            &base,
            &decoy_train,
            &decoy_eval,
        )?;
        results.push(stage("RLHF-sharpening (ReMax, self)", before, after, t));
        Ok(results)
    }

    /// SFT from `model` on `data` with the run file `file`; the final checkpoint.
    fn sft(&self, name: &str, file: &str, model: &Path, data: &Path) -> Result<PathBuf> {
        let mut config: TrainConfig =
            toml::from_str(file).with_context(|| format!("the shipped SFT file for {name}"))?;
        config.model = model.to_owned();
        config.data = data.to_owned();
        config.seed = self.seed;
        if let Some(steps) = self.scale.steps {
            config.max_steps = steps;
            config.batch_size = config.batch_size.min(8);
        }
        println!(
            "== SFT {name}: {} steps of {} at learning rate {}",
            config.max_steps, config.batch_size, config.learning_rate
        );
        let run = fresh_run(&self.path(name))?;
        let summary = run_sft(&run, &config, &mut |_| {})?;
        println!(
            "   {} steps, final loss {:.4}",
            summary.steps, summary.final_loss
        );
        summary
            .last_checkpoint
            .with_context(|| format!("SFT {name} saved no checkpoint"))
    }

    /// An RLHF run of the run file `file` from `policy`; greedy accuracy before and after, and
    /// the final checkpoint.
    fn rlhf(
        &self,
        name: &str,
        file: &str,
        policy: &Path,
        data: &Path,
        eval: &Path,
    ) -> Result<(f64, f64, PathBuf)> {
        let mut config: RunConfig =
            toml::from_str(file).with_context(|| format!("the shipped run file for {name}"))?;
        config.policy = policy.to_owned();
        config.reference = None;
        config.data = data.to_owned();
        config.eval.data = Some(eval.to_owned());
        config.seed = self.seed;
        config.save_every = 0;
        if let Some(steps) = self.scale.steps {
            config.steps = steps;
            config.eval.every = 0;
        }
        if let Some(prompts) = self.scale.prompts_per_step {
            config.prompts_per_step = prompts;
        }
        let reward = match config.reward.kind {
            RewardKind::Rule => match config.reward.rule {
                Rule::ExactMatch => "rule exact_match".to_owned(),
                Rule::LastNumber => "rule last_number".to_owned(),
            },
            RewardKind::SelfReward => "self (the base model's log-likelihood)".to_owned(),
            RewardKind::Model => "reward model".to_owned(),
        };
        println!(
            "== {name}: {} with reward {reward}, {} steps of {} prompts, learning rate {}, \
             kl_coef {}",
            format!("{:?}", config.algorithm).to_lowercase(),
            config.steps,
            config.prompts_per_step,
            config.learning_rate,
            config.remax.kl_coef
        );
        let run = fresh_run(&self.path(name))?;
        let report_every = (config.steps / 5).max(1);
        let mut on_message = |message: &RunMessage| match message {
            RunMessage::Eval { step, accuracy } => {
                println!(
                    "   step {step:>4}  greedy accuracy {:.1}%",
                    100.0 * accuracy
                )
            }
            RunMessage::Step(s) if s.step % report_every == 0 => println!(
                "   step {:>4}  reward {:.3}  baseline {:.3}  kl {:.4}",
                s.step,
                s.reward_mean,
                s.baseline_reward_mean.unwrap_or(f64::NAN),
                s.kl_to_reference
            ),
            _ => {}
        };
        let summary = run_rlhf(&run, &config, Default::default(), None, &mut on_message)?;
        let (Some(before), Some(after)) = (summary.initial_accuracy, summary.final_accuracy) else {
            anyhow::bail!("{name}: the run measured no accuracy");
        };
        let checkpoint = summary
            .last_checkpoint
            .with_context(|| format!("{name} saved no checkpoint"))?;
        Ok((before, after, checkpoint))
    }
}

fn stage(stage: &'static str, before: f64, after: f64, started: Instant) -> StageResult {
    println!(
        "-> {stage}: greedy accuracy {:.1}% -> {:.1}%",
        100.0 * before,
        100.0 * after
    );
    StageResult {
        stage,
        before,
        after,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn write(path: &Path, examples: &[TaskExample]) -> Result<()> {
    tasks::write_jsonl(path, examples)?;
    Ok(())
}

/// A run directory at `root`, replacing the run a previous demo left there. Only a hone run
/// directory that no process is writing is removed; anything else there is an error.
fn fresh_run(root: &Path) -> Result<RunDir> {
    if root.exists() {
        let previous = RunDir::open_to_continue(root).with_context(|| {
            format!(
                "{} is in the way of the demo's run of that name (choose another --dir)",
                root.display()
            )
        })?;
        std::fs::remove_dir_all(previous.root())
            .with_context(|| format!("removing {}", root.display()))?;
    }
    Ok(RunDir::create(root)?)
}

struct Loaded {
    checkpoint: Checkpoint,
    tokens: Tokens,
}

fn load(model: &Path) -> Result<Loaded> {
    let checkpoint = Checkpoint::load(model, tch::Device::Cpu, tch::Kind::Float)?;
    let tokens = Tokens::of(&checkpoint.generation);
    Ok(Loaded { checkpoint, tokens })
}

fn prompts(loaded: &Loaded, data: &Path) -> Result<Prompts> {
    Ok(Prompts::load(
        data,
        loaded.checkpoint.tokenizer()?,
        false,
        loaded.checkpoint.model.config().max_positions(),
        MAX_NEW_TOKENS,
        true,
        0,
    )?)
}

/// Greedy exact-match accuracy of `model` on `data`.
fn accuracy(model: &Path, data: &Path) -> Result<f64> {
    let loaded = load(model)?;
    let prompts = prompts(&loaded, data)?;
    Ok(greedy_accuracy(
        &loaded.checkpoint.model,
        loaded.checkpoint.tokenizer()?,
        &prompts,
        Rule::ExactMatch,
        &loaded.tokens,
        MAX_NEW_TOKENS,
        256,
    )?)
}

/// Best-of-N with the self-reward (temperature 1, no filter, as `hone sharpen bon`): accuracy
/// for each N in `ns`; with `winners`, the best-of-(largest N) responses are written there as
/// SFT data.
fn best_of_n(
    model: &Path,
    data: &Path,
    ns: &[usize],
    seed: u64,
    winners: Option<&Path>,
) -> Result<Vec<(usize, f64)>> {
    let loaded = load(model)?;
    let prompts = prompts(&loaded, data)?;
    let n_max = ns.iter().copied().max().unwrap_or(1);
    tch::manual_seed(seed as i64);
    let config = hone_rlhf::GenerateConfig {
        max_new_tokens: MAX_NEW_TOKENS,
        sampling: Some(hone_kernels::SamplingFilter {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }),
        use_cache: true,
    };
    let candidates = sample_candidates(
        &loaded.checkpoint.model,
        loaded.checkpoint.tokenizer()?,
        &prompts,
        &loaded.tokens,
        n_max,
        &config,
        false,
        32,
    )?;
    if let Some(path) = winners {
        let examples: Vec<TaskExample> = prompts
            .texts
            .iter()
            .zip(&candidates)
            .zip(&prompts.answers)
            .map(|((prompt, c), answer)| TaskExample {
                prompt: prompt.clone(),
                response: c.best_of(n_max).to_owned(),
                answer: answer.clone().unwrap_or_default(),
            })
            .collect();
        write(path, &examples)?;
    }
    Ok(accuracy_vs_n(
        &candidates,
        &prompts.answers,
        Rule::ExactMatch,
        ns,
    )?)
}
