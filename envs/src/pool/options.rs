//! Task options passed by name through `PoolConfig::options` (Atari's `episodic_life`, ...).

/// One option's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EnvOption {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl EnvOption {
    /// The value as a bool, or a message naming what it is.
    pub fn as_bool(&self) -> Result<bool, String> {
        match *self {
            EnvOption::Bool(value) => Ok(value),
            other => Err(format!("expected a bool, got {other:?}")),
        }
    }

    /// The value as an integer (a float with no fraction counts).
    pub fn as_int(&self) -> Result<i64, String> {
        match *self {
            EnvOption::Int(value) => Ok(value),
            EnvOption::Float(value) if value.fract() == 0.0 && value.abs() < 9e15 => {
                Ok(value as i64)
            }
            other => Err(format!("expected an integer, got {other:?}")),
        }
    }

    /// The value as a float (an integer counts).
    pub fn as_float(&self) -> Result<f64, String> {
        match *self {
            EnvOption::Float(value) => Ok(value),
            EnvOption::Int(value) => Ok(value as f64),
            other => Err(format!("expected a number, got {other:?}")),
        }
    }
}

impl From<bool> for EnvOption {
    fn from(value: bool) -> Self {
        EnvOption::Bool(value)
    }
}

impl From<i64> for EnvOption {
    fn from(value: i64) -> Self {
        EnvOption::Int(value)
    }
}

impl From<i32> for EnvOption {
    fn from(value: i32) -> Self {
        EnvOption::Int(value.into())
    }
}

impl From<usize> for EnvOption {
    fn from(value: usize) -> Self {
        EnvOption::Int(value as i64)
    }
}

impl From<f64> for EnvOption {
    fn from(value: f64) -> Self {
        EnvOption::Float(value)
    }
}

impl From<f32> for EnvOption {
    fn from(value: f32) -> Self {
        EnvOption::Float(value.into())
    }
}
