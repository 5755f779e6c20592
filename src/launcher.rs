//! `hone`: checks that the libtorch (and MuJoCo, with the `mujoco` feature) `hone-core` was
//! built against is still in place, then
//! replaces itself with `hone-core` (same arguments, same process).
//!
//! `hone-core` links libtorch, so when libtorch is gone (a cleared cache, a binary copied to
//! another machine) the dynamic loader refuses to start it with a message that says nothing
//! about the fix. This launcher links no libtorch and can explain.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The program's file name; it sits next to this launcher.
const CORE: &str = "hone-core";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let needed = option_env!("HONE_CORE_LIBRARIES").unwrap_or_default();
    if let Err(message) = check_libraries(needed.split("\\n").filter(|p| !p.is_empty())) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let core = match core_path() {
        Ok(core) => core,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // `exec` only returns on failure.
    let err = Command::new(&core).arg0("hone").args(args).exec();
    eprintln!("error: cannot start {}: {err}", core.display());
    ExitCode::from(2)
}

fn core_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find where this hone binary lives: {e}"))?;
    let core = exe.with_file_name(CORE);
    if core.is_file() {
        Ok(core)
    } else {
        Err(format!(
            "{CORE} is missing next to {}: hone is two binaries, `hone` and `{CORE}`, that \
             live in one folder; build both with `cargo build --release` (or install both)",
            exe.display()
        ))
    }
}

/// Every library in `needed` (absolute paths, in the folders hone-core's rpath names) must be
/// there, or have its file name in a folder of `LD_LIBRARY_PATH` (which the loader searches first).
fn check_libraries<'a>(needed: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let folders: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = needed
        .filter(|path| {
            let path = Path::new(path);
            let elsewhere = |name| folders.iter().any(|folder| folder.join(name).is_file());
            !path.is_file() && !path.file_name().is_some_and(elsewhere)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "a library hone was built against is gone: {} missing.\n\
         hone's cache was removed or moved. Fix: run `bash scripts/setup.sh` in the hone \
         checkout (it installs libtorch 2.11.0 and MuJoCo into $HONE_CACHE, default \
         ~/.cache/hone), then rebuild with `cargo build --release`. Or set LD_LIBRARY_PATH to \
         the folders that hold them.",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("hone-launcher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libc10.so"), b"").unwrap();
        let present = dir.join("libc10.so").display().to_string();
        let absent = dir.join("libtorch_cpu.so").display().to_string();
        let err = check_libraries([absent.as_str(), present.as_str()].into_iter()).unwrap_err();
        assert!(err.contains(&format!("{absent} missing")), "{err}");
        assert!(!err.contains("libc10.so"), "{err}");
        assert!(err.contains("scripts/setup.sh"), "{err}");
        assert!(check_libraries([present.as_str()].into_iter()).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
