//! The RLHF run loop on the built-in tasks with tiny models trained here from scratch: run-file
//! guards, response log-probs, ReMax raising accuracy on sorting, resume, NaN guards.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use hone_rlhf::checkpoint::Checkpoint;
use hone_rlhf::generate::generate_repeated;
use hone_rlhf::init::{InitSpec, create_random_checkpoint};
use hone_rlhf::ppo::{self, CriticKind};
use hone_rlhf::reward::RewardModel;
use hone_rlhf::rollout::response_logprobs;
use hone_rlhf::run::{
    Algorithm, RewardKind, RunConfig, RunMessage, RunSummary, StartOptions, run_rlhf,
};
use hone_rlhf::tasks::{self, Rule};
use hone_rlhf::train::{TrainConfig, run_sft};
use hone_rlhf::{GenerateConfig, generate, left_pad};
use hone_trainer::run_dir::RunDir;
use tch::{Device, Kind};

use crate::common::temp_dir;

/// A tiny Llama trained briefly (SFT) on 3–6 digit sorting: right on some prompts, not most.
struct SortingSetup {
    dir: PathBuf,
    sft: PathBuf,
    train: PathBuf,
    eval: PathBuf,
}

fn sorting_setup() -> &'static SortingSetup {
    static SETUP: OnceLock<SortingSetup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = temp_dir("sorting");
        let train = dir.join("train.jsonl");
        let eval = dir.join("eval.jsonl");
        tasks::write_jsonl(&train, &tasks::sorting(4000, 3, 6, 1).unwrap()).unwrap();
        tasks::write_jsonl(&eval, &tasks::sorting(100, 3, 6, 2).unwrap()).unwrap();
        let init = dir.join("init");
        create_random_checkpoint(
            &InitSpec {
                max_positions: 64,
                ..InitSpec::default()
            },
            &init,
            true,
        )
        .unwrap();
        let config = TrainConfig {
            model: init,
            data: train.clone(),
            learning_rate: 3e-3,
            batch_size: 32,
            max_steps: 100,
            max_length: 32,
            device: "cpu".into(),
            ..TrainConfig::default()
        };
        let run = RunDir::create(&dir.join("sft")).unwrap();
        let summary = run_sft(&run, &config, &mut |_| {}).unwrap();
        SortingSetup {
            sft: summary.last_checkpoint.unwrap(),
            dir,
            train,
            eval,
        }
    })
}

/// Runs that sample hold this: libtorch's generator is global to the process, so two runs
/// seeding it at once would draw each other's numbers.
fn sampling_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn remax_config(setup: &SortingSetup) -> RunConfig {
    let mut config = RunConfig {
        policy: setup.sft.clone(),
        data: setup.train.clone(),
        steps: 2,
        prompts_per_step: 16,
        learning_rate: 1e-4,
        device: "cpu".into(),
        ..RunConfig::default()
    };
    config.generation.max_new_tokens = 8;
    config.eval.data = Some(setup.eval.clone());
    config.eval.rule = Rule::ExactMatch;
    config
}

fn run(name: &str, config: &RunConfig, resume: bool) -> hone_rlhf::Result<RunSummary> {
    let root = sorting_setup().dir.join(name);
    let dir = if resume {
        RunDir::open_to_continue(&root).unwrap()
    } else {
        RunDir::create(&root).unwrap()
    };
    run_rlhf(
        &dir,
        config,
        StartOptions {
            resume,
            force: false,
        },
        None,
        &mut |_| {},
    )
}

/// The SFT sorting model and three left-padded prompts of different lengths.
fn sorting_prompts() -> (Checkpoint, tch::Tensor, tch::Tensor) {
    let ckpt = Checkpoint::load(&sorting_setup().sft, Device::Cpu, Kind::Float).unwrap();
    let tok = ckpt.tokenizer().unwrap();
    let prompts: Vec<Vec<i64>> = ["sort 31=", "sort 9071=", "sort 55512="]
        .iter()
        .map(|p| tok.encode(p, true).unwrap())
        .collect();
    let (ids, mask) = left_pad(&prompts, 256, Device::Cpu).unwrap();
    (ckpt, ids, mask)
}

