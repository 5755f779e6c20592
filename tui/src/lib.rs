//! hone-tui: the live terminal dashboard over the training telemetry.
//!
//! The dashboard is built from [`hone_telemetry::Event`]s only: in `hone train` the trainer
//! hands them over a bounded channel ([`event_channel`]) that never blocks it; `hone monitor`
//! follows a run's `metrics.jsonl`. [`DashboardState`] is what the events say, [`UiState`] what
//! the keys chose, and [`render`] draws both, nothing else, so the screen is testable.

mod app;
mod channel;
mod error;
pub mod format;
mod log_tail;
mod progress;
mod render;
mod state;
pub mod system;
mod ui;

pub use app::{
    Dashboard, DashboardOptions, DashboardThread, Source, restore_terminal, run, terminal_columns,
};
pub use channel::{DEFAULT_CAPACITY, EventReceiver, EventSender, Received, event_channel};
pub use error::{Error, Result};
pub use log_tail::LogTail;
pub use progress::{TextProgress, summary_line};
pub use render::render;
pub use state::{
    Alert, AlertThresholds, DashboardState, GpuMemory, HISTORY_LIMIT, Phase, Rates, SystemStats,
    UpdateRecord,
};
pub use ui::{Action, Metric, Mode, RlhfMetric, Tab, UiState, WINDOWS_S};

#[cfg(test)]
mod screens;
