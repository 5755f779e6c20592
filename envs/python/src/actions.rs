//! Python actions and env ids into the pool's layout. Both are copied into buffers the binding
//! owns before the GIL is released: another Python thread may write the caller's array while the
//! pool steps, and the pool must read the values it validated.

use hone_envs::{Actions, Space};
use numpy::{Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray};
use numpy::{PyUntypedArrayMethods, dtype};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::Error;

/// Whether a space's actions are integers (`Discrete`, `MultiDiscrete`) or floats (`Box`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActionKind {
    Int,
    Float,
}

/// How one env's action is laid out, from the pool's action space.
#[derive(Clone, Debug)]
pub struct ActionLayout {
    kind: ActionKind,
    /// Values per row.
    per_row: usize,
    /// The shape of one action (`Discrete`: `()`).
    shape: Vec<usize>,
    /// The space as gymnasium prints it, for messages.
    space: String,
}

impl ActionLayout {
    pub fn new(space: &Space) -> Self {
        let kind = match space {
            Space::Box { .. } => ActionKind::Float,
            Space::Discrete { .. } | Space::MultiDiscrete { .. } => ActionKind::Int,
        };
        Self {
            kind,
            per_row: space.flat_len(),
            shape: space.shape(),
            space: describe_space(space),
        }
    }

    /// Copies `rows` action rows from `actions` (any array-like: a numpy array of a compatible
    /// dtype, a list, a CPU tensor) into `out`. Integer spaces take integer dtypes, `Box` spaces
    /// any real dtype (cast to f32). The leading axis must be `rows` long; for integer spaces the
    /// rest is the action's shape (`Discrete`: `(rows,)`, never `(rows, 1)`), for `Box` spaces it
    /// must hold one action (`(rows,)` for shape `(1,)` too).
    pub fn read(
        &self,
        actions: &Bound<'_, PyAny>,
        rows: usize,
        out: &mut ActionBuffer,
    ) -> PyResult<()> {
        match self.kind {
            ActionKind::Int => {
                let array = contiguous_array::<i64>(actions, b"iu", || {
                    self.dtype_error(actions, "integers")
                })?;
                self.check_shape(array.shape(), rows)?;
                let values = array.try_readonly()?;
                out.int.clear();
                out.int.extend_from_slice(values.as_slice()?);
                out.kind = ActionKind::Int;
            }
            ActionKind::Float => {
                let array = contiguous_array::<f32>(actions, b"fiu", || {
                    self.dtype_error(actions, "real numbers")
                })?;
                self.check_shape(array.shape(), rows)?;
                let values = array.try_readonly()?;
                out.float.clear();
                out.float.extend_from_slice(values.as_slice()?);
                out.kind = ActionKind::Float;
            }
        }
        Ok(())
    }

    /// An action buffer holding `rows` rows of zeros in this layout.
    pub fn zeros(&self, rows: usize) -> ActionBuffer {
        let len = rows * self.per_row;
        let (int, float) = match self.kind {
            ActionKind::Int => (vec![0; len], Vec::new()),
            ActionKind::Float => (Vec::new(), vec![0.0; len]),
        };
        ActionBuffer {
            kind: self.kind,
            int,
            float,
        }
    }

    pub fn per_row(&self) -> usize {
        self.per_row
    }

    fn check_shape(&self, shape: &[usize], rows: usize) -> Result<(), Error> {
        let fits = shape.first() == Some(&rows)
            && match self.kind {
                // As gymnasium's vector envs: a Discrete batch is MultiDiscrete((rows,)), and a
                // (rows, 1) row is not in Discrete (gymnasium/spaces/discrete.py, `contains`).
                ActionKind::Int => shape[1..] == self.shape[..],
                ActionKind::Float => shape[1..].iter().product::<usize>() == self.per_row,
            };
        if fits {
            return Ok(());
        }
        let mut expected = vec![rows];
        expected.extend_from_slice(&self.shape);
        Err(Error::ActionShape {
            expected: format_shape(&expected),
            rows,
            space: self.space.clone(),
            got: format_shape(shape),
        })
    }

    fn dtype_error(&self, actions: &Bound<'_, PyAny>, expected: &'static str) -> PyErr {
        let dtype = numpy_dtype_name(actions).unwrap_or_else(|| "unknown".to_owned());
        Error::ActionDtype {
            space: self.space.clone(),
            expected,
            dtype,
        }
        .into()
    }
}

/// One call's actions, in the binding's own memory (reused from call to call).
#[derive(Debug)]
pub struct ActionBuffer {
    kind: ActionKind,
    int: Vec<i64>,
    float: Vec<f32>,
}

