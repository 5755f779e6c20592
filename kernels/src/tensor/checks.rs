//! Input checks shared by the tensor kernels, so a bad input is an error rather than a
//! libtorch exception (or a device-side assert on CUDA).

use tch::{Kind, Tensor};

use crate::error::{Error, Result, shape_error};

pub(crate) fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

pub(crate) fn require_float(what: &'static str, tensor: &Tensor) -> Result<Kind> {
    let kind = tensor.f_kind()?;
    if is_float(kind) {
        Ok(kind)
    } else {
        Err(Error::Kind {
            what,
            expected: "a floating-point kind (f32, f64, f16, bf16)",
            got: kind,
        })
    }
}

/// Half kinds are reduced in f32; f32 and f64 in themselves.
pub(crate) fn accumulation_kind(kind: Kind) -> Kind {
    if kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    }
}

pub(crate) fn require_same_shape(
    what: &'static str,
    tensor: &Tensor,
    reference_what: &str,
    reference: &Tensor,
) -> Result<()> {
    let (got, expected) = (tensor.size(), reference.size());
    if got == expected {
        Ok(())
    } else {
        Err(shape_error(
            what,
            format!("{expected:?} (the shape of {reference_what})"),
            format!("{got:?}"),
        ))
    }
}

/// A flag tensor as bool: bool as is, any other kind as `!= 0`.
pub(crate) fn as_flags(tensor: &Tensor) -> Result<Tensor> {
    Ok(if tensor.f_kind()? == Kind::Bool {
        tensor.shallow_clone()
    } else {
        tensor.f_ne(0)?
    })
}
