//! Fuzzing entry points: each takes arbitrary bytes as the contents of one file a user or a
//! crash can hand hone, and runs the code that reads that file, then what follows on success.
//! An error is the expected answer to bad bytes; a panic, an abort, a hang or an allocation
//! beyond what the input justifies is a bug. Each returns whether the file went all the way
//! through (a seed must; the drivers report how many mutants do). Two drivers call them: the proptest suite
//! (`tests/fuzz.rs`, byte mutations of the seeds in `fuzz/corpus/`, part of every test run)
//! and the cargo-fuzz targets of `fuzz/` (`scripts/fuzz.sh`).

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::ppo::{Ppo, PpoConfig};
use crate::run_dir::RunDir;

/// A run config file (`hone train --config`): resolved over the defaults, then validated.
pub fn ppo_config(bytes: &[u8]) -> bool {
    let path = scratch_file("ppo_config", "run.toml", bytes);
    crate::config::resolve(&PpoConfig::default(), Some(&path), &[])
        .is_ok_and(|config: PpoConfig| config.validate().is_ok())
}

/// A run's `metrics.jsonl`: read whole (as `hone monitor` replays it) and cut back for a
/// resume (as `hone train --resume` does).
pub fn metrics(bytes: &[u8]) -> bool {
    let dir = scratch_dir("metrics");
    write(&dir.join("config.toml"), b"");
    let run = RunDir::open(&dir).expect("the scratch folder has a config.toml");
    let path = run.metrics_path();
    write(&path, bytes);
    let read = hone_telemetry::read_events(&path).is_ok();
    run.truncate_metrics(Some(2048)).is_ok() && read
}

/// A checkpoint's `state.json`, loaded with valid weights (as `--resume` and `hone eval` do).
pub fn ppo_state(bytes: &[u8]) -> bool {
    ppo_checkpoint_with("state.json", bytes)
}

/// A checkpoint's `model.safetensors`, loaded with a valid state (as `--resume` and `hone
/// eval` do).
pub fn ppo_weights(bytes: &[u8]) -> bool {
    ppo_checkpoint_with("model.safetensors", bytes)
}

/// The config of the checkpoint the `ppo_*` entries corrupt: CartPole-v1, 4 envs, 8 steps.
pub fn ppo_fixture_config() -> PpoConfig {
    PpoConfig {
        num_envs: 4,
        num_steps: 8,
        num_minibatches: 2,
        torch_threads: 1,
        env_threads: 1,
        device: "cpu".into(),
        ..PpoConfig::default()
    }
}

/// The valid checkpoint of [`ppo_fixture_config`], saved once a process.
pub fn ppo_fixture() -> &'static PathBuf {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = scratch_dir("ppo-fixture");
        let ppo = Ppo::new(ppo_fixture_config()).expect("the fixture config is valid");
        ppo.save(&dir).expect("the fixture checkpoint saves");
        dir
    })
}

fn ppo_checkpoint_with(file: &str, bytes: &[u8]) -> bool {
    let dir = scratch_dir(&format!("ppo-{file}"));
    for entry in std::fs::read_dir(ppo_fixture()).expect("the fixture is readable") {
        let entry = entry.expect("the fixture is readable");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("scratch is writable");
    }
    write(&dir.join(file), bytes);
    Ppo::load(ppo_fixture_config(), &dir).is_ok()
}

/// This process's scratch folder for one entry point (created on first use).
pub fn scratch_dir(entry: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let digits: String = thread.chars().filter(char::is_ascii_digit).collect();
    let dir =
        std::env::temp_dir().join(format!("hone-fuzz-{}-{digits}/{entry}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
    dir
}

/// `bytes` written as `name` in the scratch folder of `entry`.
pub fn scratch_file(entry: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir(entry).join(name);
    write(&path, bytes);
    path
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("the temporary folder is writable");
}
