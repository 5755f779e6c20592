//! Atari 2600 games on the Arcade Learning Environment (ALE 0.12.1). Behind the cargo feature
//! `atari`. The raw emulator ([`Ale`]), the ROM lookup ([`rom_path`]) and one game with envpool
//! 1.2.7's preprocessing and semantics ([`AtariEnv`]), and the pool tasks `Pong-v5`, ... on it
//! (`EnvPool::<u8>::make`).
//!
//! # Where ALE comes from
//!
//! `scripts/setup.sh` downloads the `ale-py` 0.12.1 source distribution from PyPI, compiles ALE's
//! C++ library from it once per machine (`$HONE_CACHE/ale-0.12.1/lib/libale.a`, without Python,
//! SDL or the vector interface), keeps the sdist's 108 ROMs (the files of the wheel's
//! `ale_py/roms/`) beside it, and writes both folders into `.cargo/config.toml` (`HONE_ALE_DIR`,
//! `HONE_ALE_ROMS`). ALE has no C API: `shim.cpp` is a small C interface to `ale::ALEInterface`
//! that turns C++ exceptions, and the inputs on which ALE would end the process, into errors.
//!
//! # Licence
//!
//! ALE is GPL-2.0 and is linked statically: a binary built with this feature is a covered work
//! under the GPL-2.0. hone-envs without the feature contains no ALE code.

mod ale;
mod env;
mod ffi;
pub mod mt19937;
mod pool;

use std::path::{Path, PathBuf};

pub use ale::{Ale, AleOptions, FIRE, NOOP, NUM_ACTIONS};
pub use env::{AtariEnv, AtariOptions, AtariStep};
pub(crate) use pool::register_tasks;
pub use pool::{GAMES, MAX_EPISODE_STEPS, OPTION_NAMES, make_pool, options_of};

use crate::error::{Error, Result};

/// The 108 ROMs of ALE 0.12.1 (src/ale/python/roms of the sdist), by file stem.
#[rustfmt::skip]
pub const ROMS: [&str; 108] = [
    "adventure", "air_raid", "alien", "amidar", "assault", "asterix", "asteroids", "atlantis",
    "atlantis2", "backgammon", "bank_heist", "basic_math", "battle_zone", "beam_rider", "berzerk",
    "blackjack", "bowling", "boxing", "breakout", "carnival", "casino", "centipede",
    "chopper_command", "combat", "crazy_climber", "crossbow", "darkchambers", "defender",
    "demon_attack", "donkey_kong", "double_dunk", "earthworld", "elevator_action", "enduro",
    "entombed", "et", "fishing_derby", "flag_capture", "freeway", "frogger", "frostbite",
    "galaxian", "gopher", "gravitar", "hangman", "haunted_house", "hero", "human_cannonball",
    "ice_hockey", "jamesbond", "journey_escape", "joust", "kaboom", "kangaroo", "keystone_kapers",
    "king_kong", "klax", "koolaid", "krull", "kung_fu_master", "laser_gates", "lost_luggage",
    "mario_bros", "maze_craze", "miniature_golf", "montezuma_revenge", "mr_do", "ms_pacman",
    "name_this_game", "othello", "pacman", "phoenix", "pitfall", "pitfall2", "pong", "pooyan",
    "private_eye", "qbert", "riverraid", "road_runner", "robotank", "seaquest", "sir_lancelot",
    "skiing", "solaris", "space_invaders", "space_war", "star_gunner", "superman", "surround",
    "tennis", "tetris", "tic_tac_toe_3d", "time_pilot", "trondead", "turmoil", "tutankham",
    "up_n_down", "venture", "video_checkers", "video_chess", "video_cube", "video_pinball",
    "warlords", "wizard_of_wor", "word_zapper", "yars_revenge", "zaxxon",
];

/// The folder of the ROMs, as scripts/setup.sh wrote it into `.cargo/config.toml`.
pub fn rom_dir() -> &'static Path {
    Path::new(env!("HONE_ALE_ROMS"))
}

/// envpool's game id of a ROM: each `_`-separated part capitalised and joined, as envpool's
/// `atari/registration.py` names its tasks (`space_invaders` → `SpaceInvaders`).
pub fn game_id(rom: &str) -> String {
    rom.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}

/// The ROM stem of envpool's game id (`SpaceInvaders` → `space_invaders`).
pub fn rom_name(game: &str) -> Result<&'static str> {
    ROMS.iter()
        .copied()
        .find(|&rom| game_id(rom) == game)
        .ok_or_else(|| Error::UnknownGame {
            game: game.to_owned(),
            known: ROMS.iter().map(|rom| game_id(rom)).collect(),
        })
}

/// The ROM file of envpool's game id in the ROM folder (`Pong` → `.../pong.bin`).
pub fn rom_path(game: &str) -> Result<PathBuf> {
    rom_path_in(rom_dir(), game)
}

/// [`rom_path`] in another folder. A file that is not there is [`Error::RomMissing`].
pub fn rom_path_in(dir: &Path, game: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{}.bin", rom_name(game)?));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::RomMissing {
            game: game.to_owned(),
            path: path.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_ids_are_envpools() {
        assert_eq!(game_id("pong"), "Pong");
        assert_eq!(game_id("space_invaders"), "SpaceInvaders");
        assert_eq!(game_id("montezuma_revenge"), "MontezumaRevenge");
        assert_eq!(game_id("up_n_down"), "UpNDown");
        assert_eq!(game_id("pitfall2"), "Pitfall2");
        assert_eq!(game_id("tic_tac_toe_3d"), "TicTacToe3d");
        assert_eq!(rom_name("SpaceInvaders"), Ok("space_invaders"));
        assert_eq!(rom_name("Breakout"), Ok("breakout"));
        // One id per ROM.
        let mut ids: Vec<String> = ROMS.iter().map(|rom| game_id(rom)).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ROMS.len());
    }

    #[test]
    fn every_rom_is_in_the_rom_folder() {
        for rom in ROMS {
            let path = rom_path(&game_id(rom)).unwrap();
            assert_eq!(path, rom_dir().join(format!("{rom}.bin")));
        }
        let files = std::fs::read_dir(rom_dir())
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("bin".as_ref()))
            .count();
        assert_eq!(files, ROMS.len());
    }

    #[test]
    fn unknown_games_and_missing_roms_are_clear_errors() {
        let err = rom_path("Pongg").unwrap_err();
        assert!(matches!(&err, Error::UnknownGame { game, .. } if game == "Pongg"));
        assert!(err.to_string().contains("Pong, "), "{err}");
        // Case matters, as in envpool's ids.
        assert!(rom_path("pong").is_err());

        let empty = std::env::temp_dir().join("hone-atari-no-roms");
        let err = rom_path_in(&empty, "Pong").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::RomMissing { .. }));
        assert!(
            message.contains(&format!("{}", empty.join("pong.bin").display())),
            "{message}"
        );
        assert!(message.contains("scripts/setup.sh"), "{message}");
    }
}
