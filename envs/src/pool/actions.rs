//! Action rows: checked against the action space, scattered into per-env rows (async mode).

use super::kernel::ActionRows;
use super::sync::SharedBuf;
use crate::batch::Actions;
use crate::error::{Error, Result};
use crate::space::Space;

/// How action rows are checked and read, from the action space.
#[derive(Clone, Debug)]
pub(super) enum ActionCheck {
    Discrete { n: i64 },
    MultiDiscrete { nvec: Vec<i64> },
    Continuous { len: usize },
}

impl ActionCheck {
    pub(super) fn new(space: &Space) -> Result<Self> {
        let bad = |what: String| {
            Err(Error::InvalidConfig(format!(
                "the env's action space {what}"
            )))
        };
        match space {
            Space::Discrete { n } if *n > 0 => Ok(Self::Discrete { n: *n }),
            Space::Discrete { n } => bad(format!("is Discrete({n}), which holds no action")),
            Space::MultiDiscrete { nvec } if nvec.iter().all(|&n| n > 0) => {
                Ok(Self::MultiDiscrete { nvec: nvec.clone() })
            }
            Space::MultiDiscrete { nvec } => {
                bad(format!("is MultiDiscrete({nvec:?}), with an empty element"))
            }
            Space::Box { .. } => Ok(Self::Continuous {
                len: space.flat_len(),
            }),
        }
    }

    pub(super) fn per_row(&self) -> usize {
        match self {
            Self::Discrete { .. } => 1,
            Self::MultiDiscrete { nvec } => nvec.len(),
            Self::Continuous { len } => *len,
        }
    }

    fn space_name(&self) -> &'static str {
        match self {
            Self::Discrete { .. } => "Discrete",
            Self::MultiDiscrete { .. } => "MultiDiscrete",
            Self::Continuous { .. } => "Box",
        }
    }

    /// Checks `actions` holds `rows` valid rows; `env_of(row)` names the env in messages.
    /// Returns where the kernel reads the rows (valid while `actions` is).
    pub(super) fn validate(
        &self,
        actions: Actions<'_>,
        rows: usize,
        env_of: impl Fn(usize) -> u32,
    ) -> Result<ActionRows> {
        let per_row = self.per_row();
        if actions.len() != rows * per_row {
            return Err(Error::ActionCount {
                expected: rows * per_row,
                rows,
                per_row,
                got: actions.len(),
            });
        }
        match (self, actions) {
            (Self::Discrete { n }, Actions::Int(values)) => {
                // One vectorised pass; the search for the culprit only on failure.
                if !values.iter().all(|&value| (0..*n).contains(&value)) {
                    let row = values
                        .iter()
                        .position(|value| !(0..*n).contains(value))
                        .unwrap_or(0);
                    return Err(Error::ActionOutOfRange {
                        env_id: env_of(row),
                        value: values[row],
                        n: *n,
                    });
                }
                Ok(ActionRows::Discrete(values.as_ptr()))
            }
            (Self::MultiDiscrete { nvec }, Actions::Int(values)) => {
                for (index, &value) in values.iter().enumerate() {
                    let element = index % per_row;
                    if !(0..nvec[element]).contains(&value) {
                        return Err(Error::MultiDiscreteActionOutOfRange {
                            env_id: env_of(index / per_row),
                            element,
                            value,
                            n: nvec[element],
                        });
                    }
                }
                Ok(ActionRows::MultiDiscrete(values.as_ptr(), per_row))
            }
            (Self::Continuous { .. }, Actions::Float(values)) => {
                if values.iter().any(|value| value.is_nan()) {
                    let index = values.iter().position(|value| value.is_nan()).unwrap_or(0);
                    return Err(Error::ActionNaN {
                        env_id: env_of(index / per_row),
                        element: index % per_row,
                    });
                }
                Ok(ActionRows::Continuous(values.as_ptr(), per_row))
            }
            (check, actions) => Err(Error::ActionType {
                space: check.space_name(),
                expected: match check {
                    Self::Continuous { .. } => "f32",
                    _ => "i64",
                },
                got: actions.kind(),
            }),
        }
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short rows of observations and
/// actions (a call costs more than copying a few values).
#[inline(always)]
pub(super) fn copy_row<T: Copy>(dst: &mut [T], src: &[T]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match src.len() {
                $($n => dst[..$n].copy_from_slice(&src[..$n]),)*
                _ => dst.copy_from_slice(src),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8)
}

/// Copies row `k` of `values` (`per_row` wide) to row `env_ids[k]` of `buffer`.
///
/// # Safety
/// The `env_ids` are valid rows of `buffer` that no other thread accesses.
pub(super) unsafe fn scatter_rows<T: Copy>(
    buffer: &SharedBuf<T>,
    values: &[T],
    env_ids: &[u32],
    per_row: usize,
) {
    debug_assert_eq!(values.len(), env_ids.len() * per_row);
    // SAFETY (both): as the caller guarantees.
    if per_row == 1 {
        for (&env_id, &value) in env_ids.iter().zip(values) {
            unsafe { *buffer.get_mut(env_id as usize) = value };
        }
    } else {
        for (&env_id, row) in env_ids.iter().zip(values.chunks_exact(per_row)) {
            let id = env_id as usize;
            copy_row(unsafe { buffer.slice_mut(id * per_row, per_row) }, row);
        }
    }
}
