//! Errors of hone-envs. Each names the bad value and what was expected; after any of them the pool
//! that returned it stays usable.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    #[error("unknown task id `{id}`; {}", name_known("ids", id, known))]
    UnknownTask { id: String, known: Vec<String> },
    #[error("task id `{0}` is already registered")]
    DuplicateTask(String),
    #[error("task `{task_id}` cannot be made: {reason}")]
    TaskUnavailable { task_id: String, reason: String },
    #[error("invalid pool config: {0}")]
    InvalidConfig(String),
    #[error("expected {expected} action values ({rows} rows of {per_row}), got {got}")]
    ActionCount {
        expected: usize,
        rows: usize,
        per_row: usize,
        got: usize,
    },
    #[error("the action space is {space}: actions must be {expected} values, got {got} values")]
    ActionType {
        space: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("action {value} for env {env_id} is out of range 0..{n}")]
    ActionOutOfRange { env_id: u32, value: i64, n: i64 },
    #[error("action element {element} = {value} for env {env_id} is out of range 0..{n}")]
    MultiDiscreteActionOutOfRange {
        env_id: u32,
        element: usize,
        value: i64,
        n: i64,
    },
    #[error("action for env {env_id} is NaN at element {element}")]
    ActionNaN { env_id: u32, element: usize },
    #[error("env id {env_id} is out of range 0..{num_envs}")]
    EnvIdOutOfRange { env_id: u32, num_envs: usize },
    #[error("env {env_id} appears more than once in one send")]
    DuplicateEnvId { env_id: u32 },
    #[error("env {env_id} is already in flight (sent and not yet received)")]
    EnvInFlight { env_id: u32 },
    #[error("send needs at least one env id")]
    NoEnvIds,
    #[error("recv with nothing in flight: send actions first")]
    NothingInFlight,
    #[error("recv needs {batch_size} envs in flight to fill a batch, only {in_flight} are")]
    NotEnoughInFlight { in_flight: usize, batch_size: usize },
    #[error("{operation} {reason}")]
    WrongMode {
        operation: &'static str,
        reason: &'static str,
    },
    #[error("{operation} before any reset: call {reset} first")]
    NotReset {
        operation: &'static str,
        reset: &'static str,
    },
    #[error("env {env_id} panicked: {message}{}; it resets on its next step", others_note(*others))]
    EnvPanicked {
        env_id: u32,
        message: String,
        others: usize,
    },
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("could not start a worker thread: {0}")]
    ThreadSpawn(String),
    #[error("unknown Atari game `{game}`; known games: {}", known.join(", "))]
    UnknownGame { game: String, known: Vec<String> },
    #[error(
        "the Atari ROM {path} (game `{game}`) is missing: run `bash scripts/setup.sh`, which \
         installs ALE 0.12.1's ROMs"
    )]
    RomMissing { game: String, path: String },
    #[error("ALE: {0}")]
    Ale(String),
}

fn others_note(others: usize) -> String {
    match others {
        0 => String::new(),
        n => format!(" (and {n} more env(s) panicked in the same batch)"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "known ids: a, b, c"; with many names (Atari's), the closest to `name` first.
fn name_known(what: &str, name: &str, known: &[String]) -> String {
    let all = format!("known {what}: {}", known.join(", "));
    if known.len() <= 40 {
        return all;
    }
    let near = closest(name, known.iter().map(String::as_str), 5);
    format!("closest {what}: {}; {all}", near.join(", "))
}

/// The `n` candidates closest to `name` by edit distance (case-insensitive), closest first.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    n: usize,
) -> Vec<String> {
    let name = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), c))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(_, c)| c.to_owned())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
