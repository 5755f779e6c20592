//! Checkpoint folders without a reference Python: sharded weights, errors that name the file
//! and tensor, bf16 against f32.

use std::collections::HashMap;

use hone_rlhf::checkpoint::{WEIGHTS, WEIGHTS_INDEX, read_weights};
use hone_rlhf::init::{InitSpec, create_random_checkpoint};
use hone_rlhf::{Checkpoint, GenerateConfig, generate, left_pad};
use tch::{Device, Kind, Tensor};

use crate::common::{masked_relative_error, one_thread, temp_dir};

fn tiny(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name).join("model");
    let spec = InitSpec {
        hidden: 32,
        kv_heads: Some(2),
        tie_embeddings: false,
        seed: 11,
        ..InitSpec::default()
    };
    create_random_checkpoint(&spec, &dir, true).unwrap();
    dir
}

#[test]
fn sharded_weights_load_like_one_file() {
    one_thread();
    let dir = tiny("sharded");
    let whole = read_weights(&dir).unwrap();
    let mut names: Vec<&String> = whole.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let tensors: Vec<(String, Tensor)> = part
            .iter()
            .map(|n| ((*n).clone(), whole[*n].shallow_clone()))
            .collect();
        std::fs::write(
            dir.join(file),
            hone_rlhf::safetensors::serialize(&tensors).unwrap(),
        )
        .unwrap();
        for n in part.iter() {
            weight_map.insert((*n).clone(), file.into());
        }
    }
    std::fs::remove_file(dir.join(WEIGHTS)).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join(WEIGHTS_INDEX), index.to_string()).unwrap();
    let sharded = read_weights(&dir).unwrap();
    assert_eq!(sharded.len(), whole.len());
    for (name, t) in &whole {
        assert!(sharded[name].equal(t), "{name}");
    }
    Checkpoint::load(&dir, Device::Cpu, Kind::Float).unwrap();

    // An index naming a tensor its shard lacks is an error naming both.
    let mut broken = index.clone();
    broken["weight_map"]["model.ghost.weight"] = "model-00001-of-00002.safetensors".into();
    std::fs::write(dir.join(WEIGHTS_INDEX), broken.to_string()).unwrap();
    let err = read_weights(&dir).unwrap_err().to_string();
    assert!(
        err.contains("model.ghost.weight") && err.contains("model-00001-of-00002"),
        "{err}"
    );
}