impl Default for ActionBuffer {
    fn default() -> Self {
        Self {
            kind: ActionKind::Int,
            int: Vec::new(),
            float: Vec::new(),
        }
    }
}

impl ActionBuffer {
    pub fn as_actions(&self) -> Actions<'_> {
        match self.kind {
            ActionKind::Int => Actions::Int(&self.int),
            ActionKind::Float => Actions::Float(&self.float),
        }
    }

    /// Copies row `from` of `source` to row `to` of this buffer (same layout, `per_row` wide).
    pub fn copy_row(&mut self, to: usize, source: &ActionBuffer, from: usize, per_row: usize) {
        let (dst, src) = (
            to * per_row..(to + 1) * per_row,
            from * per_row..(from + 1) * per_row,
        );
        match self.kind {
            ActionKind::Int => self.int[dst].copy_from_slice(&source.int[src]),
            ActionKind::Float => self.float[dst].copy_from_slice(&source.float[src]),
        }
    }
}

/// Reads env ids (any 1-d array-like of integers) into `out`, each checked against `num_envs`.
pub fn read_env_ids(
    env_ids: &Bound<'_, PyAny>,
    num_envs: usize,
    out: &mut Vec<u32>,
) -> PyResult<()> {
    let array = contiguous_array::<i64>(env_ids, b"iu", || {
        let dtype = numpy_dtype_name(env_ids).unwrap_or_else(|| "unknown".to_owned());
        Error::EnvIdDtype { dtype }.into()
    })?;
    if array.ndim() != 1 {
        return Err(Error::EnvIdShape {
            got: format_shape(array.shape()),
        }
        .into());
    }
    let values = array.try_readonly()?;
    out.clear();
    for &env_id in values.as_slice()? {
        if env_id < 0 || env_id as u64 >= num_envs as u64 {
            return Err(Error::EnvIdOutOfRange { env_id, num_envs }.into());
        }
        out.push(env_id as u32);
    }
    Ok(())
}

/// `object` as a C-contiguous array of `T`: as it is when it already is one, else through
/// `numpy.asarray(..., order="C")` when its dtype kind is one of `kinds` (`dtype_error` otherwise).
fn contiguous_array<'py, T: Element>(
    object: &Bound<'py, PyAny>,
    kinds: &[u8],
    dtype_error: impl FnOnce() -> PyErr,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    if let Ok(array) = object.cast::<PyArrayDyn<T>>()
        && array.is_c_contiguous()
    {
        return Ok(array.clone());
    }
    let py = object.py();
    let numpy = py.import(intern!(py, "numpy"))?;
    let array = numpy.call_method1(intern!(py, "asarray"), (object,))?;
    let array = array.cast_into::<PyUntypedArray>()?;
    if !kinds.contains(&array.dtype().kind()) {
        return Err(dtype_error());
    }
    // asarray rather than ascontiguousarray, which turns a 0-d array into a 1-d one.
    let options = PyDict::new(py);
    options.set_item(intern!(py, "dtype"), dtype::<T>(py))?;
    options.set_item(intern!(py, "order"), intern!(py, "C"))?;
    let converted = numpy.call_method(intern!(py, "asarray"), (array,), Some(&options))?;
    Ok(converted.cast_into::<PyArrayDyn<T>>()?)
}

/// The dtype of `object` as numpy names it (after `numpy.asarray`), if numpy can tell.
fn numpy_dtype_name(object: &Bound<'_, PyAny>) -> Option<String> {
    let py = object.py();
    let numpy = py.import(intern!(py, "numpy")).ok()?;
    let array = numpy.call_method1(intern!(py, "asarray"), (object,)).ok()?;
    let dtype = array.getattr(intern!(py, "dtype")).ok()?;
    dtype.str().ok().map(|name| name.to_string())
}

/// `(8,)`, `(8, 1)`, `()`, as Python prints shapes.
pub fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [only] => format!("({only},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A space as gymnasium prints it, e.g. `Discrete(2)`, `Box(-2.0, 2.0, (1,), float32)`.
pub fn describe_space(space: &Space) -> String {
    match space {
        Space::Discrete { n } => format!("Discrete({n})"),
        Space::MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
        Space::Box {
            low, high, shape, ..
        } => {
            let uniform =
                |values: &[f32]| values.iter().all(|v| v.to_bits() == values[0].to_bits());
            if !low.is_empty() && uniform(low) && uniform(high) {
                format!(
                    "Box({:?}, {:?}, {}, float32)",
                    low[0],
                    high[0],
                    format_shape(shape)
                )
            } else {
                format!("Box({}, float32)", format_shape(shape))
            }
        }
    }
}
