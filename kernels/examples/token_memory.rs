//! Peak extra memory (process RSS, CPU) of `token_logprobs` against the naive
//! `log_softmax(-1).gather(-1, tokens)`, each variant in a fresh process:
//!
//! `cargo run --release -p hone-kernels --example token_memory [-- B T V]` (default 8 1024 49152)
//!
//! With `--head H` first, it compares `token_logprobs_from_hidden(hidden [B, T, H], weight
//! [V, H])` with `hidden.matmul(weight^T).log_softmax(-1).gather(-1, tokens)` instead.
//!
//! Each child makes its inputs, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`),
//! runs one pass and reports `VmHWM - VmRSS(before)`. Passes: `forward` (no grad, as reference
//! log-probs are computed), `retained` (grad enabled: what the forward leaves alive for
//! backward, measured as RSS after it, including the [B, T] output), `forward_backward` (peak,
//! including the gradients of the inputs, which any method must produce).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hone_kernels::tensor::token::{token_logprobs, token_logprobs_from_hidden};
use tch::{Device, Kind, Tensor};

const PASSES: [&str; 3] = ["forward", "retained", "forward_backward"];

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// What is compared: the inputs that need gradients, and the two ways of scoring tokens.
#[derive(Clone, Copy)]
struct Problem {
    b: i64,
    t: i64,
    v: i64,
    /// `Some(H)`: from hidden states through a bias-free LM head.
    head: Option<i64>,
}

impl Problem {
    fn variants(&self) -> [&'static str; 2] {
        if self.head.is_some() {
            ["naive", "fused"]
        } else {
            ["naive", "chunked"]
        }
    }

    fn inputs(&self) -> Vec<Tensor> {
        tch::manual_seed(0);
        let (b, t, v) = (self.b, self.t, self.v);
        match self.head {
            None => vec![Tensor::randn([b, t, v], (Kind::Float, Device::Cpu)) * 3.0],
            Some(h) => vec![
                Tensor::randn([b, t, h], (Kind::Float, Device::Cpu)),
                Tensor::randn([v, h], (Kind::Float, Device::Cpu)) * 0.1,
            ],
        }
    }

    fn logprobs(&self, variant: &str, inputs: &[Tensor], tokens: &Tensor) -> Tensor {
        let naive = |logits: &Tensor| {
            logits
                .log_softmax(-1, Kind::Float)
                .gather(-1, &tokens.unsqueeze(-1), false)
                .squeeze_dim(-1)
        };
        match (variant, self.head) {
            ("naive", None) => naive(&inputs[0]),
            ("naive", Some(_)) => naive(&inputs[0].matmul(&inputs[1].tr())),
            (_, None) => token_logprobs(&inputs[0], tokens).expect("token_logprobs"),
            (_, Some(_)) => token_logprobs_from_hidden(&inputs[0], &inputs[1], tokens)
                .expect("token_logprobs_from_hidden"),
        }
    }
}

