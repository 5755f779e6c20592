//! The `hone` command line: one binary that wires hone's crates together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod doctor;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
