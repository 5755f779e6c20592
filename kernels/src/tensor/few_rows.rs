//! `x Wᵀ (+ b)` for a few rows of `x` on the CPU through [`crate::slice::few_rows`], where it
//! beats libtorch's GEMM (a decoding step's projections and LM head); other cases are left to
//! libtorch.

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::slice::few_rows::{simd_available, weight_times_rows};

/// At most this many rows of `x` take the few-row path.
pub const MAX_FEW_ROWS: i64 = 16;

/// Whether autograd records operations on this thread now.
fn grad_mode_enabled() -> bool {
    // SAFETY: `at_grad_set_enabled` only sets and returns the thread-local grad-mode flag;
    // setting it back at once leaves it as it was.
    unsafe {
        let enabled = torch_sys::at_grad_set_enabled(0);
        torch_sys::at_grad_set_enabled(enabled);
        enabled != 0
    }
}

/// `x [..., K] · w [N, K]ᵀ (+ b [N])` when `x` has 1 to [`MAX_FEW_ROWS`] rows, everything is an
/// f32 CPU tensor, no gradient is to be recorded and the CPU has AVX2 and FMA; `None` otherwise
/// (use `x.linear(w, b)`). Uses `tch::get_num_threads()` threads.
pub fn linear_few_rows(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Option<Tensor>> {
    let x_size = x.size();
    let w_size = w.size();
    let (Some(&k), [n, w_k]) = (x_size.last(), w_size.as_slice()) else {
        return Ok(None);
    };
    let rows: i64 = x_size[..x_size.len() - 1].iter().product();
    let cpu_f32 = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
    let applies = k == *w_k
        && k > 0
        && *n > 0
        && (1..=MAX_FEW_ROWS).contains(&rows)
        && cpu_f32(x)
        && cpu_f32(w)
        && w.is_contiguous()
        && b.is_none_or(|b| cpu_f32(b) && b.size() == [*n])
        && simd_available();
    let tracked = x.requires_grad() || w.requires_grad() || b.is_some_and(Tensor::requires_grad);
    if !applies || (tracked && grad_mode_enabled()) {
        return Ok(None);
    }
    let x = x.f_contiguous()?;
    let out = Tensor::f_empty([*n, rows], (Kind::Float, Device::Cpu))?;
    let (k, n, rows) = (k as usize, *n as usize, rows as usize);
    // SAFETY: `w` and `x` are contiguous f32 CPU tensors of n·k and rows·k elements (checked
    // above), alive for this call and not written during it; `out` was just allocated with
    // n·rows f32 elements and nothing else refers to its storage yet.
    let (w_data, x_data, out_data) = unsafe {
        (
            std::slice::from_raw_parts(w.data_ptr().cast::<f32>(), n * k),
            std::slice::from_raw_parts(x.data_ptr().cast::<f32>(), rows * k),
            std::slice::from_raw_parts_mut(out.data_ptr().cast::<f32>(), n * rows),
        )
    };
    let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
    weight_times_rows(w_data, x_data, k, out_data, threads)?;
    let mut shape = x_size;
    *shape.last_mut().unwrap_or(&mut 0) = n as i64;
    let y = out.f_tr()?.f_contiguous()?.f_view(shape.as_slice())?;
    Ok(Some(match b {
        Some(b) => y.f_add(b)?,
        None => y,
    }))
}
