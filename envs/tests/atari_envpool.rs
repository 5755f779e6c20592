//! `AtariEnv` against envpool 1.2.7 (feature `atari`): the trajectories that
//! `scripts/record_envpool_atari.py` recorded (envs/tests/data/envpool_atari_<rom>.jsonl) replay
//! with the same observations (sha256 of the uint8 stack), rewards, lives and flags at every step,
//! across life loss, fire reset, autoreset, truncation, noop starts and sticky actions; directly
//! and through the pool.

use hone_envs::atari::{AtariEnv, AtariOptions};
use hone_envs::{EnvPool, Error, PoolConfig};

/// One recorded run: its name, game, options and steps (the reset first, action -1).
struct Run {
    name: String,
    game: String,
    options: AtariOptions,
    steps: Vec<Record>,
}

#[derive(Debug, PartialEq)]
struct Record {
    action: i64,
    obs: String,
    reward: f32,
    info_reward: f32,
    terminated: bool,
    truncated: bool,
    lives: i32,
    game_over: bool,
    elapsed_step: i32,
}

/// The text between `"key": ` and the next `,` or `}` of a flat JSON object.
fn field<'a>(object: &'a str, key: &str) -> &'a str {
    let start = object
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("no {key} in {object}"))
        + key.len()
        + 4;
    let rest = &object[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"')
}

fn options_of(header: &str) -> AtariOptions {
    let start = header.find("\"options\": {").expect("options") + 12;
    let end = start + header[start..].find('}').expect("options end");
    let mut options = AtariOptions {
        seed: field(header, "seed").parse().unwrap(),
        ..AtariOptions::default()
    };
    for pair in header[start..end].split(", ").filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(": ").unwrap();
        let flag = value == "true";
        match key.trim_matches('"') {
            "noop_max" => options.noop_max = value.parse().unwrap(),
            "max_episode_steps" => options.max_episode_steps = value.parse().unwrap(),
            "frame_skip" => options.frame_skip = value.parse().unwrap(),
            "stack_num" => options.stack_num = value.parse().unwrap(),
            "img_height" => options.img_height = value.parse().unwrap(),
            "img_width" => options.img_width = value.parse().unwrap(),
            "repeat_action_probability" => {
                options.repeat_action_probability = value.parse().unwrap()
            }
            "episodic_life" => options.episodic_life = flag,
            "reward_clip" => options.reward_clip = flag,
            other => panic!("option {other} is not replayed"),
        }
    }
    options
}

fn record_of(line: &str) -> Record {
    let parts: Vec<&str> = line
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|p| p.trim_matches('"'))
        .collect();
    assert_eq!(parts.len(), 9, "{line}");
    let flag = |i: usize| parts[i] == "1";
    Record {
        action: parts[0].parse().unwrap(),
        obs: parts[1].to_owned(),
        reward: parts[2].parse::<f64>().unwrap() as f32,
        info_reward: parts[3].parse::<f64>().unwrap() as f32,
        terminated: flag(4),
        truncated: flag(5),
        lives: parts[6].parse().unwrap(),
        game_over: flag(7),
        elapsed_step: parts[8].parse().unwrap(),
    }
}

