//! hone against transformers on tiny random checkpoints that transformers itself creates and
//! saves (scripts/llm_reference.py): logits of a left-padded batch within 1e-4 relative (f32),
//! the same greedy tokens with and without the KV cache, and a save/load round trip.

use std::path::PathBuf;
use std::sync::OnceLock;

use hone_rlhf::checkpoint::{GenerationDefaults, load_model};
use hone_rlhf::{GenerateConfig, ModelConfig, generate, save_pretrained};
use tch::{Device, Kind, Tensor};

use crate::common::{
    masked_relative_error, one_thread, reference_python, run_python, run_python_jobs, temp_dir,
};

const VARIANTS: [&str; 3] = ["gpt2", "llama_gqa_llama3", "llama_tied_linear"];

/// The folder of transformers-made checkpoints, made once per test run.
fn tiny_checkpoints(test: &str) -> Option<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let python = reference_python(test)?;
    Some(
        DIR.get_or_init(|| {
            let dir = temp_dir("tiny");
            let listed = run_python(&python, &["tiny", dir.to_str().unwrap()]);
            for v in VARIANTS {
                assert!(listed.contains(v), "{listed}");
            }
            dir
        })
        .clone(),
    )
}

fn reference(dir: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    hone_rlhf::safetensors::read(&dir.join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn logits_of_a_padded_batch_match_transformers() {
    one_thread();
    let Some(root) = tiny_checkpoints("logits_of_a_padded_batch_match_transformers") else {
        return;
    };
    for variant in VARIANTS {
        let dir = root.join(variant);
        let config = ModelConfig::load(&dir).unwrap();
        let model = load_model(&dir, config, Device::Cpu, Kind::Float).unwrap();
        let r = reference(&dir);
        let logits = model
            .forward(&r["input_ids"], &r["attention_mask"])
            .unwrap();
        let err = masked_relative_error(&logits, &r["logits"], &r["attention_mask"]);
        println!("{variant}: max relative logit error {err:.2e}");
        assert!(err < 1e-4, "{variant}: relative error {err:.2e}");
        // A shifted mask must change the answer: the comparison can fail.
        let wrong = model
            .forward(&r["input_ids"], &r["attention_mask"].ones_like())
            .unwrap();
        assert!(masked_relative_error(&wrong, &r["logits"], &r["attention_mask"]) > 1e-3);
    }
}

#[test]
fn greedy_tokens_match_transformers_with_and_without_the_cache() {
    one_thread();
    let Some(root) =
        tiny_checkpoints("greedy_tokens_match_transformers_with_and_without_the_cache")
    else {
        return;
    };
    for variant in VARIANTS {
        let dir = root.join(variant);
        let config = ModelConfig::load(&dir).unwrap();
        let model = load_model(&dir, config, Device::Cpu, Kind::Float).unwrap();
        let r = reference(&dir);
        let want = &r["greedy"];
        for use_cache in [true, false] {
            let config = GenerateConfig {
                max_new_tokens: want.size()[1],
                sampling: None,
                use_cache,
            };
            let out = generate(
                &model,
                &r["input_ids"],
                &r["attention_mask"],
                &[],
                0,
                &config,
            )
            .unwrap();
            assert!(
                out.tokens.equal(want),
                "{variant} (cache {use_cache}): {:?} vs transformers {:?}",
                Vec::<i64>::try_from(out.tokens.flatten(0, -1)).unwrap(),
                Vec::<i64>::try_from(want.flatten(0, -1)).unwrap()
            );
            assert_eq!(
                out.mask.sum(Kind::Int64).int64_value(&[]),
                want.numel() as i64
            );
            // Log-probs are those of the model at each generated position.
            let (seq, seq_mask) = out.sequences().unwrap();
            let full = model.forward(&seq, &seq_mask).unwrap();
            let p = r["input_ids"].size()[1];
            let n = want.size()[1];
            let step_logits = full.narrow(1, p - 1, n).log_softmax(-1, Kind::Float);
            let want_lp = step_logits
                .gather(2, &out.tokens.unsqueeze(-1), false)
                .squeeze_dim(-1);
            let diff = (&out.logprobs - want_lp).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "{variant}: log-prob difference {diff}");
        }
    }
}

#[test]
fn saved_checkpoints_reload_to_the_same_model() {
    one_thread();
    let Some(root) = tiny_checkpoints("saved_checkpoints_reload_to_the_same_model") else {
        return;
    };
    for variant in VARIANTS {
        let dir = root.join(variant);
        let config = ModelConfig::load(&dir).unwrap();
        let model = load_model(&dir, config.clone(), Device::Cpu, Kind::Float).unwrap();
        let out = temp_dir(&format!("resaved-{variant}"));
        let dest = out.join("model");
        save_pretrained(
            &dest,
            &model,
            &GenerationDefaults::from_config(&config),
            None,
        )
        .unwrap();
        let again = load_model(
            &dest,
            ModelConfig::load(&dest).unwrap(),
            Device::Cpu,
            Kind::Float,
        )
        .unwrap();
        let a = model.named_parameters();
        let b = again.named_parameters();
        assert_eq!(a.len(), b.len());
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta.equal(tb), "{variant}: {na} differs after a round trip");
        }
        // Nothing but the checkpoint is left in the parent folder (no temporary folders).
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }
}

