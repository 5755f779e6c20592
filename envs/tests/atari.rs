//! The raw ALE emulator (feature `atari`): ROMs load, frames run, screens read, states round-trip
//! bit for bit, and bad input is an error rather than ALE ending the process.

use hone_envs::Error;
use hone_envs::atari::{Ale, AleOptions, FIRE, NOOP, rom_path};

fn load(game: &str, options: &AleOptions) -> Ale {
    Ale::new(&rom_path(game).unwrap(), options).unwrap()
}

/// A reproducible action stream over `actions` (an LCG; its quality does not matter here).
struct Actions<'a> {
    state: u64,
    actions: &'a [i32],
}

impl Iterator for Actions<'_> {
    type Item = i32;
    fn next(&mut self) -> Option<i32> {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Some(self.actions[(self.state >> 33) as usize % self.actions.len()])
    }
}

#[test]
fn pong_loads_with_its_six_actions_and_a_210x160_screen() {
    let ale = load("Pong", &AleOptions::default());
    // NOOP, FIRE, RIGHT, LEFT, RIGHTFIRE, LEFTFIRE (ALE's Pong minimal set).
    assert_eq!(ale.minimal_action_set(), &[0, 1, 3, 4, 11, 12]);
    assert_eq!(
        ale.legal_action_set(),
        (0..18).collect::<Vec<i32>>().as_slice()
    );
    assert_eq!(ale.screen_size(), (210, 160));
    assert!(ale.rom().ends_with("pong.bin"));

    let breakout = load("Breakout", &AleOptions::default());
    assert_eq!(breakout.minimal_action_set().len(), 4);
    assert_eq!(breakout.lives(), 5);
}

#[test]
fn pong_runs_200_frames_and_its_screens_agree() {
    let mut ale = load("Pong", &AleOptions::default());
    ale.reset().unwrap();
    let (frame, episode_frame) = (ale.frame_number(), ale.episode_frame_number());
    let mut total = 0;
    for i in 0..200 {
        total += ale.act(if i % 2 == 0 { NOOP } else { FIRE }).unwrap();
    }
    assert_eq!(ale.frame_number(), frame + 200);
    assert_eq!(ale.episode_frame_number(), episode_frame + 200);
    assert!(!ale.game_over(true));
    assert!((-21..=21).contains(&total));

    let (height, width) = ale.screen_size();
    let mut gray = vec![0; height * width];
    let mut rgb = vec![0; height * width * 3];
    ale.screen_grayscale(&mut gray).unwrap();
    ale.screen_rgb(&mut rgb).unwrap();
    // The same palette entry gives one gray value: equal colours map to equal grays.
    let mut gray_of = std::collections::HashMap::new();
    for (pixel, &g) in rgb.chunks_exact(3).zip(&gray) {
        assert_eq!(*gray_of.entry(pixel).or_insert(g), g);
    }
    assert!(
        gray_of.len() >= 3,
        "Pong's screen has a field, paddles and a ball"
    );

    let err = ale.screen_rgb(&mut gray).unwrap_err();
    assert!(err.to_string().contains("100800"), "{err}");
}

#[test]
fn clone_and_restore_with_the_rng_replay_100_frames_exactly() {
    // Sticky actions on, so that the RNG's state matters.
    let options = AleOptions {
        seed: 7,
        repeat_action_probability: 0.25,
        ..AleOptions::default()
    };
    let minimal = load("Pong", &options).minimal_action_set().to_vec();
    let actions = |seed| Actions {
        state: seed,
        actions: &minimal,
    };

    // The first point of a seeded game, to have a reward inside the replayed window.
    let mut ale = load("Pong", &options);
    let first_reward = actions(1)
        .take(20_000)
        .position(|action| ale.act(action).unwrap() != 0)
        .expect("a point within 20000 frames");
    assert!(first_reward >= 50, "a point after {first_reward} frames");

    // The same game again (seeded ALE is deterministic), cloned 50 frames before that point.
    let mut ale = load("Pong", &options);
    let mut stream = actions(1);
    for action in stream.by_ref().take(first_reward - 50) {
        ale.act(action).unwrap();
    }
    let state = ale.clone_state(true).unwrap();
    let window: Vec<i32> = stream.take(100).collect();
    let play = |ale: &mut Ale| {
        let mut screens = Vec::new();
        let mut rewards = Vec::new();
        for &action in &window {
            rewards.push(ale.act(action).unwrap());
            let mut screen = vec![0; 210 * 160 * 3];
            ale.screen_rgb(&mut screen).unwrap();
            screens.push(screen);
        }
        (
            screens,
            rewards,
            ale.frame_number(),
            ale.clone_state(true).unwrap(),
        )
    };
    let first = play(&mut ale);
    ale.restore_state(&state).unwrap();
    let second = play(&mut ale);
    assert!(
        first.1.iter().any(|&r| r != 0),
        "the window holds the point"
    );
    assert!(first.0.windows(2).any(|w| w[0] != w[1]), "the screens move");
    assert!(first.0 == second.0, "screens differ after restore");
    assert_eq!(first.1, second.1);
    assert_eq!(first.2, second.2);
    assert_eq!(first.3, second.3);

    // The state restores into another emulator of the same game too.
    let mut other = load("Pong", &AleOptions::default());
    other.restore_state(&state).unwrap();
    let third = play(&mut other);
    assert!(first.0 == third.0 && first.1 == third.1);
}

