//! The LLM commands: `hone convert gguf`, `hone generate`, `hone init`, `hone sft`, `hone rm`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hone_kernels::SamplingFilter;
use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::generate::check_prompt_lengths;
use hone_rlhf::init::{InitSpec, create_random_checkpoint};
use hone_rlhf::train::{StepReport, TrainConfig, run_rm, run_sft};
use hone_rlhf::{GenerateConfig, generate, left_pad};
use hone_trainer::run_dir::RunDir;
use tch::Kind;

/// The LLM commands' libtorch set-up: intra-op threads (the flag, else every core), and malloc
/// keeping freed memory for the next step's tensors (`hone_rlhf::memory`).
pub(crate) fn set_up_libtorch(threads: Option<usize>) -> Result<()> {
    let kept = hone_rlhf::memory::keep_freed_memory();
    tracing::debug!(
        kept,
        "malloc keeps freed memory (HONE_KEEP_FREED_MEMORY=0 turns it off)"
    );
    let threads = threads.unwrap_or_else(hone_envs::memory::cpus);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    hone_envs::memory::check_threads("--threads", threads).map_err(anyhow::Error::msg)?;
    tch::set_num_threads(i32::try_from(threads).context("--threads is too large")?);
    Ok(())
}

/// An LLM command's device (`--device`, or a run file's `device`): auto, cpu, cuda or cuda:N,
/// checked against the machine as `hone train` checks it, so `cuda` without a CUDA device is
/// one line rather than libtorch's C++ backtrace.
pub(crate) fn parse_device(text: &str) -> Result<tch::Device> {
    Ok(hone_trainer::ppo::parse_device(text)?)
}

#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// A llama-architecture GGUF file (F32, F16, BF16, Q8_0, Q4_0, Q4_1 tensors) as a Hugging
    /// Face checkpoint folder (f32 safetensors, config, tokenizer.json).
    Gguf {
        /// The .gguf file.
        file: PathBuf,
        /// The folder to write the checkpoint into (new or empty, unless --force).
        out_dir: PathBuf,
        /// Write into a non-empty folder: replace the checkpoint files there (config.json,
        /// model.safetensors, tokenizer files, ...), leaving every other file alone.
        #[arg(long)]
        force: bool,
    },
}

