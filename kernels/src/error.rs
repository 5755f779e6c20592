//! The one error type of hone-kernels.

/// What a kernel rejected, naming the offending value and what it should have been.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input's length or shape does not match what the others imply.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: &'static str,
        expected: String,
        got: String,
    },
    /// A tensor has an element kind the kernel does not accept.
    #[error("{what}: expected {expected}, got {got:?}")]
    Kind {
        what: &'static str,
        expected: &'static str,
        got: tch::Kind,
    },
    /// A parameter is outside its valid range.
    #[error("{name} = {value} is outside its valid range {range}")]
    Parameter {
        name: &'static str,
        value: f64,
        range: &'static str,
    },
    /// Nothing to reduce over: an empty input, or a mask that selects no element.
    #[error("{0}")]
    Empty(String),
    /// A step is truncated but the rollout carries no final-observation values to bootstrap from.
    #[error(
        "step {step}, env {env} is truncated (and not terminated) but no final_values were given; \
         pass them or use Truncation::AsTermination"
    )]
    MissingFinalValues { step: usize, env: usize },
    /// A token id outside `0..vocab`.
    #[error("token id {token} is outside the vocabulary 0..{vocab}")]
    TokenOutOfRange { token: i64, vocab: i64 },
    /// libtorch reported an error (for example running out of device memory). Its message is
    /// part of this one and not also `source()`, so a printed chain names it once.
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Self::Torch(e)
    }
}

pub(crate) fn shape_error(
    what: &'static str,
    expected: impl ToString,
    got: impl ToString,
) -> Error {
    Error::Shape {
        what,
        expected: expected.to_string(),
        got: got.to_string(),
    }
}
