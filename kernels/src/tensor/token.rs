//! Per-token log-probabilities and entropies of `[B, T, V]` logits, computed in chunks of
//! positions of one sequence at a time, so the extra memory is O(chunk × V) instead of the
//! O(B × T × V) of `log_softmax(-1).gather(-1, tokens)`, forward and backward.
//!
//! [`token_logprobs_from_hidden`] goes one step further for a bias-free LM head: it takes the
//! hidden states and the head's weight and never holds the `[B, T, V]` logits at all.
//!
//! All are libtorch autograd functions with their own backward (cxx/token_autograd.cpp): they
//! save only the logits for backward (the naive version keeps a `[B, T, V]` log-softmax alive
//! until backward), and the backward writes the logits' gradient chunk by chunk. Gradients equal
//! the naive version's; double backward is not supported. Half-precision logits are reduced in
//! f32 and give f32 results (f64 gives f64); the gradient has the logits' kind.

use std::ffi::c_char;

use tch::{Kind, Tensor};
use torch_sys::C_tensor;

use super::checks::require_float;
use super::ffi_result;
use crate::error::{Error, Result, shape_error};

/// Elements (chunk × V) per chunk by default: 4 MiB of f32 temporaries per live buffer.
pub const DEFAULT_CHUNK_ELEMENTS: i64 = 1 << 20;

/// Logits (chunk × V) per chunk of [`token_logprobs_from_hidden`] by default: 64 MiB of f32 per
/// live buffer, because each chunk is also a matmul, and a matmul of a few rows runs far below
/// the machine's speed (measured on CPU: 21 rows per chunk took 2.7x as long as 256).
pub const DEFAULT_HEAD_CHUNK_ELEMENTS: i64 = 1 << 24;

unsafe extern "C" {
    fn hone_token_logprobs(
        logits: *const C_tensor,
        tokens: *const C_tensor,
        chunk: i64,
        out: *mut *mut C_tensor,
    ) -> *const c_char;
    fn hone_token_entropy(
        logits: *const C_tensor,
        chunk: i64,
        out: *mut *mut C_tensor,
    ) -> *const c_char;
    fn hone_linear_token_logprobs(
        hidden: *const C_tensor,
        weight: *const C_tensor,
        tokens: *const C_tensor,
        chunk: i64,
        out: *mut *mut C_tensor,
    ) -> *const c_char;
}