pub fn run_convert(command: &ConvertCommand) -> Result<()> {
    match command {
        ConvertCommand::Gguf {
            file,
            out_dir,
            force,
        } => {
            let config = hone_rlhf::gguf::convert_to_hf(file, out_dir, *force)?;
            println!(
                "converted {} -> {} ({} layers, hidden {}, vocab {})",
                file.display(),
                out_dir.display(),
                config.num_layers(),
                config.hidden_size(),
                config.vocab_size()
            );
            Ok(())
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A checkpoint folder (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// A prompt (repeat for a batch).
    #[arg(long, required = true)]
    prompt: Vec<String>,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: i64,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    top_k: Option<i64>,
    /// Greedy decoding (ignores temperature, top-p and top-k).
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wrap each prompt in the tokenizer's chat template as a user turn.
    #[arg(long)]
    chat: bool,
    /// Recompute the whole sequence at every step instead of keeping a KV cache.
    #[arg(long)]
    no_cache: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// f32 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// libtorch threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_kind(text: &str) -> Result<Kind> {
    Ok(match text {
        "f32" | "float32" => Kind::Float,
        "bf16" | "bfloat16" => Kind::BFloat16,
        other => bail!("--dtype {other}: expected f32 or bf16"),
    })
}

pub fn run_generate(args: &GenerateArgs) -> Result<()> {
    if args.max_new_tokens < 1 {
        bail!(
            "--max-new-tokens {}: expected at least 1",
            args.max_new_tokens
        );
    }
    set_up_libtorch(args.threads)?;
    let device = parse_device(&args.device)?;
    let ckpt = Checkpoint::load(&args.model, device, parse_kind(&args.dtype)?)?;
    let tokenizer = ckpt.tokenizer()?;
    let prompts = args
        .prompt
        .iter()
        .map(|p| {
            if args.chat {
                tokenizer.encode_chat(p)
            } else {
                tokenizer.encode(p, true)
            }
        })
        .collect::<hone_rlhf::Result<Vec<_>>>()?;
    let eos = ckpt.generation.eos_token_ids.clone();
    let pad = ckpt
        .generation
        .pad_token_id
        .or(eos.first().copied())
        .unwrap_or(0);
    // Each prompt non-empty and, with --max-new-tokens new tokens, within the model's context:
    // checked before the KV cache (batch x context positions) is allocated.
    let lengths: Vec<i64> = prompts.iter().map(|p| p.len() as i64).collect();
    check_prompt_lengths(
        &lengths,
        args.max_new_tokens,
        "--max-new-tokens",
        ckpt.model.config().max_positions(),
    )?;
    let (ids, mask) = left_pad(&prompts, pad, device)?;
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: (!args.greedy).then_some(SamplingFilter {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        }),
        use_cache: !args.no_cache,
    };
    tch::manual_seed(args.seed as i64);
    let out = generate(&ckpt.model, &ids, &mask, &eos, pad, &config)?;
    for b in 0..prompts.len() {
        let text = tokenizer.decode(&out.response(b as i64)?, true)?;
        if prompts.len() > 1 {
            println!("[{b}] {text}");
        } else {
            println!("{text}");
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// llama or gpt2.
    #[arg(long, default_value = "llama")]
    arch: String,
    #[arg(long, default_value_t = 2)]
    layers: i64,
    #[arg(long, default_value_t = 64)]
    hidden: i64,
    #[arg(long, default_value_t = 4)]
    heads: i64,
    /// Llama: key/value heads (default: --heads).
    #[arg(long)]
    kv_heads: Option<i64>,
    /// MLP width (default: Llama 8/3 x hidden, GPT-2 4 x hidden).
    #[arg(long)]
    intermediate: Option<i64>,
    #[arg(long, default_value_t = 512)]
    max_positions: i64,
    /// Llama: a separate LM head instead of the tied embedding.
    #[arg(long)]
    untied: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The folder to write the checkpoint into (new or empty, unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty folder: replace the checkpoint files there, leaving every other
    /// file alone.
    #[arg(long)]
    force: bool,
}

pub fn run_init(args: &InitArgs) -> Result<()> {
    let spec = InitSpec {
        arch: args.arch.clone(),
        layers: args.layers,
        hidden: args.hidden,
        heads: args.heads,
        kv_heads: args.kv_heads,
        intermediate: args.intermediate,
        max_positions: args.max_positions,
        tie_embeddings: !args.untied,
        seed: args.seed,
        ..InitSpec::default()
    };
    let config = create_random_checkpoint(&spec, &args.out, args.force)?;
    println!(
        "created {} ({} {} layers, hidden {}, vocab {})",
        args.out.display(),
        args.arch,
        config.num_layers(),
        config.hidden_size(),
        config.vocab_size()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML run file over the defaults (model, data, learning_rate, batch_size, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides one setting, e.g. --set learning_rate=1e-4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run name (default: <command>__<seed>__<unix time>).
    #[arg(long)]
    name: Option<String>,
    /// Folder that holds the run directories.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// libtorch threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

fn print_step(report: &StepReport) {
    let accuracy = report
        .accuracy
        .map_or(String::new(), |a| format!("  accuracy {a:.3}"));
    println!(
        "step {:>6}  epoch {}  loss {:.4}{accuracy}  grad-norm {:.3}  {:.0} tokens/s",
        report.step,
        report.epoch,
        report.loss,
        report.grad_norm,
        report.tokens as f64 / report.seconds.max(1e-9)
    );
}

/// `hone sft` (`reward_model` false) and `hone rm`.
pub fn run_training(args: &TrainArgs, reward_model: bool) -> Result<()> {
    set_up_libtorch(args.threads)?;
    let config: TrainConfig =
        hone_trainer::config::resolve(&TrainConfig::default(), args.config.as_deref(), &args.sets)?;
    config.validate()?;
    parse_device(&config.device)?;
    let command = if reward_model { "rm" } else { "sft" };
    let name = args.name.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("{command}__{}__{now}", config.seed)
    });
    let run = RunDir::create_in(&args.runs_dir, &name)?;
    crate::logging::log_to(&run.log_path())?;
    println!("run directory: {}", run.root().display());
    let summary = if reward_model {
        run_rm(&run, &config, &mut print_step)?
    } else {
        run_sft(&run, &config, &mut print_step)?
    };
    println!(
        "finished after {} steps, final loss {:.4}",
        summary.steps, summary.final_loss
    );
    if let Some(path) = &summary.last_checkpoint {
        println!("checkpoint: {}", path.display());
    }
    Ok(())
}
