//! Observation and action spaces, as in gymnasium.

/// The element type of a `Box` (numpy's dtype).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dtype {
    #[default]
    Float32,
    /// Atari frames: bounds 0 and 255.
    Uint8,
}

impl Dtype {
    /// numpy's name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Float32 => "float32",
            Dtype::Uint8 => "uint8",
        }
    }
}

/// A gymnasium space. Observations are `Box`es (f32, or u8 for Atari); actions may be any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// The integers `0..n` (gymnasium `Discrete(n)`).
    Discrete { n: i64 },
    /// Values of `dtype` with per-element bounds (as f32, exact for u8), row-major in `shape`.
    Box {
        low: Vec<f32>,
        high: Vec<f32>,
        shape: Vec<usize>,
        dtype: Dtype,
    },
    /// One integer per element, element `i` in `0..nvec[i]` (gymnasium `MultiDiscrete(nvec)`).
    MultiDiscrete { nvec: Vec<i64> },
}

impl Space {
    /// A `Box` of the given shape with the same bounds for every element.
    pub fn uniform_box(low: f32, high: f32, shape: &[usize]) -> Self {
        let len = shape.iter().product();
        Space::Box {
            low: vec![low; len],
            high: vec![high; len],
            shape: shape.to_vec(),
            dtype: Dtype::Float32,
        }
    }

    /// gymnasium's `Box(low, high, shape, uint8)`.
    pub fn uint8_box(low: u8, high: u8, shape: &[usize]) -> Self {
        let len = shape.iter().product();
        Space::Box {
            low: vec![low.into(); len],
            high: vec![high.into(); len],
            shape: shape.to_vec(),
            dtype: Dtype::Uint8,
        }
    }

    /// The element type (`Discrete`, `MultiDiscrete`: `None`, integers).
    pub fn dtype(&self) -> Option<Dtype> {
        match self {
            Space::Box { dtype, .. } => Some(*dtype),
            _ => None,
        }
    }

    /// How many scalars one element of this space occupies in a batch row (`Discrete`: 1).
    pub fn flat_len(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::Box { shape, .. } => shape.iter().product(),
            Space::MultiDiscrete { nvec } => nvec.len(),
        }
    }

    /// The shape of one element (`Discrete`: a scalar, `[]`).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Space::Discrete { .. } => Vec::new(),
            Space::Box { shape, .. } => shape.clone(),
            Space::MultiDiscrete { nvec } => vec![nvec.len()],
        }
    }
}
