//! The dashboard end to end: the real `hone train` and `hone monitor` in a pseudo-terminal
//! (tmux), read from the screen and driven with keys.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{hone, stderr, stdout};

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(test: &str, command: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        if !version.is_ok_and(|o| o.status.success()) {
            panic!(
                "tmux not found: the dashboard tests run `hone` in a tmux pseudo-terminal; \
                 install it (Debian/Ubuntu package `tmux`)"
            );
        }
        let tmux = Tmux {
            socket: format!("hone-e2e-{}-{test}", std::process::id()),
        };
        // The shell stays after hone exits, so its exit code can be read from the screen.
        let shell = format!("{command}; echo hone-exited-$?; sleep 120");
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            "-s",
            "e2e",
            "env",
            "-u",
            "LD_LIBRARY_PATH",
            "TERM=xterm-256color",
            "sh",
            "-c",
            &shell,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    /// Whether the pane shows the alternate screen (the dashboard holds it).
    fn alternate_screen(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    /// Polls the screen until `found` returns something, or fails after `within`.
    fn wait_for<T>(&self, what: &str, within: Duration, found: impl Fn(&str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if let Some(value) = found(&screen) {
                return value;
            }
            assert!(
                start.elapsed() < within,
                "no {what} on screen within {within:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// `q`, then `y` to the question: hone stops, exits 0 and restores the terminal. Returns
    /// the last screen.
    fn quit_with_yes(&self, within: Duration) -> String {
        self.keys(&["q"]);
        self.wait_for("the quit question", within, |s| {
            s.contains("Stop training?").then_some(())
        });
        self.keys(&["y"]);
        let screen = self.wait_for("hone exiting", within, |s| {
            s.contains("hone-exited-").then(|| s.to_owned())
        });
        assert!(screen.contains("hone-exited-0"), "{screen}");
        assert!(!self.alternate_screen(), "the terminal is restored");
        screen
    }

    /// Waits for a screen that shows every one of `texts` (a frame can be caught half drawn).
    fn wait_for_all(&self, texts: &[&str], within: Duration) -> String {
        self.wait_for(&format!("{texts:?}"), within, |s| {
            texts.iter().all(|t| s.contains(t)).then(|| s.to_owned())
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.run(&["display-message", "-p", "#{socket_path}"]);
        let _ = self.run(&["kill-server"]);
        // The server can leave its socket file behind when killed.
        let path = String::from_utf8_lossy(&socket.stdout).trim().to_owned();
        if !path.is_empty() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn runs_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hone-e2e-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The step count of the header's gauge ("12.3%  61,440 / 500,000 steps").
fn gauge_step(screen: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains(" steps  ETA"))?;
    let before = line.split(" / ").next()?;
    let number = before.split_whitespace().last()?;
    number.replace(',', "").parse().ok()
}

/// The SPS row of the throughput panel: its three figures (now, 10 s, 60 s).
fn sps_row(screen: &str) -> Option<Vec<String>> {
    let line = screen.lines().find(|l| l.contains("││SPS "))?;
    let cells: Vec<String> = line
        .split("││SPS")
        .nth(1)?
        .split('│')
        .next()?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (cells.len() == 3 && cells.iter().all(|c| c != "-")).then_some(cells)
}

fn hone_command(args: &[&str]) -> String {
    let mut command = format!("'{}'", env!("CARGO_BIN_EXE_hone"));
    for arg in args {
        command.push_str(&format!(" '{arg}'"));
    }
    command
}

fn last_event(run: &Path) -> String {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines().last().unwrap_or_default().to_owned()
}

fn checkpoints(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("step-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A CartPole run far too long to finish during the test, with no scheduled checkpoints, so
/// every checkpoint found afterwards was asked for.
fn live_run(dir: &Path) -> String {
    hone_command(&[
        "train",
        "--env",
        "CartPole-v1",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "live",
        "--total-steps",
        "50000000",
        "--set",
        "checkpoint_every=0",
        "--eval-episodes",
        "0",
    ])
}

#[test]
fn dashboard_shows_live_training_and_q_stops_it_with_a_checkpoint() {
    let dir = runs_dir("dashboard-q");
    let tmux = Tmux::start("q", &live_run(&dir));
    let deadline = Duration::from_secs(30);

    // Live numbers are drawn and change.
    let first = tmux.wait_for("a training step count", deadline, |s| {
        gauge_step(s).filter(|&n| n > 0 && s.contains("phase training"))
    });
    // 50,000,000 steps are 97,656 whole updates of 4 × 128.
    tmux.wait_for_all(&["env CartPole-v1", " / 49,999,872 steps"], deadline);
    assert!(
        tmux.alternate_screen(),
        "the dashboard owns the alternate screen"
    );
    let later = tmux.wait_for("the step count moving on", deadline, |s| {
        gauge_step(s).filter(|&n| n > first)
    });
    assert!(later > first);
    let sps = tmux.wait_for("SPS figures", deadline, sps_row);
    assert!(
        sps.iter()
            .all(|c| c.chars().next().unwrap().is_ascii_digit()),
        "{sps:?}"
    );

    // q asks first; anything but yes keeps training.
    tmux.keys(&["q"]);
    tmux.wait_for("the quit question", deadline, |s| {
        s.contains("Stop training?").then_some(())
    });
    tmux.keys(&["n"]);
    let kept = tmux.wait_for("training going on after 'n'", deadline, |s| {
        (!s.contains("Stop training?"))
            .then(|| gauge_step(s))
            .flatten()
            .filter(|&n| n > later)
    });
    assert!(kept > later);
    assert!(checkpoints(&dir.join("live")).is_empty());

    // q, y: stop after the update, with a checkpoint, and leave.
    let screen = tmux.quit_with_yes(deadline);
    let run = dir.join("live");
    let saved = checkpoints(&run);
    assert_eq!(saved.len(), 1, "{saved:?}");
    let last = last_event(&run);
    assert!(last.contains("\"reason\":\"interrupted\""), "{last}");
    let step: u64 = saved[0].trim_start_matches("step-").parse().unwrap();
    assert!(
        last.contains(&format!("\"global_step\":{step},")),
        "{last} vs {saved:?}"
    );
    assert!(
        step >= kept,
        "checkpoint at {step}, the screen showed {kept}"
    );
    assert!(
        screen.contains(&format!(
            "checkpoint: {}",
            run.join("checkpoints").join(&saved[0]).display()
        )),
        "{screen}"
    );
}

#[test]
fn ctrl_c_in_the_dashboard_stops_with_a_checkpoint_and_restores_the_terminal() {
    let dir = runs_dir("dashboard-ctrl-c");
    let tmux = Tmux::start("ctrl-c", &live_run(&dir));
    let deadline = Duration::from_secs(30);
    tmux.wait_for("a training step count", deadline, |s| {
        gauge_step(s).filter(|&n| n > 0)
    });
    // p pauses between updates: once the update under way is done, the step count holds.
    tmux.keys(&["p"]);
    tmux.wait_for("the paused phase", deadline, |s| {
        s.contains("phase paused").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let paused = tmux.wait_for("the step count", deadline, gauge_step);
    std::thread::sleep(Duration::from_millis(1500));
    let still = tmux.wait_for("the step count", deadline, gauge_step);
    assert_eq!(still, paused, "training went on while paused");
    // s while paused: the checkpoint comes after the next update, so resume first.
    tmux.keys(&["p"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the requested checkpoint", deadline, |s| {
        s.contains("(1 checkpoint)").then_some(())
    });

    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("hone exiting", deadline, |s| {
        s.contains("hone-exited-").then(|| s.to_owned())
    });
    assert!(screen.contains("hone-exited-0"), "{screen}");
    assert!(!tmux.alternate_screen(), "the terminal is restored");
    let run = dir.join("live");
    // The requested checkpoint, and the stop's (unless no update came between the two).
    let saved = checkpoints(&run);
    assert!(matches!(saved.len(), 1 | 2), "{saved:?}");
    let last = last_event(&run);
    assert!(last.contains("\"reason\":\"interrupted\""), "{last}");
    let step: u64 = saved
        .last()
        .unwrap()
        .trim_start_matches("step-")
        .parse()
        .unwrap();
    assert!(
        last.contains(&format!("\"global_step\":{step},")),
        "{last} vs {saved:?}"
    );
}

/// A short finished run, trained without a terminal (so with the text progress).
fn finished_run(dir: &Path) -> PathBuf {
    let output = hone(&[
        "train",
        "--env",
        "CartPole-v1",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "done",
        "--total-steps",
        "2048",
        "--eval-episodes",
        "0",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // The final summary line of the text progress.
    assert!(
        text.lines()
            .any(|l| l.starts_with("step 2,048 / 2,048 (100.0%)  sps ")),
        "{text}"
    );
    dir.join("done")
}

#[test]
fn monitor_replays_a_finished_run_and_q_leaves() {
    let dir = runs_dir("monitor");
    let run = finished_run(&dir);
    let tmux = Tmux::start(
        "monitor",
        &hone_command(&["monitor", run.to_str().unwrap()]),
    );
    let deadline = Duration::from_secs(20);
    tmux.wait_for_all(
        &[
            "phase finished: done",
            "100.0%  2,048 / 2,048 steps",
            "monitor: read-only",
        ],
        deadline,
    );
    tmux.keys(&["p"]);
    tmux.wait_for("the read-only note", deadline, |s| {
        s.contains("monitor is read-only").then_some(())
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the losses tab", deadline, |s| {
        s.contains("┌ value loss: ").then_some(())
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the monitor exiting", deadline, |s| {
        s.contains("hone-exited-").then(|| s.to_owned())
    });
    assert!(screen.contains("hone-exited-0"), "{screen}");
}

#[test]
fn monitor_without_a_terminal_prints_where_the_run_is() {
    let dir = runs_dir("monitor-text");
    let run = finished_run(&dir);
    let output = hone(&["monitor", run.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "done: finished: done", "{text}");
    assert!(
        lines[1].starts_with("step 2,048 / 2,048 (100.0%)  sps "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("last checkpoint: step 2048, "),
        "{text}"
    );

    let missing = hone(&["monitor", dir.join("nothing").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("not a run directory (no metrics.jsonl in it)"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn hone_rlhf_opens_the_dashboard_on_its_rlhf_tab_and_q_stops_it_with_a_checkpoint() {
    let dir = runs_dir("rlhf");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("init");
    let data = dir.join("sort.jsonl");
    for args in [
        vec![
            "init",
            "--layers",
            "1",
            "--hidden",
            "32",
            "--heads",
            "2",
            "--max-positions",
            "64",
            "--out",
            model.to_str().unwrap(),
        ],
        vec![
            "rlhf",
            "task",
            "sort",
            "--count",
            "32",
            "--out",
            data.to_str().unwrap(),
        ],
    ] {
        let output = hone(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let policy = format!("policy={}", model.display());
    let data = format!("data={}", data.display());
    let command = hone_command(&[
        "rlhf",
        "--set",
        &policy,
        "--set",
        &data,
        "--set",
        "steps=1000000",
        "--set",
        "generation.max_new_tokens=8",
        "--set",
        "save_every=0",
        "--threads",
        "1",
        "--runs-dir",
        dir.to_str().unwrap(),
        "--name",
        "remax",
    ]);
    let tmux = Tmux::start("rlhf", &command);
    let deadline = Duration::from_secs(60);
    tmux.wait_for_all(
        &[
            "algorithm remax",
            "RLHF steps",
            "reward: sampled vs baseline",
            "Latest step",
            "Time per phase",
        ],
        deadline,
    );
    let screen = tmux.quit_with_yes(deadline);
    let run = dir.join("remax");
    assert_eq!(checkpoints(&run).len(), 1, "{screen}");
    let last = last_event(&run);
    assert!(last.contains("\"reason\":\"stopped\""), "{last}");
}