/// One measurement in this process; prints `extra_kib seconds reset_ok` and saves the results.
fn child(problem: Problem, variant: &str, pass: &str, out: &Path) {
    let inputs = problem.inputs();
    let tokens = Tensor::randint(
        problem.v,
        [problem.b, problem.t],
        (Kind::Int64, Device::Cpu),
    );
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    let start = Instant::now();
    let (result, grads, extra) = match pass {
        "forward" => {
            let r = tch::no_grad(|| problem.logprobs(variant, &inputs, &tokens));
            (r, vec![], status_kib("VmHWM:") - before)
        }
        "retained" => {
            let x: Vec<Tensor> = inputs
                .iter()
                .map(|i| i.detach().set_requires_grad(true))
                .collect();
            let r = problem.logprobs(variant, &x, &tokens);
            let kept = status_kib("VmRSS:").saturating_sub(before);
            (r.detach(), vec![], kept)
        }
        _ => {
            let x: Vec<Tensor> = inputs
                .iter()
                .map(|i| i.detach().set_requires_grad(true))
                .collect();
            let r = problem.logprobs(variant, &x, &tokens);
            r.sum(Kind::Float).backward();
            let grads = x.iter().map(Tensor::grad).collect();
            (r.detach(), grads, status_kib("VmHWM:") - before)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    result
        .save(out.join(format!("{variant}_{pass}_result.pt")))
        .expect("save");
    for (i, grad) in grads.iter().enumerate() {
        // Every 64th position (or weight row), to compare without another copy of it all.
        let dim = if grad.dim() == 3 { 1 } else { 0 };
        let sample = grad
            .slice(dim, 0, grad.size()[dim as usize], 64)
            .contiguous();
        sample
            .save(out.join(format!("{variant}_{pass}_grad{i}.pt")))
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

fn parse(args: &[String]) -> Problem {
    let (head, rest) = match args {
        [flag, h, rest @ ..] if flag == "--head" => (Some(h.parse().expect("H")), rest),
        rest => (None, rest),
    };
    let sizes: Vec<i64> = rest
        .iter()
        .map(|a| a.parse().expect("sizes: B T V"))
        .collect();
    let [b, t, v] = match sizes.as_slice() {
        [] => [8, 1024, 49152],
        [b, t, v] => [*b, *t, *v],
        _ => panic!("usage: token_memory [--head H] [B T V]"),
    };
    Problem { b, t, v, head }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let problem = parse(&args[3..]);
        let dir = std::env::var("HONE_MEMORY_DIR").expect("HONE_MEMORY_DIR");
        child(problem, &args[1], &args[2], Path::new(&dir));
        return;
    }
    let problem = parse(&args);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hone-token-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = std::env::current_exe().expect("own path");
    let Problem { b, t, v, head } = problem;
    let mib = |elements: i64| (elements * 4) as f64 / (1 << 20) as f64;
    // The gradients every method must produce, part of forward_backward's peak.
    let gradient_mib = match head {
        None => {
            println!(
                "token_logprobs against log_softmax().gather(), B={b} T={t} V={v} (logits {:.0} MiB f32)",
                mib(b * t * v)
            );
            mib(b * t * v)
        }
        Some(h) => {
            println!(
                "token_logprobs_from_hidden against matmul().log_softmax().gather(), B={b} T={t} \
                 H={h} V={v} (logits would be {:.0} MiB f32)",
                mib(b * t * v)
            );
            mib(b * t * h + v * h)
        }
    };
    let [naive_name, ours_name] = problem.variants();
    println!(
        "CPU, {} threads; peak extra RSS per pass, each in a fresh process",
        tch::get_num_threads()
    );
    println!(
        "| pass | {naive_name} MiB | {ours_name} MiB | {naive_name} / {ours_name} | {naive_name} s | {ours_name} s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut beyond_gradient = None;
    let size_args: Vec<String> = args.clone();
    for pass in PASSES {
        let mut row = Vec::new();
        for variant in problem.variants() {
            let output = Command::new(&exe)
                .args(["--child", variant, pass])
                .args(&size_args)
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
            assert_eq!(fields[2], "true", "the peak-RSS mark could not be reset");
            let extra_kib: f64 = fields[0].parse().expect("kib");
            let seconds: f64 = fields[1].parse().expect("seconds");
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
    if let Some((naive, ours)) = beyond_gradient {
        println!(
            "forward_backward beyond the {gradient_mib:.0} MiB of input gradients that every method \
             holds: {naive_name} {naive:.0} MiB, {ours_name} {ours:.0} MiB ({:.0}x)",
            naive / ours.max(1.0)
        );
    }
    let load = |name: String| Tensor::load(dir.join(name)).expect("load");
    for pass in PASSES {
        let d = max_relative_difference(
            &load(format!("{ours_name}_{pass}_result.pt")),
            &load(format!("{naive_name}_{pass}_result.pt")),
        );
        println!("{pass}: max relative difference of log-probs {d:.2e}");
    }
    let inputs = if head.is_some() { 2 } else { 1 };
    for i in 0..inputs {
        let d = max_relative_difference(
            &load(format!("{ours_name}_forward_backward_grad{i}.pt")),
            &load(format!("{naive_name}_forward_backward_grad{i}.pt")),
        );
        println!("forward_backward: max relative difference of sampled gradient {i} {d:.2e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
