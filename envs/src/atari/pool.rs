//! The Atari tasks of the pool: `Pong-v5`, `Breakout-v5`, ... as envpool registers them
//! (`envpool/atari/registration.py`: `max_episode_steps=27000`, one id per ROM), with envpool's
//! options passed by name through `PoolConfig::options`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use super::{AtariEnv, AtariOptions};
use crate::error::{Error, Result, closest};
use crate::pool::{EnvOption, EnvPool, PoolConfig};
use crate::registry::Registry;

/// envpool's 104 games (its docs/env/atari.rst; ALE's other four ROMs, Combat, Joust, MazeCraze
/// and Warlords, are multiplayer-only and not registered), by game id: the task is `{game}-v5`.
#[rustfmt::skip]
pub const GAMES: [&str; 104] = [
    "Adventure", "AirRaid", "Alien", "Amidar", "Assault", "Asterix", "Asteroids", "Atlantis",
    "Atlantis2", "Backgammon", "BankHeist", "BasicMath", "BattleZone", "BeamRider", "Berzerk",
    "Blackjack", "Bowling", "Boxing", "Breakout", "Carnival", "Casino", "Centipede",
    "ChopperCommand", "CrazyClimber", "Crossbow", "Darkchambers", "Defender", "DemonAttack",
    "DonkeyKong", "DoubleDunk", "Earthworld", "ElevatorAction", "Enduro", "Entombed", "Et",
    "FishingDerby", "FlagCapture", "Freeway", "Frogger", "Frostbite", "Galaxian", "Gopher",
    "Gravitar", "Hangman", "HauntedHouse", "Hero", "HumanCannonball", "IceHockey", "Jamesbond",
    "JourneyEscape", "Kaboom", "Kangaroo", "KeystoneKapers", "KingKong", "Klax", "Koolaid",
    "Krull", "KungFuMaster", "LaserGates", "LostLuggage", "MarioBros", "MiniatureGolf",
    "MontezumaRevenge", "MrDo", "MsPacman", "NameThisGame", "Othello", "Pacman", "Phoenix",
    "Pitfall", "Pitfall2", "Pong", "Pooyan", "PrivateEye", "Qbert", "Riverraid", "RoadRunner",
    "Robotank", "Seaquest", "SirLancelot", "Skiing", "Solaris", "SpaceInvaders", "SpaceWar",
    "StarGunner", "Superman", "Surround", "Tennis", "Tetris", "TicTacToe3d", "TimePilot",
    "Trondead", "Turmoil", "Tutankham", "UpNDown", "Venture", "VideoCheckers", "VideoChess",
    "VideoCube", "VideoPinball", "WizardOfWor", "WordZapper", "YarsRevenge", "Zaxxon",
];

/// envpool's `max_episode_steps` for every `-v5` id.
pub const MAX_EPISODE_STEPS: u32 = 27_000;

/// The option names `PoolConfig::options` may hold for an Atari task (envpool's config keys;
/// `seed` and `max_episode_steps` are `PoolConfig`'s own fields).
pub const OPTION_NAMES: [&str; 15] = [
    "stack_num",
    "frame_skip",
    "noop_max",
    "zero_discount_on_life_loss",
    "episodic_life",
    "reward_clip",
    "use_fire_reset",
    "img_height",
    "img_width",
    "mode",
    "difficulty",
    "full_action_space",
    "repeat_action_probability",
    "use_inter_area_resize",
    "gray_scale",
];

/// The `AtariOptions` of a pool config: its options over envpool's defaults, its seed and time
/// limit. Unknown names and values of the wrong type are errors naming them.
pub fn options_of(config: &PoolConfig, max_episode_steps: u32) -> Result<AtariOptions> {
    let bad = |message: String| Error::InvalidConfig(format!("Atari: {message}"));
    let mut options = AtariOptions {
        seed: i32::try_from(config.seed)
            .map_err(|_| bad(format!("seed {} must be at most 2147483647", config.seed)))?,
        max_episode_steps: i32::try_from(max_episode_steps).map_err(|_| {
            bad(format!(
                "max_episode_steps {max_episode_steps} must be at most 2147483647"
            ))
        })?,
        ..AtariOptions::default()
    };
    for (name, value) in &config.options {
        set(&mut options, name, value).map_err(|why| bad(format!("option `{name}`: {why}")))?;
    }
    Ok(options)
}

fn set(o: &mut AtariOptions, name: &str, value: &EnvOption) -> std::result::Result<(), String> {
    let count = |value: &EnvOption| -> std::result::Result<usize, String> {
        let n = value.as_int()?;
        usize::try_from(n).map_err(|_| format!("must be at least 0, got {n}"))
    };
    let int = |value: &EnvOption| -> std::result::Result<i32, String> {
        let n = value.as_int()?;
        i32::try_from(n).map_err(|_| format!("{n} is out of range"))
    };
    match name {
        "stack_num" => o.stack_num = count(value)?,
        "frame_skip" => o.frame_skip = count(value)?,
        "noop_max" => o.noop_max = int(value)?,
        "zero_discount_on_life_loss" => o.zero_discount_on_life_loss = value.as_bool()?,
        "episodic_life" => o.episodic_life = value.as_bool()?,
        "reward_clip" => o.reward_clip = value.as_bool()?,
        "use_fire_reset" => o.use_fire_reset = value.as_bool()?,
        "img_height" => o.img_height = count(value)?,
        "img_width" => o.img_width = count(value)?,
        "mode" => o.mode = int(value)?,
        "difficulty" => o.difficulty = int(value)?,
        "full_action_space" => o.full_action_space = value.as_bool()?,
        "repeat_action_probability" => o.repeat_action_probability = value.as_float()? as f32,
        "use_inter_area_resize" => o.use_inter_area_resize = value.as_bool()?,
        "gray_scale" => o.gray_scale = value.as_bool()?,
        _ => {
            return Err(format!(
                "unknown; closest: {}",
                closest(name, OPTION_NAMES.into_iter(), 3).join(", ")
            ));
        }
    }
    Ok(())
}

/// A pool of `game`: env `i` is `AtariEnv::new(game, options, i)`, seeded `seed + i` as envpool.
/// The time limit is the env's (envpool counts steps per game, which with `episodic_life` spans
/// episodes); the pool's, set to the same number, never ends an episode before it.
pub fn make_pool(game: &str, config: PoolConfig, max_episode_steps: u32) -> Result<EnvPool<u8>> {
    let limit = config.max_episode_steps.unwrap_or(max_episode_steps);
    let options = options_of(&config, limit)?;
    let next_id = AtomicI32::new(0);
    EnvPool::try_from_factory(config, max_episode_steps, || {
        AtariEnv::new(game, &options, next_id.fetch_add(1, Ordering::Relaxed))
    })
}

/// Registers `{game}-v5` for every game of `GAMES`.
pub(crate) fn register_tasks(registry: &mut Registry) -> Result<()> {
    for game in GAMES {
        registry.register_builder_with_options::<u8>(
            &format!("{game}-v5"),
            MAX_EPISODE_STEPS,
            Arc::new(move |config: PoolConfig, max_episode_steps: u32| {
                make_pool(game, config, max_episode_steps)
            }),
        )?;
    }
    Ok(())
}
