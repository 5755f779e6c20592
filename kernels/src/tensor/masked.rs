//! Masked mean, variance and whitening, as TRL's `masked_mean`, `masked_var` and
//! `masked_whiten`. Masks are 0/1 weights of the values' shape (bool or any numeric kind).
//! Half-precision values are reduced in f32; results have the values' kind. All three are
//! differentiable through autograd.
//!
//! A reduction over the whole tensor reads the mask's sum back to the host to reject an empty
//! mask (one scalar synchronisation on CUDA).

use tch::{Kind, Tensor};

use super::checks::{accumulation_kind, require_float, require_same_shape};
use crate::error::{Error, Result};

/// TRL's whitening epsilon.
pub const WHITEN_EPSILON: f64 = 1e-8;

/// Values and mask in the accumulation kind, after the checks.
fn prepared(values: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor, Kind)> {
    let kind = require_float("values", values)?;
    require_same_shape("mask", mask, "values", values)?;
    let acc = accumulation_kind(kind);
    Ok((values.f_to_kind(acc)?, mask.f_to_kind(acc)?, kind))
}

/// The mask's total weight, read back; an error when it is not above `at_least`.
fn mask_total(mask: &Tensor, at_least: f64, need: &str) -> Result<Tensor> {
    let total = mask.f_sum(mask.kind())?;
    let weight = total.f_double_value(&[])?;
    if weight > at_least {
        Ok(total)
    } else {
        Err(Error::Empty(format!(
            "the mask selects {weight} elements; {need}"
        )))
    }
}

fn mean_of(values: &Tensor, mask: &Tensor, total: &Tensor) -> Result<Tensor> {
    Ok(values.f_mul(mask)?.f_sum(values.kind())?.f_div(total)?)
}

/// Mean of the unmasked values (a scalar tensor). An empty mask is an error.
pub fn masked_mean(values: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (values, mask, kind) = prepared(values, mask)?;
    let total = mask_total(&mask, 0.0, "a mean needs at least one")?;
    Ok(mean_of(&values, &mask, &total)?.f_to_kind(kind)?)
}

/// Mean of the unmasked values along `dim` (that dimension removed). A slice whose mask is empty
/// gets 0 rather than TRL's NaN, so one empty sequence does not poison a batch.
pub fn masked_mean_dim(values: &Tensor, mask: &Tensor, dim: i64) -> Result<Tensor> {
    let (values, mask, kind) = prepared(values, mask)?;
    let rank = values.dim() as i64;
    if !(-rank..rank).contains(&dim) {
        return Err(Error::Parameter {
            name: "dim",
            value: dim as f64,
            range: "[-rank, rank) of the values",
        });
    }
    let acc = values.kind();
    let sums = values
        .f_mul(&mask)?
        .f_sum_dim_intlist(&[dim][..], false, acc)?;
    let totals = mask.f_sum_dim_intlist(&[dim][..], false, acc)?;
    // Where the total is 0 the sum is 0 too; dividing by 1 there gives 0.
    let safe_totals = totals.f_where_scalarother(&totals.f_ne(0)?, 1.0)?;
    Ok(sums.f_div(&safe_totals)?.f_to_kind(kind)?)
}

fn variance_of(values: &Tensor, mask: &Tensor, unbiased: bool) -> Result<(Tensor, Tensor)> {
    let (at_least, need) = if unbiased {
        (
            1.0,
            "an unbiased (Bessel-corrected) variance needs more than one",
        )
    } else {
        (0.0, "a variance needs at least one")
    };
    let total = mask_total(mask, at_least, need)?;
    let mean = mean_of(values, mask, &total)?;
    let centred = values.f_sub(&mean)?;
    let mut var = mean_of(&centred.f_square()?, mask, &total)?;
    if unbiased {
        var = var.f_mul(&total)?.f_div(&total.f_sub_scalar(1.0)?)?;
    }
    Ok((mean, var))
}

/// Variance of the unmasked values around their masked mean (a scalar tensor); `unbiased`
/// applies Bessel's correction `n / (n - 1)` with n the mask's total, as TRL's default.
pub fn masked_var(values: &Tensor, mask: &Tensor, unbiased: bool) -> Result<Tensor> {
    let (values, mask, kind) = prepared(values, mask)?;
    Ok(variance_of(&values, &mask, unbiased)?.1.f_to_kind(kind)?)
}

/// `(values - mean) / sqrt(var + 1e-8)` with the masked mean and unbiased variance, applied to
/// every element (masked ones too, as TRL); `shift_mean = false` adds the mean back.
pub fn masked_whiten(values: &Tensor, mask: &Tensor, shift_mean: bool) -> Result<Tensor> {
    let (values, mask, kind) = prepared(values, mask)?;
    let (mean, var) = variance_of(&values, &mask, true)?;
    let mut whitened = values
        .f_sub(&mean)?
        .f_mul(&var.f_add_scalar(WHITEN_EPSILON)?.f_rsqrt()?)?;
    if !shift_mean {
        whitened = whitened.f_add(&mean)?;
    }
    Ok(whitened.f_to_kind(kind)?)
}
