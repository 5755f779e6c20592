use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("run directory {path}: {message}")]
    RunDir { path: PathBuf, message: String },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Telemetry(#[from] hone_telemetry::Error),
    #[error("environment: {0}")]
    Envs(#[from] hone_envs::Error),
    #[error("kernel: {0}")]
    Kernels(#[from] hone_kernels::Error),
    #[error("training diverged: {0}")]
    Diverged(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
