//! One Adam step over many parameters at once through libtorch's fused kernel (the update of
//! `torch.optim.Adam(fused=True)`, no weight decay): one pass per parameter that reads its
//! gradient and moments and writes the moments and the parameter back. The composite update
//! (`lerp_`, `mul_`, `addcmul_`, `sqrt`, `div`, `add_`, `addcdiv_`) makes five or six passes and
//! allocates two temporaries of each parameter's size; for a 135 M-parameter model on one CPU
//! core the fused step with clipping takes about a third of that time.

use std::ffi::c_char;

use tch::Tensor;
use torch_sys::C_tensor;

use super::checks::{require_float, require_same_shape};
use super::ffi_result;
use crate::error::{Error, Result, shape_error};

unsafe extern "C" {
    fn hone_fused_adam(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        n: i64,
        step: i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        grad_scale: f64,
    ) -> *const c_char;
}

/// Adam's hyper-parameters (`torch.optim.Adam`'s names and meanings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// One Adam step, in place, of every `params[i]` with `grads[i] / grad_scale` and its moments
/// `exp_avgs[i]`, `exp_avg_sqs[i]`; `step` is this step's number (1 for the first), which sets
/// the bias corrections. Clipping the gradients by a factor `c` is `grad_scale = 1 / c`; the
/// gradients are left divided by it, and the scale is applied as an f32 (libtorch's kernel
/// reads it so, whatever the parameters' kind). All tensors must be defined, contiguous, of
/// one floating kind and on one device, each gradient and moment the shape of its parameter,
/// and no two may share memory (each is written in place).
pub fn adam_step(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: i64,
    hyper: Adam,
    grad_scale: f64,
) -> Result<()> {
    for (name, list) in [
        ("grads", grads),
        ("exp_avgs", exp_avgs),
        ("exp_avg_sqs", exp_avg_sqs),
    ] {
        if list.len() != params.len() {
            return Err(shape_error(
                name,
                format!("{} tensors (one per parameter)", params.len()),
                format!("{}", list.len()),
            ));
        }
    }
    let range = |name, value: f64, ok: bool, range| {
        if ok {
            Ok(())
        } else {
            Err(Error::Parameter { name, value, range })
        }
    };
    range("step", step as f64, step >= 1, "1..")?;
    range(
        "lr",
        hyper.lr,
        hyper.lr >= 0.0 && hyper.lr.is_finite(),
        "[0, inf)",
    )?;
    range(
        "beta1",
        hyper.beta1,
        (0.0..1.0).contains(&hyper.beta1),
        "[0, 1)",
    )?;
    range(
        "beta2",
        hyper.beta2,
        (0.0..1.0).contains(&hyper.beta2),
        "[0, 1)",
    )?;
    range(
        "eps",
        hyper.eps,
        hyper.eps >= 0.0 && hyper.eps.is_finite(),
        "[0, inf)",
    )?;
    range(
        "grad_scale",
        grad_scale,
        grad_scale.is_finite() && grad_scale > 0.0,
        "(0, inf)",
    )?;
    let Some(first) = params.first() else {
        return Ok(());
    };
    let all = |i: usize| {
        [
            ("params", &params[i]),
            ("grads", &grads[i]),
            ("exp_avgs", &exp_avgs[i]),
            ("exp_avg_sqs", &exp_avg_sqs[i]),
        ]
    };
    for (what, t) in (0..params.len()).flat_map(all) {
        if !t.defined() {
            return Err(shape_error(what, "defined tensors", "an undefined one"));
        }
    }
    let (kind, device) = (require_float("params", first)?, first.device());
    for (i, p) in params.iter().enumerate() {
        for (what, t) in all(i) {
            require_same_shape(what, t, "its parameter", p)?;
            let got = t.f_kind()?;
            if got != kind {
                return Err(Error::Kind {
                    what,
                    expected: "the first parameter's kind",
                    got,
                });
            }
            if t.device() != device || !t.is_contiguous() {
                return Err(shape_error(
                    what,
                    format!("a contiguous tensor on {device:?} (where the first parameter is)"),
                    format!(
                        "tensor {i} on {:?}, contiguous: {}",
                        t.device(),
                        t.is_contiguous()
                    ),
                ));
            }
        }
    }
    let pointers = |list: &[Tensor]| list.iter().map(Tensor::as_ptr).collect::<Vec<_>>();
    let (p, g, m, v) = (
        pointers(params),
        pointers(grads),
        pointers(exp_avgs),
        pointers(exp_avg_sqs),
    );
    // SAFETY: the four arrays hold `params.len()` live tensors each, borrowed for the call;
    // shapes, kinds, devices and layouts are checked above.
    let error = unsafe {
        hone_fused_adam(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            params.len() as i64,
            step,
            hyper.lr,
            hyper.beta1,
            hyper.beta2,
            hyper.eps,
            grad_scale,
        )
    };
    // SAFETY: `error` comes from the call just made.
    unsafe { ffi_result(error) }
}
