//! hone's logits and greedy tokens against transformers' on one device and dtype, for the GPU
//! check (scripts/gpu_check.sh); the reference comes from `scripts/llm_reference.py
//! device-reference`, made on the same device in the same dtype.
//!
//!     cargo run --release -p hone-rlhf --example llm_parity -- <checkpoint_dir> \
//!         <reference.safetensors> [--device cuda] [--dtype bf16]
//!
//! Prints one JSON object: the largest logit difference over the unpadded positions relative to
//! the largest reference logit, and per row how many greedy tokens (cached generation) agree
//! with transformers' before the first that differs.

#[path = "common/placement.rs"]
mod placement;

use std::collections::HashMap;

use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::{GenerateConfig, generate};
use tch::{Device, Kind, Tensor};

fn main() -> hone_rlhf::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let placement = placement::take_placement(&mut args)?;
    let [dir, reference] = &args[..] else {
        eprintln!(
            "usage: llm_parity <checkpoint_dir> <reference.safetensors> [--device D] [--dtype T]"
        );
        std::process::exit(2);
    };
    let device = placement.device;
    let ckpt = Checkpoint::load(std::path::Path::new(dir), device, placement.kind)?;
    let r: HashMap<String, Tensor> = hone_rlhf::safetensors::read(std::path::Path::new(reference))?
        .into_iter()
        .collect();
    let (ids, mask) = (
        r["input_ids"].to_device(device),
        r["attention_mask"].to_device(device),
    );
    let logits = tch::no_grad(|| ckpt.model.forward(&ids, &mask))?
        .to_kind(Kind::Float)
        .to_device(Device::Cpu);
    let keep = r["attention_mask"]
        .ne(0)
        .unsqueeze(-1)
        .expand_as(&r["logits"]);
    let want = r["logits"].to_kind(Kind::Double).masked_select(&keep);
    let got = logits.to_kind(Kind::Double).masked_select(&keep);
    let error = (&got - &want).abs().max().double_value(&[]) / want.abs().max().double_value(&[]);

    let greedy = &r["greedy"];
    let config = GenerateConfig {
        max_new_tokens: greedy.size()[1],
        sampling: None,
        use_cache: true,
    };
    let out = generate(&ckpt.model, &ids, &mask, &[], 0, &config)?;
    let tokens =
        Vec::<Vec<i64>>::try_from(out.tokens.to_device(Device::Cpu)).expect("token ids are int64");
    let wanted = Vec::<Vec<i64>>::try_from(greedy).expect("token ids are int64");
    let agree: Vec<usize> = tokens
        .iter()
        .zip(&wanted)
        .map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count())
        .collect();
    println!(
        "{{\"placement\": \"{}\", \"max_relative_logit_error\": {error:.3e}, \"greedy_tokens\": {}, \"greedy_agree_per_row\": {agree:?}}}",
        placement.label,
        greedy.size()[1]
    );
    Ok(())
}
