//! Errors of the binding, and how they reach Python: a bad value is a `ValueError`, a value of the
//! wrong type a `TypeError`, a call in the wrong state a `RuntimeError`. After any of them the pool
//! stays usable (the engine checks everything before it touches an env).

use pyo3::PyErr;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Pool(#[from] hone_envs::Error),
    #[error("{operation} on a closed EnvPool (close() was called)")]
    Closed { operation: &'static str },
    #[error(
        "actions must have shape {expected} ({rows} rows, one per env, of the action space {space}), got shape {got}"
    )]
    ActionShape {
        expected: String,
        rows: usize,
        space: String,
        got: String,
    },
    #[error(
        "the action space is {space}: actions must be {expected}, got an array of dtype {dtype}"
    )]
    ActionDtype {
        space: String,
        expected: &'static str,
        dtype: String,
    },
    #[error("env_id must hold integers, got an array of dtype {dtype}")]
    EnvIdDtype { dtype: String },
    #[error("env_id must be a 1-d array of env ids, got shape {got}")]
    EnvIdShape { got: String },
    #[error("env id {env_id} is out of range 0..{num_envs}")]
    EnvIdOutOfRange { env_id: i64, num_envs: usize },
    #[error(
        "this pool is sync (batch_size == num_envs): send() needs one action row for every env, got env ids for {got} of {num_envs} envs"
    )]
    SyncSendSubset { got: usize, num_envs: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for PyErr {
    fn from(error: Error) -> Self {
        use hone_envs::Error as Pool;
        let message = error.to_string();
        match &error {
            Error::ActionDtype { .. }
            | Error::EnvIdDtype { .. }
            | Error::Pool(Pool::ActionType { .. }) => PyTypeError::new_err(message),
            Error::Closed { .. }
            | Error::Pool(
                Pool::EnvInFlight { .. }
                | Pool::NothingInFlight
                | Pool::NotEnoughInFlight { .. }
                | Pool::WrongMode { .. }
                | Pool::NotReset { .. }
                | Pool::EnvPanicked { .. }
                | Pool::Snapshot(_)
                | Pool::ThreadSpawn(_),
            ) => PyRuntimeError::new_err(message),
            _ => PyValueError::new_err(message),
        }
    }
}
