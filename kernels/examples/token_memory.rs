//! Peak extra memory (process RSS, CPU) of `token_logprobs` against the naive
//! `log_softmax(-1).gather(-1, tokens)`, each variant in a fresh process:
//!
//! `cargo run --release -p hone-kernels --example token_memory [-- B T V]` (default 8 1024 49152)
//!
//! Each child makes the logits, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`), runs
//! one pass and reports `VmHWM - VmRSS(before)`. Passes: `forward` (no grad, as reference
//! log-probs are computed), `retained` (grad enabled: what the forward leaves alive for
//! backward, measured as RSS after it, including the [B, T] output), `forward_backward` (peak,
//! including the [B, T, V] gradient itself, which any method must produce).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hone_kernels::tensor::token::token_logprobs;
use tch::{Kind, Tensor};

const VARIANTS: [&str; 2] = ["naive", "chunked"];
const PASSES: [&str; 3] = ["forward", "retained", "forward_backward"];

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn logprobs(variant: &str, logits: &Tensor, tokens: &Tensor) -> Tensor {
    match variant {
        "naive" => logits
            .log_softmax(-1, Kind::Float)
            .gather(-1, &tokens.unsqueeze(-1), false)
            .squeeze_dim(-1),
        _ => token_logprobs(logits, tokens).expect("token_logprobs"),
    }
}

/// One measurement in this process; prints `extra_kib seconds` and saves the results.
fn child(variant: &str, pass: &str, shape: [i64; 3], out: &Path) {
    let [b, t, v] = shape;
    tch::manual_seed(0);
    let logits = Tensor::randn([b, t, v], (Kind::Float, tch::Device::Cpu)) * 3.0;
    let tokens = Tensor::randint(v, [b, t], (Kind::Int64, tch::Device::Cpu));
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    let start = Instant::now();
    let (result, grad, extra) = match pass {
        "forward" => {
            let r = tch::no_grad(|| logprobs(variant, &logits, &tokens));
            (r, None, status_kib("VmHWM:") - before)
        }
        "retained" => {
            let x = logits.detach().set_requires_grad(true);
            let r = logprobs(variant, &x, &tokens);
            let kept = status_kib("VmRSS:").saturating_sub(before);
            (r.detach(), None, kept)
        }
        _ => {
            let x = logits.detach().set_requires_grad(true);
            let r = logprobs(variant, &x, &tokens);
            r.sum(Kind::Float).backward();
            let grad = x.grad();
            (r.detach(), Some(grad), status_kib("VmHWM:") - before)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    result
        .save(out.join(format!("{variant}_{pass}_result.pt")))
        .expect("save");
    if let Some(grad) = grad {
        // Every 64th position's gradient row, to compare without another 1.6 GB.
        let sample = grad.slice(1, 0, t, 64).contiguous();
        sample
            .save(out.join(format!("{variant}_{pass}_grad.pt")))
            .expect("save");
    }
    println!("{extra} {seconds} {reset}");
}

fn max_relative_difference(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let scale = b.abs().clamp_min(1.0);
    ((a - &b).abs() / scale).max().double_value(&[])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 7 && args[1] == "--child" {
        let shape = [2, 3, 4].map(|i| args[i].parse().expect("a size"));
        child(
            &args[5],
            &args[6],
            shape,
            Path::new(&std::env::var("HONE_MEMORY_DIR").unwrap()),
        );
        return;
    }
    let sizes: Vec<i64> = args[1..]
        .iter()
        .map(|a| a.parse().expect("sizes: B T V"))
        .collect();
    let [b, t, v] = match sizes.as_slice() {
        [] => [8, 1024, 49152],
        [b, t, v] => [*b, *t, *v],
        _ => panic!("usage: token_memory [B T V]"),
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hone-token-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = std::env::current_exe().expect("own path");
    let logits_mib = (b * t * v * 4) as f64 / (1 << 20) as f64;
    println!(
        "token_logprobs peak extra memory, B={b} T={t} V={v} (logits {logits_mib:.0} MiB f32), CPU, {} threads",
        tch::get_num_threads()
    );
    println!(
        "| pass | naive extra MiB | chunked extra MiB | naive / chunked | naive s | chunked s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let gradient_mib = logits_mib;
    let mut beyond_gradient: Option<(f64, f64)> = None;
    for pass in PASSES {
        let mut row = Vec::new();
        for variant in VARIANTS {
            let output = Command::new(&exe)
                .args([
                    "--child",
                    &b.to_string(),
                    &t.to_string(),
                    &v.to_string(),
                    variant,
                    pass,
                ])
                .env("HONE_MEMORY_DIR", &dir)
                .output()
                .expect("child process");
            assert!(
                output.status.success(),
                "{variant} {pass}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8_lossy(&output.stdout);
            let fields: Vec<&str> = text.split_whitespace().collect();
            let extra_kib: f64 = fields[0].parse().unwrap();
            let seconds: f64 = fields[1].parse().unwrap();
            assert_eq!(fields[2], "true", "the peak-RSS mark could not be reset");
            row.push((extra_kib / 1024.0, seconds));
        }
        println!(
            "| {pass} | {:.0} | {:.0} | {:.1}x | {:.2} | {:.2} |",
            row[0].0,
            row[1].0,
            row[0].0 / row[1].0.max(1.0),
            row[0].1,
            row[1].1
        );
        if pass == "forward_backward" {
            beyond_gradient = Some((row[0].0 - gradient_mib, row[1].0 - gradient_mib));
        }
    }
    if let Some((naive, chunked)) = beyond_gradient {
        println!(
            "forward_backward beyond the {gradient_mib:.0} MiB gradient that every method holds: \
             naive {naive:.0} MiB, chunked {chunked:.0} MiB ({:.0}x)",
            naive / chunked.max(1.0)
        );
    }
    let load = |name: &str| Tensor::load(dir.join(name)).expect("load");
    for pass in PASSES {
        let d = max_relative_difference(
            &load(&format!("chunked_{pass}_result.pt")),
            &load(&format!("naive_{pass}_result.pt")),
        );
        println!("{pass}: max relative difference of log-probs (chunked vs naive) {d:.2e}");
    }
    let d = max_relative_difference(
        &load("chunked_forward_backward_grad.pt"),
        &load("naive_forward_backward_grad.pt"),
    );
    println!("forward_backward: max relative difference of sampled gradient rows {d:.2e}");
    let _ = std::fs::remove_dir_all(&dir);
}
