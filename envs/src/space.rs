//! Observation and action spaces, as in gymnasium.

/// A gymnasium space. Observations are always f32 `Box`es; actions may be any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// The integers `0..n` (gymnasium `Discrete(n)`).
    Discrete { n: i64 },
    /// f32 values with per-element bounds, laid out row-major in `shape`.
    Box {
        low: Vec<f32>,
        high: Vec<f32>,
        shape: Vec<usize>,
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
