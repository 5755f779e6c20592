//! Kernels over tch tensors, on any device (the same code runs on CPU and CUDA): masked
//! statistics, per-token log-probabilities, entropies and KL estimates, sampling filters, and
//! GAE for rollouts that live on the GPU; the CPU few-row `x Wᵀ` of decoding; and a fused Adam
//! step.

pub mod adam;
pub mod advantage;
pub mod few_rows;
pub mod kl;
pub mod masked;
pub mod sampling;
pub mod token;

mod checks;

use std::ffi::{CStr, c_char};

use crate::error::{Error, Result};

/// The outcome of a C++ call (cxx/guarded.h): null on success, else the error message.
///
/// # Safety
/// `error` must be null or the message the call just returned (a NUL-terminated thread-local
/// string, valid until the next call on this thread; it is copied at once).
unsafe fn ffi_result(error: *const c_char) -> Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a valid C string, per the caller's promise.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    Err(Error::Torch(tch::TchError::Torch(message)))
}
