//! The one error type of hone-rlhf.
//!
//! Each variant's message is whole: it names its cause itself, and so `source()` returns none
//! (a variant that did both would read "path: reason: reason" in anyhow's `{:#}` chain).

use std::path::PathBuf;

/// What went wrong, naming the file, tensor or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A file is present but its content is not what hone expects.
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    /// A model config field is missing, ill-typed or outside what hone supports.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A weight the architecture needs is absent from the checkpoint or has the wrong shape.
    #[error("{source_name}: tensor `{tensor}`: {message}")]
    Tensor {
        source_name: String,
        tensor: String,
        message: String,
    },
    /// A parameter of a call is outside its valid range.
    #[error("{name} = {value} is invalid: expected {expected}")]
    Parameter {
        name: &'static str,
        value: String,
        expected: String,
    },
    /// One row of a batch (a prompt, a sequence) cannot be used: empty, or too long for the
    /// model's context.
    #[error("{what} {index}: {message}")]
    Row {
        what: &'static str,
        index: usize,
        message: String,
    },
    /// The tokenizer (tokenizers crate) or the chat template failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A dataset line is malformed.
    #[error("{path}:{line}: {message}")]
    Dataset {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A run's estimated memory exceeds what the machine has available.
    #[error("{0}")]
    DoesNotFit(String),
    /// A training loss or statistic became NaN or infinite.
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
    #[error("kernel: {0}")]
    Kernels(hone_kernels::Error),
    #[error(transparent)]
    Trainer(#[from] hone_trainer::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// By hand rather than `#[from]`, which would also make the inner error the `source()`.
impl From<tch::TchError> for Error {
    fn from(error: tch::TchError) -> Self {
        Error::Torch(error)
    }
}

impl From<hone_kernels::Error> for Error {
    fn from(error: hone_kernels::Error) -> Self {
        Error::Kernels(error)
    }
}

pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_owned(),
        cause,
    }
}

pub(crate) fn malformed(path: &std::path::Path, message: impl ToString) -> Error {
    Error::Malformed {
        path: path.to_owned(),
        message: message.to_string(),
    }
}
