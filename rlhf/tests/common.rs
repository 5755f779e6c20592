//! Shared by the tests: the reference Python (transformers), temporary folders, comparisons.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tch::{Kind, Tensor};

/// Set to 1 to skip, with a printed reason, the tests that need Python with transformers.
pub const SKIP_VAR: &str = "HONE_SKIP_PYTHON_TESTS";

/// The Python of hone's environment (HONE_PYTHON, written by scripts/setup.sh into
/// .cargo/config.toml) if it imports transformers. `None` only when SKIP_VAR says to skip;
/// otherwise a missing Python fails the test with the reason.
pub fn reference_python(test: &str) -> Option<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let python = std::env::var("HONE_PYTHON").map_err(|_| {
            "HONE_PYTHON is not set (run scripts/setup.sh, which writes it into .cargo/config.toml)"
                .to_owned()
        })?;
        let out = Command::new(&python)
            .args(["-c", "import transformers, safetensors, torch"])
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{python} cannot import transformers: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PathBuf::from(python))
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED {test}: {why} ({SKIP_VAR}=1)");
            None
        }
        Err(why) => {
            panic!("{test} needs Python with transformers: {why} (set {SKIP_VAR}=1 to skip)")
        }
    }
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join(name)
}

/// Runs `python script args...`, panicking with its output if it fails.
pub fn run_python(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(script("llm_reference.py"))
        .args(args)
        .env("HONE_TEST_THREADS", "1")
        .output()
        .expect("starting the reference Python");
    assert!(
        out.status.success(),
        "llm_reference.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs several llm_reference.py commands in one Python process (one import of transformers).
pub fn run_python_jobs(python: &Path, dir: &Path, jobs: &[Vec<String>]) -> String {
    let path = dir.join("jobs.json");
    std::fs::write(&path, serde_json::to_string(jobs).unwrap()).unwrap();
    run_python(python, &["jobs", path.to_str().unwrap()])
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hone-rlhf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `max |a - b| / max |b|` over the positions where `mask [B, T]` is 1 (logits `[B, T, V]`).
pub fn masked_relative_error(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let keep = mask.ne(0).unsqueeze(-1).expand_as(b);
    let a = a.to_kind(Kind::Double).masked_select(&keep);
    let b = b.to_kind(Kind::Double).masked_select(&keep);
    let diff = (&a - &b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[])
}

pub fn one_thread() {
    tch::set_num_threads(1);
}
