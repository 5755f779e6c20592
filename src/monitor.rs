//! `hone monitor <run>`: the dashboard over a run directory's `metrics.jsonl`, read-only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use clap::Args;
use hone_tui::{DashboardOptions, DashboardState, Mode, Source, summary_line};

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The run directory (runs/<name>).
    run: PathBuf,
    /// Print where the run is now and exit, instead of opening the dashboard (the default when
    /// stdout is not a terminal).
    #[arg(long)]
    no_tui: bool,
}

pub fn run(args: &MonitorArgs) -> Result<()> {
    let source = Source::follow(&args.run)?;
    if args.no_tui || !std::io::stdout().is_terminal() {
        return print_status(args);
    }
    let mut options = DashboardOptions::new(Mode::Monitor);
    options.run_dir = Some(args.run.clone());
    // A SIGINT from outside (Ctrl-C typed in the dashboard is a key) closes it cleanly.
    let close = Arc::clone(&options.close);
    ctrlc::set_handler(move || close.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    hone_tui::run(source, options)?;
    Ok(())
}

/// The run as its metrics say now: phase, last summary, alerts.
fn print_status(args: &MonitorArgs) -> Result<()> {
    let events = hone_telemetry::read_events(&args.run.join("metrics.jsonl"))?;
    let mut state = DashboardState::from_events(&events);
    if let Some(run) = &state.run {
        state.process_gone = state.finish.is_none() && !hone_tui::system::process_alive(run.pid);
    }
    let name = state
        .run
        .as_ref()
        .map_or_else(|| args.run.display().to_string(), |r| r.run.clone());
    println!("{name}: {}", state.phase());
    if let Some(line) = summary_line(&state) {
        println!("{line}");
    }
    if let Some((step, path)) = &state.last_checkpoint {
        println!("last checkpoint: step {step}, {path}");
    }
    for alert in state.alerts() {
        println!("alert: {alert}");
    }
    Ok(())
}
