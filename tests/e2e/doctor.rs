use crate::{hone, stderr, stdout};

#[test]
fn doctor_reports_libtorch_and_computes_on_the_cpu() {
    let output = hone(&["doctor"]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&output)
    );
    assert!(
        text.starts_with(&format!("hone {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let libtorch = text
        .lines()
        .find(|l| l.starts_with("libtorch "))
        .expect("a libtorch line");
    assert!(libtorch.starts_with("libtorch 2.11.0"), "{libtorch}");
    assert!(text.contains("\nCUDA: "), "{text}");
    assert!(
        text.contains(
            "cpu: x·xᵀ = [[14, 32], [32, 77]], ∇ sum(x·xᵀ) = [[10, 14, 18], [10, 14, 18]] ok"
        ),
        "{text}"
    );
}

#[test]
fn doctor_keeps_libtorch_cuda_loaded_when_the_libtorch_has_it() {
    let output = hone(&["doctor"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let line = text
        .lines()
        .find(|l| l.starts_with("libtorch 2.11.0"))
        .expect("a libtorch line");
    let lib_dir = line
        .split_once(" (")
        .expect("a lib folder")
        .1
        .trim_end_matches(')');
    let has_cuda_build = std::path::Path::new(lib_dir)
        .join("libtorch_cuda.so")
        .exists();
    // The pip wheel is a CUDA build: the binary must not let --as-needed drop libtorch_cuda.so.
    assert_eq!(
        text.contains("(libtorch_cuda.so loaded)"),
        has_cuda_build,
        "{text}"
    );
}

#[test]
fn doctor_sets_the_thread_count_it_is_given() {
    let output = hone(&["doctor", "--threads", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("threads: libtorch intra-op 1,"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn doctor_rejects_zero_threads_with_a_clear_error() {
    let output = hone(&["doctor", "--threads", "0"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("error: --threads must be at least 1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_launcher_alone_says_hone_core_is_missing() {
    let dir = std::env::temp_dir().join(format!("hone-lonely-launcher-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let launcher = dir.join("hone");
    std::fs::copy(env!("CARGO_BIN_EXE_hone"), &launcher).unwrap();
    let output = std::process::Command::new(&launcher)
        .arg("doctor")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("hone-core is missing next to"), "{err}");
    assert!(err.contains("cargo build --release"), "{err}");
}