#[test]
fn bad_states_are_errors_and_the_emulator_stays_usable() {
    let mut pong = load("Pong", &AleOptions::default());
    let mut breakout = load("Breakout", &AleOptions::default());
    let pong_state = pong.clone_state(true).unwrap();
    let breakout_state = breakout.clone_state(true).unwrap();

    let err = breakout.restore_state(&pong_state).unwrap_err();
    assert!(
        err.to_string().contains("not an ALE state of this game"),
        "{err}"
    );
    for bad in [
        &[][..],
        &[0; 7][..],
        &pong_state[..pong_state.len() - 1],
        &[0xff; 64][..],
    ] {
        assert!(pong.restore_state(bad).is_err());
    }
    // Unchanged by the refused states.
    assert_eq!(breakout.clone_state(true).unwrap(), breakout_state);
    pong.act(FIRE).unwrap();
    pong.restore_state(&pong_state).unwrap();
    assert_eq!(pong.clone_state(true).unwrap(), pong_state);
}

#[test]
fn missing_and_unsupported_roms_are_clear_errors() {
    let missing = std::path::Path::new("/nonexistent/pong.bin");
    let err = Ale::new(missing, &AleOptions::default()).err().unwrap();
    assert!(matches!(err, Error::RomMissing { .. }));
    let message = err.to_string();
    assert!(message.contains("/nonexistent/pong.bin") && message.contains("scripts/setup.sh"));

    // A file that is no ROM ALE knows: ALE itself would exit the process.
    let junk = std::env::temp_dir().join(format!("hone-atari-junk-{}.bin", std::process::id()));
    std::fs::write(&junk, [0x42u8; 4096]).unwrap();
    let err = Ale::new(&junk, &AleOptions::default()).err().unwrap();
    std::fs::remove_file(&junk).unwrap();
    assert!(
        err.to_string()
            .contains("not one of the ROMs ALE 0.12.1 supports"),
        "{err}"
    );
}

#[test]
fn out_of_range_actions_and_options_are_errors() {
    let mut ale = load("Pong", &AleOptions::default());
    for action in [-1, 18, i32::MAX] {
        let err = ale.act(action).unwrap_err();
        assert!(
            err.to_string().contains(&format!("action {action}")),
            "{err}"
        );
    }
    ale.act(NOOP).unwrap();

    let pong = rom_path("Pong").unwrap();
    for options in [
        AleOptions {
            seed: -1,
            ..AleOptions::default()
        },
        AleOptions {
            repeat_action_probability: 1.5,
            ..AleOptions::default()
        },
        AleOptions {
            repeat_action_probability: f32::NAN,
            ..AleOptions::default()
        },
        AleOptions {
            max_num_frames_per_episode: -5,
            ..AleOptions::default()
        },
    ] {
        assert!(
            matches!(Ale::new(&pong, &options), Err(Error::Ale(_))),
            "{options:?}"
        );
    }
}

#[test]
fn truncation_and_a_moved_emulator() {
    let options = AleOptions {
        max_num_frames_per_episode: 30,
        ..AleOptions::default()
    };
    let mut ale = load("Pong", &options);
    // Send: the emulator runs on another thread.
    let ale = std::thread::spawn(move || {
        ale.reset().unwrap();
        while !ale.game_over(true) {
            ale.act(NOOP).unwrap();
        }
        ale
    })
    .join()
    .unwrap();
    assert!(ale.game_truncated());
    assert!(!ale.game_over(false));
    assert_eq!(ale.episode_frame_number(), 30);
}
