//! The `hone` command line: one binary that wires hone's crates together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod doctor;
mod llm;
mod logging;
mod monitor;
mod rlhf;
mod train;

#[derive(Debug, Parser)]
#[command(name = "hone", version, about = "hone: RL and alignment training in Rust", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report hone's version, the libtorch it runs against, CUDA devices and thread counts, and
    /// run a small tensor computation on every available device.
    Doctor(doctor::DoctorArgs),
    /// Train PPO on a task (CartPole-v1, Pendulum-v1, ...) in a run directory under runs/.
    Train(train::TrainArgs),
    /// Run a trained policy deterministically and print its mean return.
    Eval(train::EvalArgs),
    /// Watch a run directory's metrics in the dashboard: follows a live run, replays a
    /// finished one.
    Monitor(monitor::MonitorArgs),
    /// Convert a model file into a Hugging Face checkpoint folder.
    #[command(subcommand)]
    Convert(llm::ConvertCommand),
    /// Continue prompts with a checkpoint (greedy or sampled, batched, KV cache).
    Generate(llm::GenerateArgs),
    /// Create a small random Llama or GPT-2 checkpoint with a byte-level tokenizer.
    Init(llm::InitArgs),
    /// Supervised fine-tuning on prompt/response JSONL (loss on response tokens only).
    Sft(llm::TrainArgs),
    /// Train a reward model (Bradley-Terry) on prompt/chosen/rejected JSONL.
    Rm(llm::TrainArgs),
    /// An RLHF run from a TOML run file (ReMax; rule, self or reward-model rewards), or a
    /// built-in task's data (`hone rlhf task sort|decoy`).
    Rlhf(rlhf::RlhfArgs),
    /// Sharpening with the model's own likelihood as the reward (`hone sharpen bon`).
    #[command(subcommand)]
    Sharpen(rlhf::SharpenCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(&args),
        Command::Train(args) => train::run_train(&args),
        Command::Eval(args) => train::run_eval(&args),
        Command::Monitor(args) => monitor::run(&args),
        Command::Convert(command) => llm::run_convert(&command),
        Command::Generate(args) => llm::run_generate(&args),
        Command::Init(args) => llm::run_init(&args),
        Command::Sft(args) => llm::run_training(&args, false),
        Command::Rm(args) => llm::run_training(&args, true),
        Command::Rlhf(args) => rlhf::run(&args),
        Command::Sharpen(command) => rlhf::run_sharpen(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