fn runs(rom: &str) -> Vec<Run> {
    let path = format!(
        "{}/tests/data/envpool_atari_{rom}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut runs: Vec<Run> = Vec::new();
    for line in text.lines() {
        if line.starts_with('{') {
            assert_eq!(field(line, "envpool"), "1.2.7");
            runs.push(Run {
                name: field(line, "run").to_owned(),
                game: field(line, "task_id").trim_end_matches("-v5").to_owned(),
                options: options_of(line),
                steps: Vec::new(),
            });
        } else {
            runs.last_mut()
                .expect("a header first")
                .steps
                .push(record_of(line));
        }
    }
    runs
}

/// Replays every run of `rom`'s file; returns the first mismatch of each run that has one.
fn replay(rom: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let runs = runs(rom);
    assert!(!runs.is_empty());
    for run in runs {
        let mut env = AtariEnv::new(&run.game, &run.options, 0).unwrap();
        let (s, h, w) = env.observation_shape();
        let mut obs = vec![0u8; s * h * w];
        for (i, expected) in run.steps.iter().enumerate() {
            let step = if expected.action < 0 {
                env.reset(&mut obs).unwrap()
            } else {
                env.step(expected.action, &mut obs).unwrap()
            };
            let got = Record {
                action: expected.action,
                obs: sha256_hex16(&obs),
                reward: step.reward,
                info_reward: step.info_reward,
                terminated: step.terminated,
                truncated: step.truncated,
                lives: step.lives,
                game_over: step.game_over,
                elapsed_step: step.elapsed_step,
            };
            if &got != expected {
                failures.push(format!(
                    "{}: step {i} of {}\n  envpool {expected:?}\n  hone    {got:?}",
                    run.name,
                    run.steps.len()
                ));
                break;
            }
        }
    }
    failures
}

/// [`replay`] through a one-env `EnvPool<u8>` of the run's `-v5` id, its options passed by name:
/// the pool's own autoreset (`NextStep`) plays envpool's. The batch has no `game_over` or per-game
/// `elapsed_step`, so those are taken as recorded.
fn replay_pool(rom: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for run in runs(rom) {
        let o = &run.options;
        let config = PoolConfig::new(format!("{}-v5", run.game), 1)
            .num_threads(1)
            .seed(o.seed as u64)
            .max_episode_steps(o.max_episode_steps as u32)
            .option("noop_max", o.noop_max)
            .option("frame_skip", o.frame_skip)
            .option("stack_num", o.stack_num)
            .option("img_height", o.img_height)
            .option("img_width", o.img_width)
            .option("repeat_action_probability", o.repeat_action_probability)
            .option("episodic_life", o.episodic_life)
            .option("reward_clip", o.reward_clip);
        let mut pool = EnvPool::<u8>::make(config).unwrap();
        for (i, expected) in run.steps.iter().enumerate() {
            let batch = if expected.action < 0 {
                pool.reset().unwrap()
            } else {
                pool.step(&[expected.action]).unwrap()
            };
            let got = Record {
                action: expected.action,
                obs: sha256_hex16(batch.observations),
                reward: batch.reward[0],
                info_reward: batch.raw_reward[0],
                terminated: batch.terminated[0],
                truncated: batch.truncated[0],
                lives: batch.lives[0],
                game_over: expected.game_over,
                elapsed_step: expected.elapsed_step,
            };
            if &got != expected {
                failures.push(format!(
                    "{} (pool): step {i} of {}\n  envpool {expected:?}\n  hone    {got:?}",
                    run.name,
                    run.steps.len()
                ));
                break;
            }
        }
    }
    failures
}

#[test]
fn every_recording_replays_through_the_pool() {
    let failures: Vec<String> = ["pong", "breakout", "space_invaders", "seaquest"]
        .into_iter()
        .flat_map(replay_pool)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn assert_replays(rom: &str) {
    let failures = replay(rom);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pong_equals_envpool() {
    // Noop starts off and noop_max 30, a game over and its autoreset, truncation at
    // max_episode_steps and the autoreset after it, sticky actions (0.25).
    assert_replays("pong");
}

#[test]
fn breakout_equals_envpool() {
    // episodic_life and reward_clip off and on, noop_max 30 with soft resets drawing noops,
    // frame_skip 3, stack_num 2 and a 100×80 resize.
    assert_replays("breakout");
}

#[test]
fn space_invaders_equals_envpool() {
    // Fire reset at every (soft) reset, rewards above 1 clipped and not.
    assert_replays("space_invaders");
}

#[test]
fn seaquest_equals_envpool() {
    // Lives, fire reset, episodic_life.
    assert_replays("seaquest");
}

#[test]
fn the_recordings_cover_what_they_claim() {
    let all: Vec<Run> = ["pong", "breakout", "space_invaders", "seaquest"]
        .into_iter()
        .flat_map(runs)
        .collect();
    let count = |f: &dyn Fn(&Run, &Record) -> bool| {
        all.iter()
            .map(|run| run.steps.iter().filter(|r| f(run, r)).count())
            .sum::<usize>()
    };
    let life_loss_with_episodic_life =
        count(&|run, r| run.options.episodic_life && r.terminated && !r.game_over);
    assert!(life_loss_with_episodic_life >= 10);
    assert!(count(&|_, r| r.game_over) >= 5);
    assert!(count(&|_, r| r.truncated) >= 2);
    assert!(count(&|run, _| run.options.noop_max == 30) > 0);
    assert!(count(&|run, r| run.options.reward_clip && r.info_reward > 1.0) > 0);
    assert!(count(&|run, r| !run.options.reward_clip && r.reward > 1.0) > 0);
}

#[test]
fn bad_options_actions_and_buffers_are_clear_errors() {
    let make = |options: AtariOptions| AtariEnv::new("Pong", &options, 0).err().unwrap();
    let message = |options: AtariOptions| make(options).to_string();
    let base = AtariOptions::default;
    assert!(
        message(AtariOptions {
            noop_max: 0,
            ..base()
        })
        .contains("noop_max is 0")
    );
    assert!(
        message(AtariOptions {
            frame_skip: 0,
            ..base()
        })
        .contains("frame_skip 0")
    );
    assert!(
        message(AtariOptions {
            stack_num: 0,
            ..base()
        })
        .contains("stack_num is 0")
    );
    assert!(
        message(AtariOptions {
            max_episode_steps: 0,
            ..base()
        })
        .contains("max_episode_steps")
    );
    assert!(
        message(AtariOptions {
            img_height: 211,
            ..base()
        })
        .contains("211×84")
    );
    assert!(
        message(AtariOptions {
            img_width: 0,
            ..base()
        })
        .contains("84×0")
    );
    assert!(message(AtariOptions { seed: -1, ..base() }).contains("seed -1"));
    assert!(message(AtariOptions { mode: 2, ..base() }).contains("mode 2"));
    assert!(
        message(AtariOptions {
            gray_scale: false,
            ..base()
        })
        .contains("gray_scale")
    );
    let sticky = AtariOptions {
        repeat_action_probability: 1.5,
        ..base()
    };
    assert!(message(sticky).contains("repeat_action_probability is 1.5"));
    assert!(matches!(
        make(AtariOptions {
            noop_max: -3,
            ..base()
        }),
        Error::InvalidConfig(_)
    ));
    let err = AtariEnv::new("Pongg", &base(), 0).err().unwrap();
    assert!(matches!(err, Error::UnknownGame { .. }), "{err}");

    // Pong's minimal action set has 6 actions; the env stays usable after an error.
    let mut env = AtariEnv::new("Pong", &base(), 0).unwrap();
    assert_eq!(env.num_actions(), 6);
    let mut obs = vec![0u8; 4 * 84 * 84];
    env.reset(&mut obs).unwrap();
    for bad in [6, -1, i64::MAX] {
        let err = env.step(bad, &mut obs).unwrap_err();
        assert!(matches!(err, Error::ActionOutOfRange { n: 6, .. }), "{err}");
    }
    let err = env.step(0, &mut [0u8; 10]).unwrap_err();
    assert!(err.to_string().contains("4×84×84 needs 28224"), "{err}");
    assert_eq!(env.step(5, &mut obs).unwrap().elapsed_step, 1);
    let full = AtariEnv::new(
        "Pong",
        &AtariOptions {
            full_action_space: true,
            ..base()
        },
        0,
    );
    assert_eq!(full.unwrap().num_actions(), 18);
}

#[test]
fn fire_reset_follows_the_action_set_and_the_option() {
    let fire =
        |game: &str, options: AtariOptions| AtariEnv::new(game, &options, 0).unwrap().fire_reset();
    assert!(fire("Breakout", AtariOptions::default()));
    assert!(!fire(
        "Breakout",
        AtariOptions {
            use_fire_reset: false,
            ..AtariOptions::default()
        }
    ));
    // Freeway's minimal set has no FIRE; the full action space has (h:151-158).
    assert!(!fire("Freeway", AtariOptions::default()));
    assert!(fire(
        "Freeway",
        AtariOptions {
            full_action_space: true,
            ..AtariOptions::default()
        }
    ));
}

#[test]
fn zero_discount_on_life_loss_zeroes_the_discount_but_does_not_end_the_episode() {
    let options = AtariOptions {
        noop_max: 1,
        zero_discount_on_life_loss: true,
        ..AtariOptions::default()
    };
    let mut env = AtariEnv::new("Breakout", &options, 0).unwrap();
    let mut obs = vec![0u8; 4 * 84 * 84];
    let mut lives = env.reset(&mut obs).unwrap().lives;
    let mut losses = 0;
    for _ in 0..400 {
        let step = env.step(0, &mut obs).unwrap();
        if step.lives < lives && !step.game_over {
            losses += 1;
            assert_eq!(step.discount, 0.0);
            assert!(!step.terminated);
        } else if !step.terminated {
            assert_eq!(step.discount, 1.0);
        }
        lives = step.lives;
    }
    assert!(losses > 0);
}

#[test]
fn envs_of_a_pool_draw_their_noops_from_seed_plus_env_id() {
    // Env 1 of seed 6 is env 0 of seed 7.
    let options = |seed| AtariOptions {
        seed,
        ..AtariOptions::default()
    };
    let mut a = AtariEnv::new("Breakout", &options(6), 1).unwrap();
    let mut b = AtariEnv::new("Breakout", &options(7), 0).unwrap();
    let mut c = AtariEnv::new("Breakout", &options(7), 1).unwrap();
    let (mut oa, mut ob, mut oc) = (vec![0u8; 28224], vec![0u8; 28224], vec![0u8; 28224]);
    let mut differs = false;
    for _ in 0..5 {
        a.reset(&mut oa).unwrap();
        b.reset(&mut ob).unwrap();
        c.reset(&mut oc).unwrap();
        for action in [1, 2, 3] {
            a.step(action, &mut oa).unwrap();
            b.step(action, &mut ob).unwrap();
            c.step(action, &mut oc).unwrap();
        }
        assert_eq!(oa, ob);
        differs |= oa != oc;
    }
    assert!(differs);
}

#[test]
fn saved_states_resume_bit_exactly() {
    // Noop starts (the no-op generator) and soft resets. Sticky actions are refused: ALE's state
    // omits the action they repeat.
    let sticky = AtariOptions {
        repeat_action_probability: 0.25,
        ..AtariOptions::default()
    };
    let err = AtariEnv::new("Breakout", &sticky, 0)
        .unwrap()
        .save_state()
        .unwrap_err();
    assert!(
        err.to_string().contains("repeat_action_probability = 0.25"),
        "{err}"
    );
    let options = AtariOptions {
        noop_max: 30,
        episodic_life: true,
        ..AtariOptions::default()
    };
    let mut env = AtariEnv::new("Breakout", &options, 0).unwrap();
    let mut obs = vec![0u8; 4 * 84 * 84];
    env.reset(&mut obs).unwrap();
    let actions: Vec<i64> = (0..600).map(|i| (i * 7 % 11 % 4) as i64).collect();
    for &action in &actions[..300] {
        env.step(action, &mut obs).unwrap();
    }
    let saved = env.save_state().unwrap();
    let run = |env: &mut AtariEnv| {
        let mut obs = vec![0u8; 4 * 84 * 84];
        let mut trace = Vec::new();
        for &action in &actions[300..] {
            let step = env.step(action, &mut obs).unwrap();
            trace.push((step, sha256_hex16(&obs)));
        }
        trace
    };
    let expected = run(&mut env);
    assert!(expected.iter().any(|(step, _)| step.terminated));
    env.load_state(&saved).unwrap();
    assert_eq!(run(&mut env), expected);
    // Into another env of the same game and options.
    let mut other = AtariEnv::new("Breakout", &options, 5).unwrap();
    other.load_state(&saved).unwrap();
    assert_eq!(run(&mut other), expected);

    // States that do not fit are errors that leave the env usable.
    let shapes = AtariOptions {
        stack_num: 2,
        ..options.clone()
    };
    let mut small = AtariEnv::new("Breakout", &shapes, 0).unwrap();
    let err = small.load_state(&saved).unwrap_err();
    assert!(err.to_string().contains("frame stack"), "{err}");
    assert!(env.load_state(&saved[..100]).is_err());
    let mut pong = AtariEnv::new("Pong", &options, 0).unwrap();
    assert!(pong.load_state(&saved).is_err());
    env.load_state(&saved).unwrap();
    assert_eq!(run(&mut env), expected);
}

#[test]
fn sha256_matches_known_digests() {
    assert_eq!(sha256_hex16(b""), "e3b0c44298fc1c14");
    assert_eq!(sha256_hex16(b"abc"), "ba7816bf8f01cfea");
    // Two blocks of padding.
    let long = [b'a'; 1000];
    assert_eq!(sha256_hex16(&long), "41edece42d63e8d9");
}

/// The first 16 hex digits of SHA-256 (FIPS 180-4), as the recordings store observations.
fn sha256_hex16(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut tail = data[data.len() / 64 * 64..].to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    let blocks = data.chunks_exact(64).chain(tail.chunks_exact(64));
    for block in blocks {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    format!("{:08x}{:08x}", h[0], h[1])
}