#[test]
fn missing_and_malformed_pieces_are_named() {
    one_thread();
    let dir = tiny("errors");
    let load = || {
        Checkpoint::load(&dir, Device::Cpu, Kind::Float)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let original: HashMap<String, Tensor> = read_weights(&dir).unwrap();
    // Tensor is not Clone; shallow clones share storage, and the tests only insert/remove.
    let copy = |w: &HashMap<String, Tensor>| -> HashMap<String, Tensor> {
        w.iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    };
    let mut weights = copy(&original);

    weights.remove("model.layers.1.mlp.up_proj.weight");
    let write = |w: &HashMap<String, Tensor>| {
        let list: Vec<(String, Tensor)> = w
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        std::fs::write(
            dir.join(WEIGHTS),
            hone_rlhf::safetensors::serialize(&list).unwrap(),
        )
        .unwrap();
    };
    write(&weights);
    let err = load();
    assert!(
        err.contains("model.layers.1.mlp.up_proj.weight") && err.contains("missing"),
        "{err}"
    );

    let mut weights = copy(&original);
    weights.insert(
        "model.norm.weight".into(),
        Tensor::ones([31], (Kind::Float, Device::Cpu)),
    );
    write(&weights);
    let err = load();
    assert!(
        err.contains("model.norm.weight") && err.contains("[31]"),
        "{err}"
    );

    let mut weights = copy(&original);
    weights.insert(
        "model.extra.weight".into(),
        Tensor::ones([2], (Kind::Float, Device::Cpu)),
    );
    write(&weights);
    let err = load();
    assert!(
        err.contains("model.extra.weight") && err.contains("does not use"),
        "{err}"
    );

    write(&original);
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"llama\",").unwrap();
    let err = load();
    assert!(
        err.contains("config.json") && err.contains("invalid JSON"),
        "{err}"
    );
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = load();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn bf16_follows_f32() {
    one_thread();
    let dir = tiny("bf16");
    let f32_ckpt = Checkpoint::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let bf16 = Checkpoint::load(&dir, Device::Cpu, Kind::BFloat16).unwrap();
    let tok = f32_ckpt.tokenizer().unwrap();
    let prompts: Vec<Vec<i64>> = ["a longer prompt here", "hi"]
        .iter()
        .map(|p| tok.encode(p, true).unwrap())
        .collect();
    let (ids, mask) = left_pad(&prompts, 256, Device::Cpu).unwrap();
    let a = f32_ckpt.model.forward(&ids, &mask).unwrap();
    let b = bf16.model.forward(&ids, &mask).unwrap();
    assert_eq!(b.kind(), Kind::BFloat16);
    let err = masked_relative_error(&b, &a, &mask);
    assert!(err < 3e-2, "bf16 vs f32 relative error {err}");
    let config = GenerateConfig {
        max_new_tokens: 5,
        sampling: None,
        use_cache: true,
    };
    let out = generate(&bf16.model, &ids, &mask, &[258], 256, &config).unwrap();
    assert_eq!(out.tokens.size()[0], 2);
    assert_eq!(out.logprobs.kind(), Kind::Float);
}

#[test]
fn frozen_fused_weights_and_trained_leaves_agree() {
    one_thread();
    let dir = tiny("fused");
    let frozen = Checkpoint::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let mut trained = Checkpoint::load(&dir, Device::Cpu, Kind::Float).unwrap();
    let (_opt, leaves) = hone_rlhf::train::Optimiser::new(
        trained.model.named_parameters(),
        Device::Cpu,
        1e-3,
        1e-8,
        1.0,
    )
    .unwrap();
    let q = leaves["model.layers.0.self_attn.q_proj.weight"].shallow_clone();
    let up = leaves["model.layers.1.mlp.up_proj.weight"].shallow_clone();
    trained.model.set_parameters(leaves, "leaves").unwrap();
    let prompts = vec![vec![5i64, 9, 14, 3, 7], vec![11, 2]];
    let (ids, mask) = left_pad(&prompts, 256, Device::Cpu).unwrap();
    let a = tch::no_grad(|| frozen.model.forward(&ids, &mask).unwrap());
    let b = trained.model.forward(&ids, &mask).unwrap();
    let err = masked_relative_error(&b.detach(), &a, &mask);
    assert!(
        err < 1e-5,
        "fused vs separate weights: relative error {err}"
    );
    // Gradients reach the separate leaves (the fused buffers would cut them).
    b.square().sum(Kind::Float).backward();
    for leaf in [&q, &up] {
        let norm = leaf.grad().norm().double_value(&[]);
        assert!(norm > 0.0 && norm.is_finite(), "gradient norm {norm}");
    }
}

/// `hone init` and `hone convert` write into a folder without deleting what they did not write:
/// a non-empty folder is refused unless forced, forcing replaces only the checkpoint's own
/// files, a file in the way is an error and stays as it was, and a non-finite checkpoint does
/// not load.
#[test]
fn writing_a_checkpoint_never_deletes_what_it_did_not_write() {
    let spec = InitSpec {
        hidden: 32,
        seed: 3,
        ..InitSpec::default()
    };
    let dir = temp_dir("write-into");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.gguf"), b"the user's input").unwrap();
    std::fs::write(dir.join("notes.txt"), b"the user's notes").unwrap();
    let err = create_random_checkpoint(&spec, &dir, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    assert!(
        !dir.join("config.json").exists(),
        "a refused write wrote nothing"
    );
    create_random_checkpoint(&spec, &dir, true).unwrap();
    std::fs::write(dir.join("config.json"), b"stale").unwrap();
    create_random_checkpoint(&spec, &dir, true).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config.json",
            "generation_config.json",
            "model.gguf",
            "model.safetensors",
            "notes.txt",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    assert_eq!(
        std::fs::read(dir.join("model.gguf")).unwrap(),
        b"the user's input"
    );
    assert_eq!(
        std::fs::read(dir.join("notes.txt")).unwrap(),
        b"the user's notes"
    );
    let ckpt = Checkpoint::load(&dir, Device::Cpu, Kind::Float).unwrap();

    let file = temp_dir("write-into-file").join("out");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"keep me").unwrap();
    for force in [false, true] {
        let err = create_random_checkpoint(&spec, &file, force)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a folder"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }

    let weights: Vec<(String, Tensor)> = ckpt.model.named_parameters();
    let _ = weights[2].1.detach().fill_(f64::NAN);
    let bad = temp_dir("write-into-nan");
    hone_rlhf::save_pretrained(&bad, &ckpt.model, &ckpt.generation, ckpt.tokenizer.as_ref())
        .unwrap();
    let err = Checkpoint::load(&bad, Device::Cpu, Kind::Float)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&weights[2].0) && err.contains("NaN or infinite"),
        "{err}"
    );
}
