//! hone's side of the LLM speed table (scripts/bench_llm.sh runs it next to transformers):
//! prefill tokens/s, greedy generation tokens/s at batch 1 and 8 with and without the KV
//! cache, and one SFT step (forward, backward, clipping, Adam) at batch 8 x 256 tokens.
//!
//!     cargo run --release -p hone-rlhf --example llm_speed -- <checkpoint_dir> [threads] [sft]
//!         [--device cuda] [--dtype bf16]
//!
//! `--device` and `--dtype` (default cpu, f32) place the model; the SFT step is always f32.
//! With `sft` as the third argument only the SFT step is measured; with `gen8` only cached
//! generation at batch 8, `GEN8_RUNS` runs whose seconds are all printed (for interleaving
//! with transformers on a shared machine, where the fastest run is the least disturbed).
//!
//! Prints one JSON object per measurement (the shell script builds the table from them).

#[path = "common/placement.rs"]
mod placement;

use std::time::Instant;

use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::train::{Optimiser, sft_loss};
use hone_rlhf::{GenerateConfig, generate};
use tch::{Device, Kind, Tensor};

const PROMPT: i64 = 64;
const NEW_TOKENS: i64 = 32;
const GEN8_RUNS: usize = 4;

/// The median as Python's `statistics.median` takes it (the mean of the middle two for an even
/// count), so that both sides of the table summarise their runs alike.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Median seconds of `runs` calls, after one warm-up call when `warm_up`, each call's queued
/// device work included.
fn time(device: Device, runs: usize, warm_up: bool, mut f: impl FnMut()) -> f64 {
    if warm_up {
        f();
        placement::synchronize(device);
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                placement::synchronize(device);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn tokens(batch: i64, len: i64, vocab: i64, device: Device) -> Tensor {
    Tensor::randint_low(3, vocab, [batch, len], (Kind::Int64, device))
}

fn main() -> hone_rlhf::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let placement = placement::take_placement(&mut args)?;
    let device = placement.device;
    let dir = std::path::PathBuf::from(
        args.get(1)
            .expect("usage: llm_speed <checkpoint> [threads]"),
    );
    let threads: i32 = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    // As the hone commands do (HONE_KEEP_FREED_MEMORY=0 measures without it).
    hone_rlhf::memory::keep_freed_memory();
    tch::manual_seed(0);
    let ckpt = Checkpoint::load(&dir, device, placement.kind)?;
    let model = &ckpt.model;
    let vocab = model.config().vocab_size();
    let only_sft = args.get(3).is_some_and(|a| a == "sft");
    if args.get(3).is_some_and(|a| a == "gen8") {
        let ids = tokens(8, PROMPT, vocab, device);
        let mask = ids.ones_like();
        let config = GenerateConfig {
            max_new_tokens: NEW_TOKENS,
            sampling: None,
            use_cache: true,
        };
        let run = || {
            let t = Instant::now();
            generate(model, &ids, &mask, &[], 0, &config).unwrap();
            placement::synchronize(device);
            t.elapsed().as_secs_f64()
        };
        run();
        let seconds: Vec<String> = (0..GEN8_RUNS).map(|_| format!("{:.3}", run())).collect();
        println!(
            "{{\"what\": \"gen8\", \"tokens\": {}, \"seconds\": [{}]}}",
            8 * NEW_TOKENS,
            seconds.join(", ")
        );
        return Ok(());
    }
    for batch in [1i64, 8].into_iter().filter(|_| !only_sft) {
        let ids = tokens(batch, PROMPT, vocab, device);
        let mask = ids.ones_like();
        let seconds = time(device, 3, true, || {
            tch::no_grad(|| {
                let h = model.forward_hidden(&ids, &mask, None).unwrap();
                let _ = model.logits(&h.select(1, PROMPT - 1)).unwrap();
            })
        });
        println!(
            "{{\"what\": \"prefill\", \"batch\": {batch}, \"tokens_per_s\": {:.1}}}",
            (batch * PROMPT) as f64 / seconds
        );
        for use_cache in [true, false] {
            let config = GenerateConfig {
                max_new_tokens: NEW_TOKENS,
                sampling: None,
                use_cache,
            };
            // Without the cache a run takes long enough on its own (no warm-up, one run).
            let seconds = time(device, if use_cache { 3 } else { 1 }, use_cache, || {
                generate(model, &ids, &mask, &[], 0, &config).unwrap();
            });
            println!(
                "{{\"what\": \"generate\", \"batch\": {batch}, \"cache\": {use_cache}, \"tokens_per_s\": {:.1}}}",
                (batch * NEW_TOKENS) as f64 / seconds
            );
        }
    }
    // One SFT step at batch 8 x 256, the loss on every token after the first.
    let mut model = Checkpoint::load(&dir, device, Kind::Float)?.model;
    let (mut optimiser, views) = Optimiser::new(model.named_parameters(), device, 1e-5, 1e-8, 1.0)?;
    model.set_parameters(views, "speed test")?;
    let ids = tokens(8, 256, vocab, device);
    let mask = ids.ones_like();
    // Each step's three phases are timed too (forward with the loss, backward, clipping with
    // Adam), to set beside transformers' (scripts/bench_llm.py prints the same fields).
    let mut phases = Vec::new();
    let seconds = time(device, 2, true, || {
        let mut lap = Instant::now();
        let mut split = || {
            placement::synchronize(device);
            let s = lap.elapsed().as_secs_f64();
            lap = Instant::now();
            s
        };
        let loss = sft_loss(&model, &ids, &mask, &mask).unwrap();
        let forward = split();
        let grads = optimiser.gradients(&loss).unwrap();
        let backward = split();
        optimiser.apply(grads).unwrap();
        let update = split();
        phases.push([forward, backward, update]);
    });
    // The mean over the timed steps (the first is the warm-up).
    let timed = &phases[1..];
    let [forward, backward, update] = timed
        .iter()
        .fold([0.0; 3], |a, p| [a[0] + p[0], a[1] + p[1], a[2] + p[2]])
        .map(|s| s / timed.len() as f64);
    // Part of `update`: the check that parameters and Adam moments are finite (one f64 sum per
    // tensor, one transfer), which every optimiser step runs before anything can be saved.
    let checks = 5;
    let start = Instant::now();
    for _ in 0..checks {
        assert!(optimiser.first_non_finite()?.is_none());
    }
    let finite_check = start.elapsed().as_secs_f64() / f64::from(checks);
    println!(
        "{{\"what\": \"sft_step\", \"batch\": 8, \"seq\": 256, \"seconds\": {seconds:.3}, \
         \"forward\": {forward:.3}, \"backward\": {backward:.3}, \"update\": {update:.3}, \
         \"finite_check\": {finite_check:.4}}}"
    );
    Ok(())
}
