use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{hone, stderr, stdout};

fn runs_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hone-e2e-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The update events of a run: update, step, losses and episode statistics — everything but
/// timings, which differ between runs.
fn learning_record(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .filter(|l| l.contains("\"event\":\"update\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {} {} {}",
                v["update"], v["global_step"], v["losses"], v["episodes"]
            )
        })
        .collect()
}

const SMALL: [&str; 10] = [
    "--set",
    "num_envs=4",
    "--set",
    "num_steps=32",
    "--set",
    "checkpoint_every=5",
    "--set",
    "env_threads=1",
    "--total-steps",
    "25600",
];

#[test]
fn ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run() {
    let dir = runs_dir("resume");
    let dir_s = dir.to_str().unwrap();
    let mut args = vec![
        "train",
        "--env",
        "CartPole-v1",
        "--runs-dir",
        dir_s,
        "--eval-episodes",
        "0",
    ];
    args.extend(SMALL);

    let whole = hone(&[&args[..], &["--name", "whole"]].concat());
    assert!(whole.status.success(), "{}", stderr(&whole));

    // The same run, interrupted by Ctrl-C once it has written a checkpoint, then resumed.
    let child = Command::new(env!("CARGO_BIN_EXE_hone"))
        .args([&args[..], &["--name", "cut"]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.join("cut/metrics.jsonl");
    let start = Instant::now();
    while !std::fs::read_to_string(&metrics)
        .unwrap_or_default()
        .contains("\"event\":\"checkpoint\"")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint within a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("\"reason\":\"interrupted\""),
        "the interrupted run ends with: {last}"
    );
    let cut_updates = learning_record(&dir.join("cut")).len();
    let whole_record = learning_record(&dir.join("whole"));
    assert!(
        cut_updates < whole_record.len(),
        "Ctrl-C came too late to interrupt anything"
    );

    let resumed = hone(&[
        "train",
        "--resume",
        dir.join("cut").to_str().unwrap(),
        "--eval-episodes",
        "0",
    ]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(learning_record(&dir.join("cut")), whole_record);
}

/// While a run trains, a second `hone train --resume` of it is refused with the holder's pid
/// (the two used to interleave checkpoints); then a double Ctrl-C in the middle of libtorch work
/// exits at once with 130, without the panic that `exit` racing libtorch's teardown gave.
#[test]
fn a_live_run_is_locked_and_a_second_ctrl_c_exits_cleanly() {
    let dir = runs_dir("lock");
    let heavy = [
        "train",
        "--env",
        "CartPole-v1",
        "--no-tui",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "live",
        "--set",
        "num_envs=64",
        "--set",
        "num_steps=512",
        "--set",
        "update_epochs=50",
        "--set",
        "num_minibatches=64",
        "--total-steps",
        "100000000",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_hone"))
        .args(heavy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.join("live/metrics.jsonl");
    let start = Instant::now();
    while !std::fs::read_to_string(&metrics)
        .unwrap_or_default()
        .contains("\"event\":\"start\"")
    {
        assert!(start.elapsed() < Duration::from_secs(60), "no start event");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = hone(&["train", "--resume", dir.join("live").to_str().unwrap()]);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains(&format!("is being written by process {}", child.id())),
        "{err}"
    );
    // Inside the first update's libtorch work by now.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..2 {
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted again") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn eval_runs_the_saved_policy() {
    let dir = runs_dir("eval");
    let mut args = vec![
        "train",
        "--env",
        "Pendulum-v1",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "p",
    ];
    args.extend([
        "--set",
        "num_steps=64",
        "--total-steps",
        "128",
        "--eval-episodes",
        "0",
    ]);
    let output = hone(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let eval = hone(&["eval", dir.join("p").to_str().unwrap(), "--episodes", "3"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let text = stdout(&eval);
    assert!(
        text.contains("evaluation: mean return -") && text.contains("over 3 episodes"),
        "{text}"
    );
    // 200 steps of Pendulum cost at most 16.27 each.
    let mean: f64 = text
        .split("mean return ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((-3300.0..0.0).contains(&mean), "{text}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = runs_dir("errors");
    let d = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["train", "--env", "CartPoel-v1", "--runs-dir", d],
            "unknown task id `CartPoel-v1`; known ids: Acrobot-v1, CartPole-v1",
        ),
        (
            &[
                "train",
                "--env",
                "CartPole-v1",
                "--runs-dir",
                d,
                "--set",
                "learnig_rate=1",
            ],
            "unknown field `learnig_rate`",
        ),
        (
            &[
                "train",
                "--env",
                "CartPole-v1",
                "--runs-dir",
                d,
                "--set",
                "num_envs=many",
            ],
            "num_envs",
        ),
        (
            &[
                "train",
                "--env",
                "CartPole-v1",
                "--runs-dir",
                d,
                "--device",
                "tpu",
            ],
            "unknown device `tpu`",
        ),
        (&["train", "--resume", d], "is not a hone run directory"),
    ];
    for (args, message) in cases {
        let output = hone(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// Sizes beyond the machine are clear errors naming the setting, before anything large is
/// allocated (they used to panic on an overflowing product, abort in the allocator, or spawn
/// thousands of threads).
#[test]
fn sizes_beyond_the_machine_are_clear_errors() {
    let dir = runs_dir("sizes");
    let d = dir.to_str().unwrap();
    let train = ["train", "--env", "CartPole-v1", "--no-tui", "--runs-dir", d];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--set", "num_envs=144115188075855872"],
            "num_envs × num_steps = 144115188075855872 × 128 overflows",
        ),
        (
            &[
                "--set",
                "num_steps=100000000000",
                "--total-steps",
                "1000000000000",
            ],
            "a rollout of num_steps × num_envs = 100000000000 × 4 needs about",
        ),
        (
            &[
                "--set",
                "num_envs=10000000",
                "--total-steps",
                "100000000000",
            ],
            "a rollout of num_steps × num_envs = 128 × 10000000 needs about",
        ),
        (
            &["--set", "torch_threads=100000"],
            "torch_threads = 100000 exceeds this machine's",
        ),
    ];
    for (extra, message) in cases {
        let args = [&train[..], extra].concat();
        let output = hone(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// The size checks under an address-space limit (`ulimit -v`, about 2.3 GiB above the 2.7 GiB the
/// binary maps at start: libtorch and the CUDA libraries its wheel brings): a rollout that fits
/// the machine but not the limit is a clear error naming the limit, not an abort in the
/// allocator (the checks used to read only the machine's MemAvailable).
#[test]
fn sizes_beyond_a_memory_limit_are_clear_errors() {
    let dir = runs_dir("ulimit");
    // 1100 × 16384 rows of CartPole, about 3.2 GB with their tensor copies.
    let needs_kib = 1100 * 16384 * 180 / 1024;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let available_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 5242880 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_hone"))
        .args(["train", "--env", "CartPole-v1", "--no-tui"])
        .args(["--runs-dir", dir.to_str().unwrap()])
        .args(["--set", "num_envs=16384", "--set", "num_steps=1100"])
        .args(["--total-steps", "100000000"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a rollout of num_steps × num_envs = 1100 × 16384 needs about"),
        "{err}"
    );
    // Where the machine itself has the room, the limit is what the error names.
    if available_kib > needs_kib {
        assert!(err.contains("address-space limit (ulimit -v)"), "{err}");
    }
}

/// Trains with `args` and returns the mean return of the final evaluation it prints.
fn train_and_evaluate(args: &[&str]) -> f64 {
    let output = hone(args);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    text.split("evaluation: mean return ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|mean| mean.parse().ok())
        .unwrap_or_else(|| panic!("no evaluation line in:\n{text}"))
}

/// The bar for CI: CleanRL's ppo.py settings solve CartPole-v1 within 500k steps.
#[test]
fn ppo_solves_cartpole_with_cleanrl_defaults() {
    let dir = runs_dir("cartpole");
    let mean = train_and_evaluate(&[
        "train",
        "--env",
        "CartPole-v1",
        "--seed",
        "1",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "c",
        "--eval-episodes",
        "20",
    ]);
    assert!(mean >= 475.0, "mean return {mean} over 20 episodes");
}

/// The shipped fast config solves CartPole-v1 (its speed is a benchmark, not asserted here).
#[test]
fn fast_cartpole_config_solves_cartpole() {
    let dir = runs_dir("fast");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/ppo_cartpole_fast.toml"
    );
    let mean = train_and_evaluate(&[
        "train",
        "--config",
        config,
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "f",
        "--eval-episodes",
        "20",
    ]);
    assert!(mean >= 475.0, "mean return {mean} over 20 episodes");
}

/// kill -9 at pseudo-random moments of a run that checkpoints after every update (most of its
/// time is spent writing checkpoints), 20 times: afterwards the latest and the best checkpoint
/// load (`hone eval`) and `--resume` finishes the run; a run killed before it wrote its config
/// is started again under its name.
#[test]
fn a_run_killed_at_any_moment_keeps_a_loadable_checkpoint_and_resumes() {
    let dir = runs_dir("kill9");
    let dir_s = dir.to_str().unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut killed_with_checkpoints, mut killed_mid_write, mut killed_before_config) = (0, 0, 0);
    for trial in 0..20 {
        let name = format!("k{trial}");
        let run = dir.join(&name);
        let run_args = [
            "train",
            "--env",
            "CartPole-v1",
            "--no-tui",
            "--runs-dir",
            dir_s,
            "--name",
            &name,
            "--eval-episodes",
            "0",
            "--set",
            "num_envs=4",
            "--set",
            "num_steps=16",
            "--set",
            "checkpoint_every=1",
            "--set",
            "keep_checkpoints=2",
            "--set",
            "torch_threads=1",
            "--set",
            "env_threads=1",
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_hone"))
            .args(run_args)
            .args(["--total-steps", "100000000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // 0.3 to 1.0 s: the binary starts in about 0.35 s, then checkpoints every few ms; the
        // first four trials 5 to 155 ms, around the start (no folder yet, no config yet).
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let (from, span) = if trial < 4 { (5, 150) } else { (300, 700) };
        std::thread::sleep(Duration::from_millis(from + (state >> 33) % span));
        child.kill().unwrap();
        child.wait().unwrap();

        let steps: Vec<u64> = std::fs::read_dir(run.join("checkpoints"))
            .map(|entries| {
                entries
                    .filter_map(|e| {
                        e.ok()?
                            .file_name()
                            .to_str()?
                            .strip_prefix("step-")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let latest = steps.iter().copied().max();
        let leftovers = std::fs::read_dir(run.join("checkpoints")).map_or(0, |entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().starts_with('.'))
                })
                .count()
        });
        killed_mid_write += usize::from(leftovers > 0);
        if latest.is_some() {
            killed_with_checkpoints += 1;
            let run_s = run.to_str().unwrap();
            // `best` exists once a checkpoint had a score (finished episodes).
            let best = run.join("checkpoints/best").exists();
            for which in ["latest", "best"].into_iter().take(1 + usize::from(best)) {
                let eval = hone(&["eval", run_s, "--episodes", "1", "--checkpoint", which]);
                assert!(
                    eval.status.success(),
                    "trial {trial}: the {which} checkpoint does not load: {}",
                    stderr(&eval)
                );
            }
        }
        // One more update than the checkpoint holds (a run killed before its first starts over).
        let total = (latest.unwrap_or(0) + 64).to_string();
        if !run.join("config.toml").exists() {
            // Killed before the run wrote its config: nothing to resume, the name is free again.
            if run.exists() {
                let resumed = hone(&["train", "--resume", run.to_str().unwrap()]);
                assert!(
                    stderr(&resumed).contains("start it again with the same --name"),
                    "trial {trial}: {}",
                    stderr(&resumed)
                );
            }
            let again = hone(&[&run_args[..], &["--total-steps", &total]].concat());
            assert!(again.status.success(), "trial {trial}: {}", stderr(&again));
            killed_before_config += 1;
            continue;
        }
        let resumed = hone(&[
            "train",
            "--resume",
            run.to_str().unwrap(),
            "--total-steps",
            &total,
            "--eval-episodes",
            "0",
            "--no-tui",
        ]);
        assert!(
            resumed.status.success(),
            "trial {trial} (latest checkpoint {latest:?}): resume failed: {}",
            stderr(&resumed)
        );
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        assert!(
            metrics
                .lines()
                .last()
                .unwrap()
                .contains("\"event\":\"finish\""),
            "trial {trial}: the resumed run did not finish"
        );
    }
    println!(
        "20 runs killed: {killed_with_checkpoints} after their first checkpoint, \
         {killed_mid_write} in the middle of writing one, {killed_before_config} before their \
         config"
    );
    assert!(
        killed_with_checkpoints >= 10,
        "only {killed_with_checkpoints} of 20 runs were killed after their first checkpoint"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
