//! `hone rlhf` and `hone sharpen` from the command line: task files, run-file errors before any
//! work, and best-of-N output on a tiny random model.

use crate::{hone, sort_task, stderr, stdout};

fn work_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hone-e2e-rlhf-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn task_files_and_bad_run_files() {
    let dir = work_dir("task");
    let data = dir.join("sort.jsonl");
    let out = hone(&[
        "rlhf",
        "task",
        "sort",
        "--out",
        data.to_str().unwrap(),
        "--count",
        "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&data).unwrap();
    assert_eq!(text.lines().count(), 5);
    let row: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        row["prompt"].as_str().unwrap().starts_with("sort "),
        "{row}"
    );

    let runs = dir.join("runs");
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "policy = \"{}\"\ndata = \"{}\"\nsteps_total = 3\n",
            dir.display(),
            data.display()
        ),
    )
    .unwrap();
    let out = hone(&[
        "rlhf",
        "--config",
        config.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("steps_total"), "{}", stderr(&out));
    std::fs::write(
        &config,
        format!(
            "policy = \"{}\"\ndata = \"{}\"\n",
            dir.join("missing").display(),
            data.display()
        ),
    )
    .unwrap();
    let out = hone(&[
        "rlhf",
        "--config",
        config.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
    assert!(!runs.exists(), "a failed run file left a run directory");
}

#[test]
fn best_of_n_prints_accuracy_against_n() {
    let dir = work_dir("bon");
    let model = dir.join("model");
    let out = hone(&[
        "init",
        "--layers",
        "1",
        "--hidden",
        "32",
        "--heads",
        "2",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let data = sort_task(&dir.join("sort.jsonl"), 4);
    let winners = dir.join("winners.jsonl");
    let out = hone(&[
        "sharpen",
        "bon",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--n",
        "1,2,4",
        "--max-new-tokens",
        "4",
        "--threads",
        "1",
        "--winners",
        winners.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("greedy accuracy"), "{text}");
    for n in ["1", "2", "4"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(n) && l.contains('%')),
            "no row for N = {n}: {text}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&winners).unwrap().lines().count(),
        4
    );
}
