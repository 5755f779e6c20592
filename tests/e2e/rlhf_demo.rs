//! `hone rlhf demo --quick`: every stage of the pipeline runs and reports greedy accuracy before
//! and after (the bars themselves are measured by the scripts, not here); and the KL alert's
//! threshold from a run file reaches the metrics the dashboard reads.

use crate::{hone, stderr, stdout};

const STAGES: [&str; 6] = [
    "SFT on sorting",
    "ReMax, exact-match reward",
    "SFT on decoy (p = 0.35 right)",
    "best-of-N (largest N), no training",
    "SFT-sharpening",
    "RLHF-sharpening (ReMax, self)",
];

/// The two percentages of a `-> stage: greedy accuracy A% -> B%` line.
fn accuracies(line: &str) -> (f64, f64) {
    let (_, numbers) = line.split_once("greedy accuracy ").expect(line);
    let parsed: Vec<f64> = numbers
        .split(" -> ")
        .map(|p| p.trim().trim_end_matches('%').parse().expect(line))
        .collect();
    assert_eq!(parsed.len(), 2, "{line}");
    for p in &parsed {
        assert!((0.0..=100.0).contains(p), "{line}");
    }
    (parsed[0], parsed[1])
}

#[test]
fn quick_demo_runs_every_stage_and_reports_accuracies() {
    let dir = std::env::temp_dir().join(format!("hone-e2e-rlhf-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = hone(&[
        "rlhf",
        "demo",
        "--quick",
        "--dir",
        dir.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    for stage in STAGES {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("-> {stage}:")))
            .unwrap_or_else(|| panic!("no result line for {stage:?} in\n{text}"));
        accuracies(line);
        assert!(
            text.lines()
                .any(|l| l.starts_with(stage) && l.matches('%').count() == 2),
            "no closing-table row for {stage:?} in\n{text}"
        );
    }
    // Best-of-N prints its accuracy against N.
    for n in ["1", "2", "4"] {
        assert!(
            text.lines().any(
                |l| l.split_whitespace().collect::<Vec<_>>().first() == Some(&n)
                    && l.ends_with('%')
            ),
            "no best-of-N row for N = {n} in\n{text}"
        );
    }
    // Each stage left its artefacts: checkpoints, run metrics, the winners as SFT data.
    for run in [
        "sft-sort",
        "remax-sort",
        "sft-decoy",
        "sft-sharpened",
        "rl-sharpened",
    ] {
        let checkpoints = dir.join(run).join("checkpoints");
        assert!(
            std::fs::read_dir(&checkpoints).is_ok_and(|mut d| d.next().is_some()),
            "no checkpoint in {}",
            checkpoints.display()
        );
    }
    let metrics = std::fs::read_to_string(dir.join("remax-sort/metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"rlhf\"")).count(),
        2,
        "{metrics}"
    );
    let winners = std::fs::read_to_string(dir.join("decoy_winners.jsonl")).unwrap();
    assert_eq!(winners.lines().count(), 16);

    // The run file's alert_kl: rejected when not positive, carried by every step otherwise.
    let policy = format!("policy={}", dir.join("init").display());
    let data = format!("data={}", dir.join("sort_train.jsonl").display());
    let runs = dir.join("runs");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "rlhf",
            "--no-tui",
            "--runs-dir",
            runs.to_str().unwrap(),
            "--name",
            "alert",
            "--set",
            &policy,
            "--set",
            &data,
            "--set",
            "steps=1",
            "--set",
            "prompts_per_step=4",
            "--set",
            "generation.max_new_tokens=4",
            "--set",
            "device=cpu",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        hone(&args)
    };
    let out = run(&["--set", "alert_kl=-1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("alert_kl"), "{}", stderr(&out));
    let out = run(&["--set", "alert_kl=0.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = std::fs::read_to_string(runs.join("alert/metrics.jsonl")).unwrap();
    let step: serde_json::Value = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "rlhf")
        .unwrap();
    assert_eq!(step["alert_kl"], 0.5, "{step}");
    let _ = std::fs::remove_dir_all(&dir);
}
