//! The `hone` command line: one binary that wires hone's crates together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod doctor;
mod logging;
mod monitor;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(&args),
        Command::Train(args) => train::run_train(&args),
        Command::Eval(args) => train::run_eval(&args),
        Command::Monitor(args) => monitor::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