/// A checkpoint hone writes (`hone init`: config, weights, byte tokenizer) loads in
/// transformers and gives hone's logits; so does a reward model in the sequence-classification
/// layout.
#[test]
fn checkpoints_hone_writes_load_in_transformers() {
    use hone_rlhf::init::{InitSpec, create_random_checkpoint};
    use hone_rlhf::reward::RewardModel;

    one_thread();
    let test = "checkpoints_hone_writes_load_in_transformers";
    let Some(python) = reference_python(test) else {
        return;
    };
    let dir = temp_dir("hone-written");
    let specs = [
        InitSpec {
            kv_heads: Some(2),
            tie_embeddings: false,
            hidden: 32,
            seed: 3,
            ..InitSpec::default()
        },
        InitSpec {
            arch: "gpt2".into(),
            hidden: 32,
            seed: 4,
            ..InitSpec::default()
        },
    ];
    // Write the checkpoints and inputs, then run transformers once over all of them.
    let mut jobs = Vec::new();
    let mut cases = Vec::new();
    for spec in &specs {
        let out = dir.join(&spec.arch);
        create_random_checkpoint(spec, &out, true).unwrap();
        let ckpt = hone_rlhf::Checkpoint::load(&out, Device::Cpu, Kind::Float).unwrap();
        let tok = ckpt.tokenizer().unwrap();
        let prompts: Vec<Vec<i64>> = ["hello there", "a"]
            .iter()
            .map(|p| tok.encode(p, true).unwrap())
            .collect();
        let (ids, mask) = hone_rlhf::left_pad(&prompts, 256, Device::Cpu).unwrap();
        let inputs = dir.join(format!("{}-inputs.safetensors", spec.arch));
        let bytes = hone_rlhf::safetensors::serialize(&[
            ("input_ids".into(), ids.shallow_clone()),
            ("attention_mask".into(), mask.shallow_clone()),
        ])
        .unwrap();
        std::fs::write(&inputs, bytes).unwrap();
        let rm = RewardModel::from_causal_lm(&out, Device::Cpu, Kind::Float).unwrap();
        let rm_dir = dir.join(format!("{}-rm", spec.arch));
        rm.save(&rm_dir, Some(tok)).unwrap();
        let reference = dir.join(format!("{}-logits.safetensors", spec.arch));
        let rm_reference = dir.join(format!("{}-rewards.safetensors", spec.arch));
        let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        jobs.push(vec!["logits".into(), s(&out), s(&inputs), s(&reference)]);
        jobs.push(vec![
            "rewards".into(),
            s(&rm_dir),
            s(&inputs),
            s(&rm_reference),
        ]);
        cases.push((
            spec.arch.clone(),
            ckpt,
            ids,
            mask,
            reference,
            rm_dir,
            rm_reference,
        ));
    }
    run_python_jobs(&python, &dir, &jobs);
    for (arch, ckpt, ids, mask, reference, rm_dir, rm_reference) in cases {
        let r: std::collections::HashMap<_, _> = hone_rlhf::safetensors::read(&reference)
            .unwrap()
            .into_iter()
            .collect();
        let logits = ckpt.model.forward(&ids, &mask).unwrap();
        let err = masked_relative_error(&logits, &r["logits"], &mask);
        assert!(err < 1e-4, "{arch}: relative error {err:.2e}");
        // The reward model saved by hone, scored by transformers and by hone after reloading.
        let want = &hone_rlhf::safetensors::read(&rm_reference).unwrap()[0].1;
        let again = RewardModel::load(&rm_dir, Device::Cpu, Kind::Float).unwrap();
        let got = again.rewards(&ids, &mask).unwrap();
        let diff = (&got - want).abs().max().double_value(&[]);
        assert!(
            diff < 1e-4,
            "{arch}: rewards {got:?} vs transformers {want:?}"
        );
    }
}
