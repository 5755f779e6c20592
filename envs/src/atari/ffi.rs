//! The C functions of `shim.cpp`, a C interface to `ale::ALEInterface` (ALE 0.12.1). Fallible
//! ones return 0 (or a count) on success and -1 on failure, with a NUL-terminated message in
//! `error`; no C++ exception crosses them.

use std::ffi::{c_char, c_int, c_void};

unsafe extern "C" {
    pub(crate) fn hone_ale_new(error: *mut c_char, error_size: usize) -> *mut c_void;
    pub(crate) fn hone_ale_delete(handle: *mut c_void);
    pub(crate) fn hone_ale_set_int(
        handle: *mut c_void,
        key: *const c_char,
        value: c_int,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    #[allow(dead_code)] // no boolean setting is needed yet
    pub(crate) fn hone_ale_set_bool(
        handle: *mut c_void,
        key: *const c_char,
        value: c_int,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_set_float(
        handle: *mut c_void,
        key: *const c_char,
        value: f32,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_load_rom(
        handle: *mut c_void,
        path: *const c_char,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_reset(
        handle: *mut c_void,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_act(
        handle: *mut c_void,
        action: c_int,
        paddle_strength: f32,
        reward: *mut c_int,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_game_over(handle: *const c_void, with_truncation: c_int) -> c_int;
    pub(crate) fn hone_ale_game_truncated(handle: *const c_void) -> c_int;
    pub(crate) fn hone_ale_lives(handle: *mut c_void) -> c_int;
    pub(crate) fn hone_ale_frame_number(handle: *const c_void) -> c_int;
    pub(crate) fn hone_ale_episode_frame_number(handle: *const c_void) -> c_int;
    pub(crate) fn hone_ale_action_set(
        handle: *const c_void,
        minimal: c_int,
        out: *mut c_int,
        capacity: c_int,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_screen_size(
        handle: *const c_void,
        height: *mut c_int,
        width: *mut c_int,
    );
    pub(crate) fn hone_ale_screen(
        handle: *mut c_void,
        rgb: c_int,
        out: *mut u8,
        len: usize,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_clone_state(
        handle: *mut c_void,
        include_rng: c_int,
        data: *mut *const u8,
        len: *mut usize,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
    pub(crate) fn hone_ale_restore_state(
        handle: *mut c_void,
        data: *const u8,
        len: usize,
        error: *mut c_char,
        error_size: usize,
    ) -> c_int;
}
