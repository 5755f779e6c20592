use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    // The causes below are part of each message and not also `source()`: printed as a chain
    // (`{:#}`), they would otherwise appear twice ("x: reason: reason").
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("run directory {path}: {message}")]
    RunDir { path: PathBuf, message: String },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
    #[error(transparent)]
    Telemetry(#[from] hone_telemetry::Error),
    #[error("environment: {0}")]
    Envs(hone_envs::Error),
    #[error("kernel: {0}")]
    Kernels(hone_kernels::Error),
    #[error("training diverged: {0}")]
    Diverged(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Self::Torch(e)
    }
}

impl From<hone_envs::Error> for Error {
    fn from(e: hone_envs::Error) -> Self {
        Self::Envs(e)
    }
}

impl From<hone_kernels::Error> for Error {
    fn from(e: hone_kernels::Error) -> Self {
        Self::Kernels(e)
    }
}
