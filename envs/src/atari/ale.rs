//! [`Ale`]: one Atari 2600 emulator (ALE's `ALEInterface`) behind the C++ shim, with a ROM loaded.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::ffi;
use crate::error::{Error, Result};

/// ALE's joystick actions, `PLAYER_A_NOOP` (0) to `PLAYER_A_DOWNLEFTFIRE` (17)
/// (src/ale/common/Constants.h, ALE 0.12.1).
pub const NUM_ACTIONS: i32 = 18;
/// `PLAYER_A_NOOP` and `PLAYER_A_FIRE`.
pub const NOOP: i32 = 0;
pub const FIRE: i32 = 1;

/// The ALE settings hone sets before a ROM loads. The defaults are ALE's own
/// (src/ale/emucore/Settings.cxx:396-417) but for the seed: 0, where ALE's -1 seeds from the clock.
/// `frame_skip` is always 1: hone skips frames itself.
#[derive(Clone, Debug, PartialEq)]
pub struct AleOptions {
    /// `random_seed` of the environment's RNG (sticky actions, and the reset's random no-ops
    /// of some games); at least 0.
    pub seed: i32,
    /// `repeat_action_probability`: the chance that a frame repeats the previous action, in [0, 1].
    pub repeat_action_probability: f32,
    /// `max_num_frames_per_episode`: truncates an episode after this many frames; 0 = never.
    pub max_num_frames_per_episode: i32,
}

impl Default for AleOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            repeat_action_probability: 0.25,
            max_num_frames_per_episode: 0,
        }
    }
}

/// An error message written by the shim.
struct ErrorBuffer([c_char; 512]);

impl ErrorBuffer {
    fn new() -> Self {
        Self([0; 512])
    }

    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    /// `Ok(status)` for a status of 0 or more, else the shim's message as an error.
    fn check(&self, status: c_int, what: &str) -> Result<c_int> {
        if status >= 0 {
            Ok(status)
        } else {
            Err(self.error(what))
        }
    }

    fn error(&self, what: &str) -> Error {
        let bytes: Vec<u8> = self.0.iter().map(|&c| c as u8).collect();
        let message = CStr::from_bytes_until_nul(&bytes)
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        Error::Ale(format!("{what}: {message}"))
    }
}

/// One Atari 2600 emulator with a ROM loaded: ALE's raw interface (no frame skip, no
/// preprocessing). `Send`, so each env can own one on a worker thread; not `Sync`.
pub struct Ale {
    /// Owned `HoneAle*` of shim.cpp, with a ROM loaded; deleted on drop.
    handle: NonNull<c_void>,
    rom: PathBuf,
    minimal_actions: Vec<i32>,
    legal_actions: Vec<i32>,
    height: usize,
    width: usize,
}

// SAFETY: the handle is owned by this value alone and ALE keeps no per-instance state in globals
// (the logger's level, set once under std::call_once, and the read-only ROM table are shared), so
// it may move to another thread. `&Ale` is not shared across threads (no `Sync`): the shim's
// queries through `&self` touch the instance's C++ objects.
unsafe impl Send for Ale {}

impl Drop for Ale {
    fn drop(&mut self) {
        // SAFETY: the handle came from hone_ale_new and is deleted once.
        unsafe { ffi::hone_ale_delete(self.handle.as_ptr()) }
    }
}