/// Takes ownership of what a `hone_token_*` call produced.
///
/// # Safety
/// `error` and `out` must come from one call of a `hone_token_*` function: either `error` is a
/// valid C string (and `out` was not written), or `error` is null and `out` is a tensor the
/// caller now owns.
unsafe fn take_result(error: *const c_char, out: *mut C_tensor) -> Result<Tensor> {
    // SAFETY: `error` comes from the call that produced `out` (the caller's promise).
    unsafe { ffi_result(error) }?;
    // SAFETY: on success the C++ side stored a heap-allocated tensor that nobody else owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// Logits as `[B, T, V]` (a 2-D `[T, V]` gains a batch of 1) and the number of dimensions to
/// drop again from the result.
fn batched(logits: &Tensor) -> Result<(Tensor, bool)> {
    require_float("logits", logits)?;
    match logits.dim() {
        3 => Ok((logits.shallow_clone(), false)),
        2 => Ok((logits.f_unsqueeze(0)?, true)),
        d => Err(shape_error(
            "logits",
            "[B, T, V] or [T, V]",
            format!("{d} dimensions {:?}", logits.size()),
        )),
    }
}

/// Positions per chunk so that chunk × V stays near `elements`.
fn chunk_positions(logits: &Tensor, elements: i64) -> i64 {
    let vocab = logits.size()[2].max(1);
    (elements / vocab).max(1)
}

fn check_chunk(chunk: i64) -> Result<()> {
    if chunk >= 1 {
        Ok(())
    } else {
        Err(Error::Parameter {
            name: "chunk",
            value: chunk as f64,
            range: "[1, inf) positions",
        })
    }
}

/// Tokens as `[B, T]` int64 after checking kind, shape (`expected`, the leading dimensions of
/// the logits or hidden states) and range.
fn checked_tokens(tokens: &Tensor, expected: &[i64], vocab: i64, squeeze: bool) -> Result<Tensor> {
    let token_kind = tokens.f_kind()?;
    if !matches!(token_kind, Kind::Int64 | Kind::Int) {
        return Err(Error::Kind {
            what: "tokens",
            expected: "int64 or int32",
            got: token_kind,
        });
    }
    if tokens.size() != expected {
        return Err(shape_error(
            "tokens",
            format!("{expected:?} (the leading dimensions of the logits or hidden states)"),
            format!("{:?}", tokens.size()),
        ));
    }
    let tokens3 = if squeeze {
        tokens.f_unsqueeze(0)?
    } else {
        tokens.shallow_clone()
    };
    let tokens3 = tokens3.f_to_kind(Kind::Int64)?;
    if tokens3.numel() > 0 {
        // An out-of-range index is a device-side assert on CUDA, which kills the process.
        for bound in [tokens3.f_min()?, tokens3.f_max()?] {
            let token = bound.f_int64_value(&[])?;
            if !(0..vocab).contains(&token) {
                return Err(Error::TokenOutOfRange { token, vocab });
            }
        }
    }
    Ok(tokens3)
}

/// `log softmax(logits)[token]` per position: `logits [B, T, V]`, `tokens [B, T]` (int64 or
/// int32) → `[B, T]`; also `[T, V]`, `[T]` → `[T]`. Chunks of [`DEFAULT_CHUNK_ELEMENTS`].
pub fn token_logprobs(logits: &Tensor, tokens: &Tensor) -> Result<Tensor> {
    let (batched_logits, _) = batched(logits)?;
    let chunk = chunk_positions(&batched_logits, DEFAULT_CHUNK_ELEMENTS);
    token_logprobs_chunked(logits, tokens, chunk)
}

/// [`token_logprobs`] with `chunk` sequence positions per chunk.
pub fn token_logprobs_chunked(logits: &Tensor, tokens: &Tensor, chunk: i64) -> Result<Tensor> {
    check_chunk(chunk)?;
    let (logits3, squeeze) = batched(logits)?;
    let size = logits.size();
    let vocab = size[size.len() - 1];
    let tokens3 = checked_tokens(tokens, &size[..size.len() - 1], vocab, squeeze)?;
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: both pointers are live tensors borrowed for the call, shapes and kinds are checked
    // above ([B, T, V] float logits, [B, T] int64 tokens within 0..V), and `out` is a valid place
    // for the C++ side to store the result.
    let error = unsafe { hone_token_logprobs(logits3.as_ptr(), tokens3.as_ptr(), chunk, &mut out) };
    // SAFETY: `error` and `out` come from the call just made.
    let result = unsafe { take_result(error, out) }?;
    Ok(if squeeze {
        result.f_squeeze_dim(0)?
    } else {
        result
    })
}

/// Entropy of `softmax(logits)` per position: `[B, T, V]` → `[B, T]` (or `[T, V]` → `[T]`), in
/// chunks of [`DEFAULT_CHUNK_ELEMENTS`]. `-inf` logits (filtered tokens) contribute 0.
pub fn token_entropy(logits: &Tensor) -> Result<Tensor> {
    let (batched_logits, _) = batched(logits)?;
    let chunk = chunk_positions(&batched_logits, DEFAULT_CHUNK_ELEMENTS);
    token_entropy_chunked(logits, chunk)
}

/// [`token_entropy`] with `chunk` sequence positions per chunk.
pub fn token_entropy_chunked(logits: &Tensor, chunk: i64) -> Result<Tensor> {
    check_chunk(chunk)?;
    let (logits3, squeeze) = batched(logits)?;
    let size = logits3.size();
    if size[2] == 0 && size[0] * size[1] > 0 {
        return Err(Error::Empty(
            "the entropy of an empty vocabulary (V = 0) is undefined".to_owned(),
        ));
    }
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `logits3` is a live [B, T, V] float tensor borrowed for the call and `out` is a
    // valid place for the C++ side to store the result.
    let error = unsafe { hone_token_entropy(logits3.as_ptr(), chunk, &mut out) };
    // SAFETY: `error` and `out` come from the call just made.
    let result = unsafe { take_result(error, out) }?;
    Ok(if squeeze {
        result.f_squeeze_dim(0)?
    } else {
        result
    })
}

/// [`token_logprobs`] of the logits `hidden @ weight^T` (a bias-free LM head) without ever
/// holding them: `hidden [B, T, H]` (or `[T, H]`), `weight [V, H]` of the same kind, `tokens
/// [B, T]` → `[B, T]`. The forward and the backward make each chunk's logits, use and drop them,
/// so the extra memory is O(chunk × V) plus the gradients of `hidden` and `weight` (the latter
/// accumulated in f32 for half kinds). Chunks of [`DEFAULT_HEAD_CHUNK_ELEMENTS`] logits.
pub fn token_logprobs_from_hidden(
    hidden: &Tensor,
    weight: &Tensor,
    tokens: &Tensor,
) -> Result<Tensor> {
    let vocab = weight.size().first().copied().unwrap_or(0).max(1);
    let chunk = (DEFAULT_HEAD_CHUNK_ELEMENTS / vocab).max(1);
    token_logprobs_from_hidden_chunked(hidden, weight, tokens, chunk)
}

/// [`token_logprobs_from_hidden`] with `chunk` sequence positions per chunk.
pub fn token_logprobs_from_hidden_chunked(
    hidden: &Tensor,
    weight: &Tensor,
    tokens: &Tensor,
    chunk: i64,
) -> Result<Tensor> {
    check_chunk(chunk)?;
    let kind = require_float("hidden", hidden)?;
    let weight_kind = require_float("weight", weight)?;
    if weight_kind != kind {
        return Err(Error::Kind {
            what: "weight",
            expected: "the kind of hidden",
            got: weight_kind,
        });
    }
    let squeeze = match hidden.dim() {
        3 => false,
        2 => true,
        d => {
            return Err(shape_error(
                "hidden",
                "[B, T, H] or [T, H]",
                format!("{d} dimensions {:?}", hidden.size()),
            ));
        }
    };
    let size = hidden.size();
    let width = size[size.len() - 1];
    let weight_size = weight.size();
    if weight_size.len() != 2 || weight_size[1] != width {
        return Err(shape_error(
            "weight",
            format!("[V, {width}] (H of hidden)"),
            format!("{weight_size:?}"),
        ));
    }
    let vocab = weight_size[0];
    let tokens3 = checked_tokens(tokens, &size[..size.len() - 1], vocab, squeeze)?;
    let hidden3 = if squeeze {
        hidden.f_unsqueeze(0)?
    } else {
        hidden.shallow_clone()
    };
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: the three pointers are live tensors borrowed for the call, checked above ([B, T, H]
    // hidden and [V, H] weight of one float kind, [B, T] int64 tokens within 0..V), and `out` is
    // a valid place for the C++ side to store the result.
    let error = unsafe {
        hone_linear_token_logprobs(
            hidden3.as_ptr(),
            weight.as_ptr(),
            tokens3.as_ptr(),
            chunk,
            &mut out,
        )
    };
    // SAFETY: `error` and `out` come from the call just made.
    let result = unsafe { take_result(error, out) }?;
    Ok(if squeeze {
        result.f_squeeze_dim(0)?
    } else {
        result
    })
}
