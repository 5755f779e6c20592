use std::path::PathBuf;

/// Each cause is part of the message and not also `source()`, so that a printed chain (`{:#}`)
/// names it once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}, line {line}: not a telemetry event: {cause}")]
    Parse {
        path: PathBuf,
        line: usize,
        cause: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
