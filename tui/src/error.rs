use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(transparent)]
    Telemetry(#[from] hone_telemetry::Error),
    #[error("{}: not a run directory (no metrics.jsonl in it)", .0.display())]
    NotARun(PathBuf),
    #[error("the dashboard thread panicked")]
    Panicked,
}

pub type Result<T> = std::result::Result<T, Error>;