#[test]
fn policy_logprobs_of_responses_equal_those_of_generation() {
    let _lock = sampling_lock();
    let (ckpt, ids, mask) = sorting_prompts();
    tch::manual_seed(3);
    let config = GenerateConfig {
        max_new_tokens: 8,
        sampling: Some(Default::default()),
        use_cache: true,
    };
    let out = generate(&ckpt.model, &ids, &mask, &[258], 256, &config).unwrap();
    let lp = response_logprobs(&ckpt.model, &out).unwrap();
    let diff = (&lp - &out.logprobs).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "max difference {diff}");
}

/// `generate_repeated` reads the prompts once for several decodings: its greedy run equals
/// `generate`'s, each prompt's rows sit together, and the sampled rows' log-probs are those of
/// the model on the sequences (the repeated cache holds the right keys and values).
#[test]
fn repeated_generation_shares_the_prompt_pass() {
    let _lock = sampling_lock();
    let (ckpt, ids, mask) = sorting_prompts();
    let greedy = GenerateConfig {
        max_new_tokens: 8,
        sampling: None,
        use_cache: true,
    };
    let sampled = GenerateConfig {
        max_new_tokens: 6,
        sampling: Some(Default::default()),
        use_cache: true,
    };
    tch::manual_seed(5);
    let runs = generate_repeated(
        &ckpt.model,
        &ids,
        &mask,
        &[258],
        256,
        &[(&sampled, 3), (&greedy, 1)],
    )
    .unwrap();
    let alone = generate(&ckpt.model, &ids, &mask, &[258], 256, &greedy).unwrap();
    assert!(runs[1].tokens.equal(&alone.tokens));
    assert!(runs[1].mask.equal(&alone.mask));
    let many = &runs[0];
    assert_eq!(many.tokens.size()[0], 9);
    assert!(
        many.prompt_ids
            .equal(&ids.repeat_interleave_self_int(3, 0, None))
    );
    let lp = response_logprobs(&ckpt.model, many).unwrap();
    let diff = (&lp - &many.logprobs).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "max difference {diff}");
    // Without the cache: the same greedy tokens, the same shapes.
    let uncached = GenerateConfig {
        use_cache: false,
        ..greedy.clone()
    };
    let runs = generate_repeated(&ckpt.model, &ids, &mask, &[258], 256, &[(&uncached, 2)]).unwrap();
    assert!(
        runs[0]
            .tokens
            .equal(&alone.tokens.repeat_interleave_self_int(2, 0, None))
    );
    let err = generate_repeated(&ckpt.model, &ids, &mask, &[258], 256, &[(&greedy, 0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("continuations per prompt"), "{err}");
}

/// ReMax with several samples per prompt against one greedy baseline: every sampled response
/// is trained on by default; with `skip_ties` only those whose reward differs from the
/// baseline's (never more than sampled, and a step with none makes no update).
#[test]
fn remax_with_several_samples_per_prompt_and_skipped_ties() {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = remax_config(setup);
    config.prompts_per_step = 8;
    config.remax.samples_per_prompt = 3;
    config.eval.data = None;
    for skip_ties in [false, true] {
        config.remax.skip_ties = skip_ties;
        let mut steps = Vec::new();
        let mut plan = String::new();
        run_rlhf(
            &RunDir::create(&setup.dir.join(format!("remax-n3-{skip_ties}"))).unwrap(),
            &config,
            StartOptions::default(),
            None,
            &mut |m| match m {
                RunMessage::Step(s) => steps.push(s.clone()),
                RunMessage::Plan(p) => plan = p.clone(),
                _ => {}
            },
        )
        .unwrap();
        assert!(
            plan.contains("8 prompts per step x 3 sampled responses (+1 greedy baseline) = 32"),
            "{plan}"
        );
        assert_eq!(steps.len(), 2);
        let total: u64 = steps.iter().map(|s| s.trained_responses.unwrap()).sum();
        if skip_ties {
            // With a 0/1 reward some of 48 samples tie with their greedy answer (both right or
            // both wrong) on a model this weak; skipping none would mean ties are not skipped.
            assert!(total < 48, "skip_ties trained all {total} responses");
        }
        for s in &steps {
            let trained = s.trained_responses.unwrap();
            if skip_ties {
                assert!(trained <= 24, "{trained}");
                if trained == 0 {
                    assert_eq!(s.grad_norm, 0.0);
                }
            } else {
                assert_eq!(trained, 24);
                assert!(s.grad_norm > 0.0);
            }
        }
    }
}

#[test]
fn bad_run_files_fail_before_any_work() {
    let setup = sorting_setup();
    let check = |name: &str, config: RunConfig, wants: &[&str]| {
        let root = setup.dir.join(name);
        let err = run_rlhf(
            &RunDir::create(&root).unwrap(),
            &config,
            StartOptions::default(),
            None,
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        for want in wants {
            assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        }
        assert!(!root.join("metrics.jsonl").exists(), "{name}: work started");
        assert!(!root.join("config.toml").exists(), "{name}: work started");
    };
    let mut missing = remax_config(setup);
    missing.policy = setup.dir.join("no-such-model");
    check("guard-missing", missing, &["no-such-model", "config.json"]);

    let empty = setup.dir.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let mut config = remax_config(setup);
    config.data = empty;
    check("guard-empty", config, &["empty.jsonl", "no prompts"]);

    let long = setup.dir.join("long.jsonl");
    let prompt = format!("sort {}=", "1".repeat(60));
    std::fs::write(
        &long,
        format!("{{\"prompt\":\"sort 12=\",\"answer\":\"12\"}}\n{{\"prompt\":\"{prompt}\",\"answer\":\"1\"}}\n"),
    )
    .unwrap();
    let mut config = remax_config(setup);
    config.data = long;
    check("guard-long", config, &["long.jsonl:2", "context of 64"]);

    let no_answer = setup.dir.join("no-answer.jsonl");
    std::fs::write(&no_answer, "{\"prompt\":\"sort 21=\"}\n").unwrap();
    let mut config = remax_config(setup);
    config.data = no_answer;
    check("guard-answer", config, &["no-answer.jsonl:1", "answer"]);

    let mut config = ppo_config(setup);
    config.ppo.minibatches = 17;
    check(
        "guard-minibatches",
        config,
        &["ppo.minibatches", "17", "1..=16"],
    );
    let mut config = ppo_config(setup);
    config.ppo.critic = CriticKind::Shared;
    config.ppo.critic_model = Some(setup.sft.clone());
    check("guard-critic", config, &["ppo.critic_model", "shared"]);
    let mut config = ppo_config(setup);
    config.ppo.critic_model = Some(setup.dir.join("no-critic"));
    check("guard-critic-dir", config, &["no-critic", "config.json"]);
}

/// Every trained tensor of step `step`'s checkpoint in run `name`: the policy's, and PPO's
/// critic (its folder, loaded as a reward model) or shared value head.
fn trained_tensors(name: &str, step: u64) -> Vec<(String, tch::Tensor)> {
    let dir = sorting_setup()
        .dir
        .join(name)
        .join("checkpoints")
        .join(format!("step-{step:012}"));
    let mut out = Checkpoint::load(&dir, Device::Cpu, Kind::Float)
        .unwrap()
        .model
        .named_parameters();
    if dir.join(ppo::CRITIC_DIR).is_dir() {
        let critic = RewardModel::load(&dir.join(ppo::CRITIC_DIR), Device::Cpu, Kind::Float)
            .unwrap()
            .named_parameters();
        out.extend(critic.into_iter().map(|(n, t)| (format!("critic.{n}"), t)));
    }
    if dir.join(ppo::VALUE_HEAD_FILE).is_file() {
        let head = hone_rlhf::safetensors::read(&dir.join(ppo::VALUE_HEAD_FILE)).unwrap();
        out.extend(head);
    }
    out
}

/// A run stopped after 1 or 2 steps and resumed to 3 ends where the uninterrupted run does, to
/// the bit.
fn check_resume(prefix: &str, config: &RunConfig) {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = config.clone();
    config.eval.data = None;
    config.steps = 3;
    config.save_every = 1;
    let straight = format!("{prefix}-straight");
    run(&straight, &config, false).unwrap();
    let a = trained_tensors(&straight, 3);
    let moved = load_initial_distance(&setup.sft, &a);
    assert!(moved > 0.0, "training changed nothing");
    for stop in [1, 2] {
        let split = format!("{prefix}-split-{stop}");
        let mut first = config.clone();
        first.steps = stop;
        run(&split, &first, false).unwrap();
        let resumed = run(&split, &config, true).unwrap();
        assert_eq!(resumed.steps, 3);
        let b = trained_tensors(&split, 3);
        assert_eq!(a.len(), b.len());
        for ((name, x), (other, y)) in a.iter().zip(&b) {
            assert_eq!(name, other);
            assert!(
                x.equal(y),
                "{prefix} {name}: the run resumed after step {stop} differs by {}",
                (x - y).abs().max().double_value(&[])
            );
        }
    }
    let split = format!("{prefix}-split-2");
    let metrics =
        std::fs::read_to_string(setup.dir.join(format!("{split}/metrics.jsonl"))).unwrap();
    let steps: Vec<(u64, Option<f64>)> = metrics
        .lines()
        .filter(|l| l.contains("\"event\":\"rlhf\""))
        .map(|l| {
            let v = serde_json::from_str::<serde_json::Value>(l).unwrap();
            (v["step"].as_u64().unwrap(), v["kl_coef"].as_f64())
        })
        .collect();
    assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    let straight_metrics =
        std::fs::read_to_string(setup.dir.join(format!("{straight}/metrics.jsonl"))).unwrap();
    let last_beta = straight_metrics
        .lines()
        .filter(|l| l.contains("\"event\":\"rlhf\""))
        .filter_map(|l| {
            let v = serde_json::from_str::<serde_json::Value>(l).unwrap();
            v["kl_coef"].as_f64()
        })
        .next_back();
    assert_eq!(
        steps[2].1, last_beta,
        "{prefix}: the KL coefficient was not resumed"
    );
}

#[test]
fn resuming_continues_exactly_where_the_run_stopped() {
    check_resume("resume-remax", &remax_config(sorting_setup()));
}

#[test]
fn resuming_ppo_restores_the_critic_and_the_adaptive_kl_coefficient() {
    let mut config = ppo_config(sorting_setup());
    config.ppo.adaptive_kl = true;
    config.ppo.kl_target = 0.01;
    config.ppo.kl_horizon = 50.0;
    check_resume("resume-ppo", &config);
    config.ppo.critic = CriticKind::Shared;
    check_resume("resume-ppo-shared", &config);
}

fn ppo_config(setup: &SortingSetup) -> RunConfig {
    RunConfig {
        algorithm: Algorithm::Ppo,
        ..remax_config(setup)
    }
}

fn load_initial_distance(initial: &Path, trained: &[(String, tch::Tensor)]) -> f64 {
    let init = Checkpoint::load(initial, Device::Cpu, Kind::Float)
        .unwrap()
        .model
        .named_parameters();
    init.iter()
        .zip(trained)
        .map(|((_, a), (_, b))| (a - b).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn a_nan_reward_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = remax_config(setup);
    config.eval.data = None;
    config.steps = 1;
    run("nan-guard", &config, false).unwrap();
    // A reward model whose head is NaN: the next step's rewards are NaN.
    let rm_dir = setup.dir.join("nan-rm");
    let mut rm = RewardModel::from_causal_lm(&setup.sft, Device::Cpu, Kind::Float).unwrap();
    rm.score = rm.score.fill(f64::NAN);
    let tok = Checkpoint::load(&setup.sft, Device::Cpu, Kind::Float)
        .unwrap()
        .tokenizer
        .unwrap();
    rm.save(&rm_dir, Some(&tok)).unwrap();
    config.steps = 2;
    config.reward.kind = RewardKind::Model;
    config.reward.model = Some(rm_dir);
    let err = run("nan-guard", &config, true).unwrap_err().to_string();
    assert!(err.contains("diverged") && err.contains("NaN"), "{err}");
    let checkpoints: Vec<String> = std::fs::read_dir(setup.dir.join("nan-guard/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(checkpoints, ["step-000000000001"]);
    let metrics = std::fs::read_to_string(setup.dir.join("nan-guard/metrics.jsonl")).unwrap();
    let last = metrics.lines().last().unwrap();
    assert!(
        last.contains("\"finish\"") && last.contains("NaN"),
        "{last}"
    );
}

/// A learning rate that makes the weights infinite stops the run at that step, naming the
/// tensor; nothing of it is saved (the earlier checkpoint stays the latest).
#[test]
fn non_finite_weights_stop_the_run_before_anything_is_saved() {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = remax_config(setup);
    config.eval.data = None;
    config.steps = 1;
    run("inf-guard", &config, false).unwrap();
    config.steps = 3;
    config.learning_rate = 3e38;
    let err = run("inf-guard", &config, true).unwrap_err().to_string();
    assert!(
        err.contains("parameter `") && err.contains("holds NaN or infinite values"),
        "{err}"
    );
    let checkpoints: Vec<String> = std::fs::read_dir(setup.dir.join("inf-guard/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(checkpoints, ["step-000000000001"]);
}

/// Small budget (CI): ReMax with the exact-match reward raises greedy accuracy on held-out
/// sorting prompts. The full bar (+30 points in 5 minutes) is configs/remax_sort.toml.
#[test]
fn remax_raises_sorting_accuracy() {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = remax_config(setup);
    config.steps = 20;
    config.prompts_per_step = 64;
    config.learning_rate = 3e-4;
    let mut rewards = Vec::new();
    let summary = run_rlhf(
        &RunDir::create(&setup.dir.join("remax-sort")).unwrap(),
        &config,
        StartOptions::default(),
        None,
        &mut |m| {
            if let RunMessage::Step(s) = m {
                rewards.push(s.reward_mean);
            }
        },
    )
    .unwrap();
    let (before, after) = (
        summary.initial_accuracy.unwrap(),
        summary.final_accuracy.unwrap(),
    );
    eprintln!("remax sorting: greedy accuracy {before:.3} -> {after:.3}; rewards {rewards:?}");
    assert!(after >= before + 0.10, "{before:.3} -> {after:.3}");
}

/// Small budget (CI): PPO (separate critic, TRL's defaults) with the exact-match reward raises
/// greedy accuracy on held-out sorting prompts; the checkpoint's critic loads as a
/// sequence-classification model. The full bar is configs/ppo_sort.toml.
#[test]
fn ppo_raises_sorting_accuracy() {
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let mut config = ppo_config(setup);
    config.steps = 20;
    config.prompts_per_step = 64;
    config.learning_rate = 3e-4;
    let mut steps = Vec::new();
    let summary = run_rlhf(
        &RunDir::create(&setup.dir.join("ppo-sort")).unwrap(),
        &config,
        StartOptions::default(),
        None,
        &mut |m| {
            if let RunMessage::Step(s) = m {
                steps.push(s.clone());
            }
        },
    )
    .unwrap();
    let (before, after) = (
        summary.initial_accuracy.unwrap(),
        summary.final_accuracy.unwrap(),
    );
    let rewards: Vec<f64> = steps.iter().map(|s| s.reward_mean).collect();
    eprintln!("ppo sorting: greedy accuracy {before:.3} -> {after:.3}; rewards {rewards:?}");
    assert!(after >= before + 0.10, "{before:.3} -> {after:.3}");
    for s in &steps {
        assert!(s.value_loss.is_some_and(f64::is_finite), "{s:?}");
        assert_eq!(s.kl_coef, Some(0.05));
        assert!(s.baseline_reward_mean.is_none());
    }
    let critic = summary.last_checkpoint.unwrap().join(ppo::CRITIC_DIR);
    let model = RewardModel::load(&critic, Device::Cpu, Kind::Float).unwrap();
    assert_eq!(model.score.size(), [1, 64]);
}

/// Best-of-N with the self-reward beats a single sample on the sorting SFT model (the model
/// puts more mass on right answers than on any one wrong one).
#[test]
fn best_of_n_with_the_self_reward_beats_one_sample() {
    use hone_rlhf::run::{Prompts, Tokens};
    use hone_rlhf::sharpen::{accuracy_vs_n, sample_candidates};
    let setup = sorting_setup();
    let _lock = sampling_lock();
    let ckpt = Checkpoint::load(&setup.sft, Device::Cpu, Kind::Float).unwrap();
    let tok = ckpt.tokenizer().unwrap();
    let prompts = Prompts::load(&setup.eval, tok, false, 64, 8, true, 0).unwrap();
    tch::manual_seed(5);
    let config = GenerateConfig {
        max_new_tokens: 8,
        sampling: Some(Default::default()),
        use_cache: true,
    };
    let tokens = Tokens::of(&ckpt.generation);
    let candidates =
        sample_candidates(&ckpt.model, tok, &prompts, &tokens, 8, &config, false, 25).unwrap();
    assert_eq!(candidates.len(), prompts.len());
    let acc = accuracy_vs_n(&candidates, &prompts.answers, Rule::ExactMatch, &[1, 2, 8]).unwrap();
    eprintln!("best-of-N on sorting: {acc:?}");
    assert!(acc[2].1 >= acc[0].1 + 0.15, "{acc:?}");
    assert!(acc[1].1 >= acc[0].1, "{acc:?}");
}

/// The decoy task after SFT: greedy decoding starts with the decoy token (wrong), while the
/// model's single most likely answer is right.
fn decoy_setup() -> &'static (PathBuf, PathBuf, PathBuf) {
    static SETUP: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = temp_dir("decoy");
        let train = dir.join("train.jsonl");
        let eval = dir.join("eval.jsonl");
        tasks::write_jsonl(&train, &tasks::decoy(4000, 3, 5, 0.4, 1).unwrap()).unwrap();
        tasks::write_jsonl(&eval, &tasks::decoy(100, 3, 5, 0.4, 2).unwrap()).unwrap();
        let init = dir.join("init");
        create_random_checkpoint(
            &InitSpec {
                max_positions: 64,
                ..InitSpec::default()
            },
            &init,
            true,
        )
        .unwrap();
        let config = TrainConfig {
            model: init,
            data: train.clone(),
            learning_rate: 3e-3,
            batch_size: 32,
            epochs: 8,
            max_steps: 800,
            max_length: 32,
            device: "cpu".into(),
            ..TrainConfig::default()
        };
        let run = RunDir::create(&dir.join("sft")).unwrap();
        let sft = run_sft(&run, &config, &mut |_| {})
            .unwrap()
            .last_checkpoint
            .unwrap();
        (dir, sft, train)
    })
}

/// Inference-time sharpening and RLHF-sharpening (ReMax with the base model's log-likelihood
/// as the reward) both beat greedy decoding on the decoy task. Full figures: the closing note.
#[test]
fn sharpening_beats_greedy_on_the_decoy_task() {
    use hone_rlhf::run::{Prompts, Tokens};
    use hone_rlhf::sharpen::{accuracy_vs_n, sample_candidates};
    let (dir, sft, train) = decoy_setup();
    let eval = dir.join("eval.jsonl");
    let _lock = sampling_lock();
    let ckpt = Checkpoint::load(sft, Device::Cpu, Kind::Float).unwrap();
    let tok = ckpt.tokenizer().unwrap();
    let prompts = Prompts::load(&eval, tok, false, 64, 8, true, 0).unwrap();
    let tokens = Tokens::of(&ckpt.generation);
    tch::manual_seed(7);
    let config = GenerateConfig {
        max_new_tokens: 8,
        sampling: Some(Default::default()),
        use_cache: true,
    };
    let candidates =
        sample_candidates(&ckpt.model, tok, &prompts, &tokens, 16, &config, false, 25).unwrap();
    let bon = accuracy_vs_n(&candidates, &prompts.answers, Rule::ExactMatch, &[1, 16]).unwrap();

    let mut config = RunConfig {
        policy: sft.clone(),
        data: train.clone(),
        steps: 20,
        prompts_per_step: 64,
        learning_rate: 3e-4,
        device: "cpu".into(),
        ..RunConfig::default()
    };
    config.generation.max_new_tokens = 8;
    config.generation.top_p = None;
    config.reward.kind = RewardKind::SelfReward;
    config.remax.kl_coef = 0.05;
    config.eval.data = Some(eval);
    let summary = run_rlhf(
        &RunDir::create(&dir.join("rl-sharpen")).unwrap(),
        &config,
        StartOptions::default(),
        None,
        &mut |_| {},
    )
    .unwrap();
    let (greedy, after) = (
        summary.initial_accuracy.unwrap(),
        summary.final_accuracy.unwrap(),
    );
    eprintln!("decoy: greedy {greedy:.3}, best-of-N {bon:?}, RLHF-sharpened greedy {after:.3}");
    assert!(
        greedy < 0.15,
        "greedy decoding should fall for the decoy: {greedy}"
    );
    assert!(
        bon[1].1 >= greedy + 0.4,
        "best-of-16 {bon:?} vs greedy {greedy}"
    );
    assert!(
        after >= greedy + 0.4,
        "RLHF-sharpening: {greedy} -> {after}"
    );
}