impl Ale {
    /// Loads the ROM at `rom` with `options`. A missing file is [`Error::RomMissing`]; a file that
    /// is not one of ALE's games, or bad options, are [`Error::Ale`].
    pub fn new(rom: &Path, options: &AleOptions) -> Result<Self> {
        if !rom.is_file() {
            return Err(Error::RomMissing {
                game: rom
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: rom.display().to_string(),
            });
        }
        check_options(options)?;
        let rom_c = CString::new(rom.as_os_str().as_bytes())
            .map_err(|_| Error::Ale(format!("ROM path {} holds a NUL byte", rom.display())))?;

        let mut error = ErrorBuffer::new();
        // SAFETY: the buffer is writable for its length.
        let raw = unsafe { ffi::hone_ale_new(error.ptr(), error.0.len()) };
        let Some(handle) = NonNull::new(raw) else {
            return Err(error.error("creating an ALE instance"));
        };
        // From here on, Drop deletes the handle on every error path.
        let mut ale = Self {
            handle,
            rom: rom.to_path_buf(),
            minimal_actions: Vec::new(),
            legal_actions: Vec::new(),
            height: 0,
            width: 0,
        };
        ale.set_int("random_seed", options.seed)?;
        ale.set_float(
            "repeat_action_probability",
            options.repeat_action_probability,
        )?;
        ale.set_int("frame_skip", 1)?;
        ale.set_int(
            "max_num_frames_per_episode",
            options.max_num_frames_per_episode,
        )?;
        // SAFETY: a live handle and a NUL-terminated path.
        let status = unsafe {
            ffi::hone_ale_load_rom(
                ale.handle.as_ptr(),
                rom_c.as_ptr(),
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, "loading the ROM")?;

        ale.minimal_actions = ale.action_set(true)?;
        ale.legal_actions = ale.action_set(false)?;
        let (mut height, mut width) = (0, 0);
        // SAFETY: a live handle with a ROM loaded; two writable ints.
        unsafe { ffi::hone_ale_screen_size(ale.handle.as_ptr(), &mut height, &mut width) };
        ale.height = usize::try_from(height).unwrap_or(0);
        ale.width = usize::try_from(width).unwrap_or(0);
        Ok(ale)
    }

    /// The ROM this emulator runs.
    pub fn rom(&self) -> &Path {
        &self.rom
    }

    fn set_int(&mut self, key: &str, value: i32) -> Result<()> {
        let key_c = CString::new(key).expect("setting names have no NUL");
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle, a NUL-terminated key, a writable buffer.
        let status = unsafe {
            ffi::hone_ale_set_int(
                self.handle.as_ptr(),
                key_c.as_ptr(),
                value,
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, key).map(drop)
    }

    fn set_float(&mut self, key: &str, value: f32) -> Result<()> {
        let key_c = CString::new(key).expect("setting names have no NUL");
        let mut error = ErrorBuffer::new();
        // SAFETY: as in set_int.
        let status = unsafe {
            ffi::hone_ale_set_float(
                self.handle.as_ptr(),
                key_c.as_ptr(),
                value,
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, key).map(drop)
    }

    fn action_set(&self, minimal: bool) -> Result<Vec<i32>> {
        let mut actions = vec![0; NUM_ACTIONS as usize];
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle; `actions` holds `capacity` ints.
        let count = unsafe {
            ffi::hone_ale_action_set(
                self.handle.as_ptr(),
                c_int::from(minimal),
                actions.as_mut_ptr(),
                NUM_ACTIONS,
                error.ptr(),
                error.0.len(),
            )
        };
        let count = error.check(count, "reading the action set")? as usize;
        if count > actions.len() {
            return Err(Error::Ale(format!(
                "the ROM reports {count} actions, more than ALE's {NUM_ACTIONS}"
            )));
        }
        actions.truncate(count);
        Ok(actions)
    }

    /// Resets the game (ALE's `reset_game`: a console reset and the ROM's start-up actions).
    pub fn reset(&mut self) -> Result<()> {
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle and a writable buffer.
        let status =
            unsafe { ffi::hone_ale_reset(self.handle.as_ptr(), error.ptr(), error.0.len()) };
        error.check(status, "reset").map(drop)
    }

    /// Emulates one frame with `action` (one of ALE's 18, `0..NUM_ACTIONS`; actions the game does
    /// not use act as NOOP) and returns the frame's reward. Outside `0..18` is an error.
    pub fn act(&mut self, action: i32) -> Result<i32> {
        let mut reward = 0;
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle, a writable reward and buffer. The shim rejects actions outside
        // 0..18, on which ALE would exit the process.
        let status = unsafe {
            ffi::hone_ale_act(
                self.handle.as_ptr(),
                action,
                1.0,
                &mut reward,
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, "act")?;
        Ok(reward)
    }

    /// Whether the episode is over: the game ended, or (`with_truncation`) it was truncated by
    /// `max_num_frames_per_episode`.
    pub fn game_over(&self, with_truncation: bool) -> bool {
        // SAFETY: a live handle with a ROM loaded.
        unsafe { ffi::hone_ale_game_over(self.handle.as_ptr(), c_int::from(with_truncation)) != 0 }
    }

    /// Whether the episode was truncated by `max_num_frames_per_episode`.
    pub fn game_truncated(&self) -> bool {
        // SAFETY: a live handle with a ROM loaded.
        unsafe { ffi::hone_ale_game_truncated(self.handle.as_ptr()) != 0 }
    }

    /// The lives left, as the ROM reports them (0 for games without lives).
    pub fn lives(&self) -> i32 {
        // SAFETY: a live handle with a ROM loaded (lives() only reads).
        unsafe { ffi::hone_ale_lives(self.handle.as_ptr()) }
    }

    /// Frames emulated since the ROM loaded (resets included).
    pub fn frame_number(&self) -> i32 {
        // SAFETY: a live handle with a ROM loaded.
        unsafe { ffi::hone_ale_frame_number(self.handle.as_ptr()) }
    }

    /// Frames emulated since the last reset.
    pub fn episode_frame_number(&self) -> i32 {
        // SAFETY: a live handle with a ROM loaded.
        unsafe { ffi::hone_ale_episode_frame_number(self.handle.as_ptr()) }
    }

    /// The game's minimal action set (ALE action numbers), e.g. 6 for Pong.
    pub fn minimal_action_set(&self) -> &[i32] {
        &self.minimal_actions
    }

    /// All 18 actions (the full action space).
    pub fn legal_action_set(&self) -> &[i32] {
        &self.legal_actions
    }

    /// `(height, width)` of the screen: 210×160 for every game.
    pub fn screen_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Writes the grayscale screen (`height * width` bytes, row-major) into `out`.
    pub fn screen_grayscale(&self, out: &mut [u8]) -> Result<()> {
        self.screen(false, out)
    }

    /// Writes the RGB screen (`height * width * 3` bytes, row-major, channels last) into `out`.
    pub fn screen_rgb(&self, out: &mut [u8]) -> Result<()> {
        self.screen(true, out)
    }

    fn screen(&self, rgb: bool, out: &mut [u8]) -> Result<()> {
        let expected = self.height * self.width * if rgb { 3 } else { 1 };
        if out.len() != expected {
            return Err(Error::Ale(format!(
                "the {} screen is {expected} bytes ({}x{}{}), the buffer {}",
                if rgb { "RGB" } else { "grayscale" },
                self.height,
                self.width,
                if rgb { "x3" } else { "" },
                out.len()
            )));
        }
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle; `out` is writable for `len` bytes, the size the shim checks.
        let status = unsafe {
            ffi::hone_ale_screen(
                self.handle.as_ptr(),
                c_int::from(rgb),
                out.as_mut_ptr(),
                out.len(),
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, "reading the screen").map(drop)
    }

    /// The emulator's state as bytes (ALE's `cloneState(include_rng).serialize()`). With the RNG,
    /// [`restore_state`](Self::restore_state) continues bit-identically, sticky actions included.
    pub fn clone_state(&self, include_rng: bool) -> Result<Vec<u8>> {
        let mut data = std::ptr::null();
        let mut len = 0;
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle; on success `data` points at `len` bytes owned by the handle,
        // valid until the next clone, and copied out at once.
        let status = unsafe {
            ffi::hone_ale_clone_state(
                self.handle.as_ptr(),
                c_int::from(include_rng),
                &mut data,
                &mut len,
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, "cloning the state")?;
        if len == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: see above; `data` is non-null for a non-empty string.
        Ok(unsafe { std::slice::from_raw_parts(data, len) }.to_vec())
    }

    /// Restores a state from [`clone_state`](Self::clone_state) of the same game. Bytes not framed
    /// as ALE frames a state, or from another game, are an error and leave the emulator as it was;
    /// the emulator's part inside is trusted (a checkpoint should carry its own checksum).
    pub fn restore_state(&mut self, state: &[u8]) -> Result<()> {
        let mut error = ErrorBuffer::new();
        // SAFETY: a live handle; `state` is readable for its length.
        let status = unsafe {
            ffi::hone_ale_restore_state(
                self.handle.as_ptr(),
                state.as_ptr(),
                state.len(),
                error.ptr(),
                error.0.len(),
            )
        };
        error.check(status, "restoring the state").map(drop)
    }
}

fn check_options(options: &AleOptions) -> Result<()> {
    if options.seed < 0 {
        return Err(Error::Ale(format!(
            "random_seed is {}; it must be 0 or more",
            options.seed
        )));
    }
    let p = options.repeat_action_probability;
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::Ale(format!(
            "repeat_action_probability is {p}; it must be in [0, 1]"
        )));
    }
    if options.max_num_frames_per_episode < 0 {
        return Err(Error::Ale(format!(
            "max_num_frames_per_episode is {}; it must be 0 (no limit) or more",
            options.max_num_frames_per_episode
        )));
    }
    Ok(())
}
