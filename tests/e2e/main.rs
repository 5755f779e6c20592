//! End-to-end tests of the `hone` binary (one test binary; one module per command).

mod cli;
mod dashboard;
mod doctor;
mod llm;
mod rlhf;
mod rlhf_demo;
mod train;

use std::process::{Command, Output};

/// The `hone` binary under test, started from `/tmp` with no `LD_LIBRARY_PATH`, as a user in a
/// new shell would: it must find libtorch by itself.
pub fn hone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hone"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("failed to start the hone binary")
}

/// `hone rlhf task sort --count <count>` written to `path`, which it returns.
pub fn sort_task(path: &std::path::Path, count: usize) -> std::path::PathBuf {
    let count = count.to_string();
    let out = hone(&[
        "rlhf",
        "task",
        "sort",
        "--out",
        path.to_str().unwrap(),
        "--count",
        &count,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    path.to_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
