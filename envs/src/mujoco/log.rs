//! MuJoCo's log, captured: its warnings (an unstable simulation, an mjData too large to make) go
//! to [`take_log`] and to the error of the call that caused them, not to the console and a
//! `MUJOCO_LOG.TXT` in the working folder. hone installs one global handler with
//! `mju_setLogHandler` (MuJoCo 3.11.0 include/mujoco/mujoco.h:998; shim.c forwards to [`sink`])
//! before its first MuJoCo call; it also receives the messages of other MuJoCo users in the same
//! process (the `mujoco` Python package forwards non-errors to the global handler).
//!
//! Errors stay fatal. MuJoCo's contract is that an error handler never returns
//! (doc/programming/simulation.rst, "Errors, warnings, logging"), and the only ways out, longjmp or
//! unwinding, would cross Rust frames, so the handler records and prints the error, then ends the
//! process as MuJoCo's own handler does. hone keeps its errors out of reach instead: sizes are
//! checked before MuJoCo allocates (`Model::data_bytes`, the pool's memory check), and NULL
//! returns (`mj_loadXML`, `mj_makeData`) are Rust errors carrying the logged warning.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_int};
use std::io::Write;
use std::sync::{Mutex, Once};

use super::ffi;

/// Messages [`take_log`] keeps; older ones are dropped.
const CAPACITY: usize = 256;
/// `mjLOG_ERROR` of `mjtLogLevel` (include/mujoco/mjtype.h).
const LEVEL_ERROR: c_int = 3;

static LOG: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

thread_local! {
    /// The last message MuJoCo logged on this thread, for the error of the call that caused it.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs hone's log handler (once per process); called before any other MuJoCo call.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    // SAFETY: `sink` has the C signature shim.c calls, lives as long as the program and never
    // unwinds.
    INSTALL.call_once(|| unsafe { ffi::hone_mj_install_log_handler(sink) });
}

/// The messages MuJoCo logged since the last call (at most the latest 256), oldest first, each as
/// `LEVEL: function: text` (`WARNING: mj_makeRawData: Invalid data: ...`).
pub fn take_log() -> Vec<String> {
    let mut log = LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    log.drain(..).collect()
}

/// Clears this thread's last logged message; [`last_on_this_thread`] then returns what MuJoCo
/// logs from here on.
pub(crate) fn clear_last_on_this_thread() {
    let _ = LAST.try_with(|last| last.borrow_mut().take());
}

/// The last message MuJoCo logged on this thread since [`clear_last_on_this_thread`].
pub(crate) fn last_on_this_thread() -> Option<String> {
    LAST.try_with(|last| last.borrow_mut().take())
        .ok()
        .flatten()
}

fn level_name(level: c_int) -> &'static str {
    match level {
        0 => "DEBUG",
        1 => "INFO",
        2 => "WARNING",
        _ => "ERROR",
    }
}

/// Called by MuJoCo, on any thread, with the message's level and its NUL-terminated text. It must
/// not unwind into C: nothing here is expected to panic, and a panic is caught and dropped.
extern "C" fn sink(level: c_int, text: *const c_char) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: shim.c passes a NUL-terminated buffer that lives for this call.
        let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
        let message = format!("{}: {text}", level_name(level));
        if level >= LEVEL_ERROR {
            let _ = writeln!(
                std::io::stderr(),
                "hone-envs: MuJoCo {message} (MuJoCo errors end the process)"
            );
        }
        let _ = LAST.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                *last = Some(message.clone());
            }
        });
        let mut log = LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() == CAPACITY {
            log.pop_front();
        }
        log.push_back(message);
    });
}
