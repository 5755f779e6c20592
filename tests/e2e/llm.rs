//! `hone init`, `hone generate`, `hone sft` and `hone rm` on a tiny model made by `hone init`,
//! and the errors of the LLM commands (`hone rlhf` included) on bad input.

use std::path::{Path, PathBuf};

use crate::{hone, sort_task, stderr, stdout};

fn work_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hone-e2e-llm-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn init(dir: &Path, extra: &[&str]) -> PathBuf {
    let model = dir.join("model");
    let mut args = vec![
        "init",
        "--layers",
        "2",
        "--hidden",
        "32",
        "--heads",
        "4",
        "--out",
        model.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = hone(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    model
}

fn generate(model: &Path, prompt: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        prompt,
        "--max-new-tokens",
        "12",
        "--threads",
        "1",
    ];
    args.extend(extra);
    let out = hone(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The losses printed by a training command, in order.
fn losses(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with("step "))
        .filter_map(|l| {
            l.split("loss ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn generate_is_reproducible_and_cache_independent() {
    let dir = work_dir("generate");
    let model = init(&dir, &["--kv-heads", "2"]);
    let greedy = generate(&model, "hello", &["--greedy"]);
    assert_eq!(
        greedy,
        generate(&model, "hello", &["--greedy", "--no-cache"])
    );
    let sampled = generate(&model, "hello", &["--seed", "5", "--top-k", "20"]);
    assert_eq!(
        sampled,
        generate(&model, "hello", &["--seed", "5", "--top-k", "20"])
    );
    // A random model's samples differ between seeds (12 tokens over 259).
    assert_ne!(
        sampled,
        generate(&model, "hello", &["--seed", "6", "--top-k", "20"])
    );
    // Batched prompts print one line each; the chat template is applied without error.
    let batch = generate(&model, "a", &["--greedy", "--prompt", "bcd", "--chat"]);
    assert!(
        batch.starts_with("[0] ") && batch.contains("\n[1] "),
        "{batch}"
    );

    let missing = hone(&["generate", "--model", "/nonexistent/model", "--prompt", "x"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent/model"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn sft_teaches_the_responses_and_rm_ranks_the_pairs() {
    let dir = work_dir("train");
    let model = init(&dir, &["--arch", "gpt2"]);
    let data = dir.join("sft.jsonl");
    let pairs = [("2+2=", "four"), ("sky?", "blue"), ("cat?", "meow")];
    let lines: Vec<String> = pairs
        .iter()
        .map(|(p, r)| serde_json::json!({"prompt": p, "response": r}).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let runs = dir.join("runs");
    let sets = [
        format!("model={}", model.display()),
        format!("data={}", data.display()),
        "learning_rate=3e-3".into(),
        "batch_size=3".into(),
        "epochs=150".into(),
        "checkpoint_every=100".into(),
    ];
    let mut args = vec![
        "sft",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "sft",
        "--threads",
        "1",
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let out = hone(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let l = losses(&text);
    assert_eq!(l.len(), 150, "{text}");
    assert!(l[149] < 0.1 * l[0], "loss {} -> {}", l[0], l[149]);
    let run = runs.join("sft");
    assert!(run.join("config.toml").is_file());
    let checkpoints: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        checkpoints.contains(&"step-000000000150".to_owned()),
        "{checkpoints:?}"
    );
    let trained = run.join("checkpoints/step-000000000150");
    for (prompt, response) in pairs {
        assert_eq!(
            generate(&trained, prompt, &["--greedy"]).trim_end(),
            response
        );
    }

    // Reward model: chosen responses end in '!' and rejected ones in '?'.
    let rm_data = dir.join("rm.jsonl");
    let lines: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|p| {
            serde_json::json!({"prompt": p, "chosen": format!("{p} yes!"), "rejected": format!("{p} no?")})
                .to_string()
        })
        .collect();
    std::fs::write(&rm_data, lines.join("\n")).unwrap();
    let sets = [
        format!("model={}", model.display()),
        format!("data={}", rm_data.display()),
        "learning_rate=1e-3".into(),
        "batch_size=4".into(),
        "epochs=30".into(),
    ];
    let mut args = vec![
        "rm",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "rm",
        "--threads",
        "1",
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let out = hone(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let l = losses(&text);
    assert!(l.last().unwrap() < &0.1, "{text}");
    assert!(
        text.lines()
            .rev()
            .find(|l| l.contains("accuracy 1.000"))
            .is_some(),
        "{text}"
    );
    let saved = runs.join("rm/checkpoints/step-000000000030");
    let config = std::fs::read_to_string(saved.join("config.json")).unwrap();
    assert!(config.contains("GPT2ForSequenceClassification"), "{config}");

    // A bad run file key is named.
    let bad = hone(&[
        "rm",
        "--set",
        "learning_rat=1",
        "--runs-dir",
        runs.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("learning_rat"), "{}", stderr(&bad));
}

/// `hone init --out` into a folder with the user's files refuses without --force and, with it,
/// replaces only the checkpoint's files (it used to delete the whole folder).
#[test]
fn init_into_a_used_folder_keeps_the_users_files() {
    let dir = work_dir("init-force");
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.gguf"), b"input").unwrap();
    let args = ["init", "--hidden", "32", "--out", model.to_str().unwrap()];
    let out = hone(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    let out = hone(&[&args[..], &["--force"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(model.join("model.gguf")).unwrap(), b"input");
    assert!(model.join("model.safetensors").is_file());
}

/// Whether `hone doctor` finds a CUDA device (as `tch::Cuda::is_available`).
fn cuda_available() -> bool {
    let out = hone(&["doctor"]);
    stdout(&out).contains("CUDA: available")
}

/// `--device cuda` (or a run file's `device = "cuda"`) without a CUDA device is one line that
/// names CUDA, as in `hone train`, not libtorch's ~35 lines of C++ frames.
#[test]
fn cuda_without_a_cuda_device_is_one_line() {
    let dir = work_dir("cuda");
    let model = init(&dir, &[]);
    let model = model.to_str().unwrap();
    let data = sort_task(&dir.join("sort.jsonl"), 3);
    let data = data.to_str().unwrap();
    let policy = format!("policy={model}");
    let data_set = format!("data={data}");
    let runs = dir.join("runs");
    let commands: [Vec<&str>; 3] = [
        vec![
            "generate",
            "--model",
            model,
            "--prompt",
            "x",
            "--max-new-tokens",
            "2",
        ],
        vec![
            "sharpen", "bon", "--model", model, "--data", data, "--n", "1",
        ],
        vec![
            "rlhf",
            "--set",
            &policy,
            "--set",
            &data_set,
            "--set",
            "device=cuda",
            "--set",
            "steps=1",
            "--runs-dir",
            runs.to_str().unwrap(),
            "--no-tui",
        ],
    ];
    let cuda = cuda_available();
    for mut args in commands {
        if args[0] != "rlhf" {
            args.extend(["--device", "cuda", "--threads", "1"]);
        }
        let out = hone(&args);
        let err = stderr(&out);
        if cuda {
            assert!(out.status.success(), "{args:?}: {err}");
            continue;
        }
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.lines().count() < 5 && err.contains("CUDA") && !err.contains("frame #"),
            "{args:?}: {err}"
        );
    }
}

/// The first part of an error message that appears twice in it ("path: reason: reason").
fn repeated_segment(message: &str) -> Option<String> {
    let parts: Vec<&str> = message.trim().split(": ").collect();
    parts
        .iter()
        .enumerate()
        .find(|(i, part)| parts[i + 1..].contains(part))
        .map(|(_, part)| part.to_string())
}

/// An error names each part once: a context and its cause do not both name the cause.
#[test]
fn error_messages_name_each_part_once() {
    let dir = work_dir("errors");
    let model = init(&dir, &[]);
    let policy = format!("policy={}", model.display());
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let runs = dir.join("runs");
    let runs = runs.to_str().unwrap();
    let missing = format!("data={}", dir.join("missing.jsonl").display());
    let latin1 = dir.join("latin1.jsonl");
    std::fs::write(&latin1, b"{\"prompt\": \"a\"}\n{\"prompt\": \"caf\xe9\"}\n").unwrap();
    let latin1 = format!("data={}", latin1.display());
    let rlhf = |data| {
        vec![
            "rlhf",
            "--set",
            &policy,
            "--set",
            data,
            "--runs-dir",
            runs,
            "--no-tui",
        ]
    };
    let cases = [
        (
            vec!["generate", "--model", "/nonexistent/model", "--prompt", "x"],
            "/nonexistent/model",
        ),
        (
            vec![
                "generate",
                "--model",
                empty.to_str().unwrap(),
                "--prompt",
                "x",
            ],
            "config.json",
        ),
        (rlhf(&missing), "missing.jsonl"),
        (rlhf(&latin1), "latin1.jsonl:2: not valid UTF-8"),
        // The trainer's and the telemetry's errors.
        (
            vec![
                "rlhf",
                "--config",
                "/nonexistent/run.toml",
                "--runs-dir",
                runs,
            ],
            "/nonexistent/run.toml",
        ),
        (
            vec![
                "train",
                "--env",
                "CartPole-v1",
                "--config",
                "/nonexistent/ppo.toml",
            ],
            "/nonexistent/ppo.toml",
        ),
    ];
    for (args, names) in cases {
        let out = hone(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        let message = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or(&err);
        assert!(message.contains(names), "{args:?}: {err}");
        assert_eq!(repeated_segment(message), None, "{args:?}: {message}");
    }
    assert_eq!(
        repeated_segment("error: /x: not found: not found").as_deref(),
        Some("not found")
    );
}

/// A step that cannot fit in memory is an error before any model or batch is allocated,
/// naming the setting, the estimate and --force (it used to start and climb past 13 GB).
#[test]
fn a_step_too_large_for_memory_is_refused_before_any_work() {
    let dir = work_dir("memory");
    let model = init(&dir, &[]);
    let data = sort_task(&dir.join("sort.jsonl"), 3);
    let runs = dir.join("runs");
    let policy = format!("policy={}", model.display());
    let data = format!("data={}", data.display());
    let started = std::time::Instant::now();
    let out = hone(&[
        "rlhf",
        "--set",
        &policy,
        "--set",
        &data,
        "--set",
        "prompts_per_step=100000000",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--no-tui",
        "--threads",
        "1",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("prompts_per_step = 100000000")
            && err.contains("GiB of memory")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&runs).unwrap().count(),
        0,
        "a run directory was left"
    );
}
