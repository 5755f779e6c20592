//! Byte-mutation fuzzing of every file hone reads (`hone_trainer::fuzz`, `hone_rlhf::fuzz`),
//! on stable Rust, as part of the test suite. Each test mutates the seeds of `fuzz/corpus/<name>/`
//! (the cargo-fuzz corpus of `scripts/fuzz.sh`) with proptest and checks the invariant: no
//! panic (proptest shrinks the input and prints it), no abort, no hang (a watchdog), and no
//! allocation above 1 GiB (this binary's allocator refuses it, which aborts the run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The largest single allocation any input may cause (the tiny seeds need kilobytes).
const ALLOCATION_BOUND: usize = 1 << 30;
/// The longest one input may take before the watchdog calls it a hang.
const HANG: Duration = Duration::from_secs(30);

struct Bounded;

// SAFETY: forwards to the system allocator; refusing (null) is allowed by GlobalAlloc.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_BOUND {
            LARGEST_REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_BOUND {
            LARGEST_REFUSED.fetch_max(new_size, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;
static LARGEST_REFUSED: AtomicUsize = AtomicUsize::new(0);

/// One edit of a file. Positions are drawn over the whole file or, half the time, its first
/// 256 bytes, where the headers (counts, lengths, offsets, types) live.
#[derive(Clone, Debug)]
enum Mutation {
    Byte {
        at: Pos,
        value: u8,
    },
    Bit {
        at: Pos,
        bit: u8,
    },
    /// A little-endian integer of 1, 2, 4 or 8 bytes, often an edge value.
    Word {
        at: Pos,
        width: usize,
        value: u64,
    },
    /// The `nth` run of ASCII digits (a number of JSON or TOML) replaced by an edge value.
    Number {
        nth: Index,
        text: &'static str,
    },
    /// `len` bytes from `from` inserted at `to`.
    Duplicate {
        from: Pos,
        len: usize,
        to: Pos,
    },
    Delete {
        at: Pos,
        len: usize,
    },
    Truncate {
        at: Pos,
    },
}

#[derive(Clone, Debug)]
struct Pos {
    index: Index,
    head: bool,
}

impl Pos {
    fn of(&self, len: usize) -> usize {
        let span = if self.head { len.min(256) } else { len };
        if span == 0 { 0 } else { self.index.index(span) }
    }
}

const EDGE_WORDS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    31,
    32,
    255,
    256,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "2",
    "1e9",
    "1e308",
    "-1e308",
    "1e-320",
    "0.5",
    "4294967295",
    "9223372036854775807",
    "18446744073709551615",
    "1000000000000",
    "NaN",
    "inf",
    "\"\"",
    "[]",
];

fn pos() -> impl Strategy<Value = Pos> {
    (any::<Index>(), any::<bool>()).prop_map(|(index, head)| Pos { index, head })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![prop::sample::select(EDGE_WORDS), any::<u64>(), 0u64..64,];
    prop_oneof![
        (pos(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        (pos(), 0u8..8).prop_map(|(at, bit)| Mutation::Bit { at, bit }),
        (pos(), prop::sample::select(&[1usize, 2, 4, 8][..]), word)
            .prop_map(|(at, width, value)| Mutation::Word { at, width, value }),
        (any::<Index>(), prop::sample::select(EDGE_NUMBERS))
            .prop_map(|(nth, text)| Mutation::Number { nth, text }),
        (pos(), 1usize..64, pos()).prop_map(|(from, len, to)| Mutation::Duplicate {
            from,
            len,
            to
        }),
        (pos(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        pos().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    match mutation {
        Mutation::Byte { at, value } if len > 0 => bytes[at.of(len)] = *value,
        Mutation::Bit { at, bit } if len > 0 => bytes[at.of(len)] ^= 1 << bit,
        Mutation::Word { at, width, value } => {
            let start = at.of(len).min(len.saturating_sub(*width));
            let end = (start + width).min(len);
            bytes[start..end].copy_from_slice(&value.to_le_bytes()[..end - start]);
        }
        Mutation::Number { nth, text } => {
            let mut runs = Vec::new();
            let mut i = 0;
            while i < len {
                if bytes[i].is_ascii_digit() {
                    let start = i;
                    while i < len && (bytes[i].is_ascii_digit() || b".eE+-_".contains(&bytes[i])) {
                        i += 1;
                    }
                    runs.push(start..i);
                }
                i += 1;
            }
            if !runs.is_empty() {
                let run = runs[nth.index(runs.len())].clone();
                bytes.splice(run, text.bytes());
            }
        }
        Mutation::Duplicate { from, len: n, to } if len > 0 => {
            let start = from.of(len);
            let copied = bytes[start..(start + n).min(len)].to_vec();
            let at = to.of(len);
            bytes.splice(at..at, copied);
        }
        Mutation::Delete { at, len: n } if len > 0 => {
            let start = at.of(len);
            bytes.drain(start..(start + n).min(len));
        }
        Mutation::Truncate { at } => bytes.truncate(at.of(len)),
        _ => {}
    }
}

/// The input being tried, for the watchdog to print.
static CURRENT: Mutex<Vec<(String, Instant, Vec<u8>)>> = Mutex::new(Vec::new());

fn watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((target, _, input)) =
                    current.iter().find(|(_, since, _)| since.elapsed() > HANG)
                {
                    eprintln!(
                        "fuzz {target}: one input ran longer than {HANG:?} (a hang); input: {input:?}"
                    );
                    std::process::abort();
                }
            }
        });
    });
}

/// The same mutants every run (a failure reproduces); `HONE_FUZZ_SEED=<n>` draws others.
fn rng() -> TestRng {
    let seed: u64 = std::env::var("HONE_FUZZ_SEED")
        .map(|s| s.parse().expect("HONE_FUZZ_SEED is a number"))
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Runs `entry` on `cases` mutants of the seeds of `fuzz/corpus/<target>/`, after checking that
/// every seed goes all the way through (so the mutants start deep in the code).
fn fuzz(target: &str, cases: u32, entry: fn(&[u8]) -> bool) {
    watchdog();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} holds no seeds", dir.display());
    for seed in &seeds {
        assert!(entry(seed), "a seed of {} is refused", dir.display());
    }
    let accepted = AtomicUsize::new(0);
    let started = Instant::now();
    let strategy = (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 1..6),
    );
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        rng(),
    );
    let result = runner.run(&strategy, |(seed, mutations)| {
        let mut bytes = seed;
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        CURRENT.lock().unwrap_or_else(|e| e.into_inner()).push((
            target.to_owned(),
            Instant::now(),
            bytes.clone(),
        ));
        let ok = entry(&bytes);
        CURRENT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(t, _, _)| t != target);
        if ok {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("fuzz {target}: {failure}");
    }
    assert_eq!(LARGEST_REFUSED.load(Ordering::Relaxed), 0);
    println!(
        "fuzz {target}: {cases} mutants in {:.1} s, {} accepted whole",
        started.elapsed().as_secs_f64(),
        accepted.load(Ordering::Relaxed)
    );
}

#[test]
fn gguf_files() {
    fuzz("gguf", 100_000, hone_rlhf::fuzz::gguf);
}

#[test]
fn safetensors_files() {
    fuzz("safetensors", 5_000, hone_rlhf::fuzz::safetensors);
}

#[test]
fn model_configs() {
    fuzz("model_config", 5_000, hone_rlhf::fuzz::model_config);
}

#[test]
fn tokenizers() {
    fuzz("tokenizer", 3_000, hone_rlhf::fuzz::tokenizer);
}

#[test]
fn rlhf_run_files() {
    fuzz("run_config", 3_000, hone_rlhf::fuzz::run_config);
}

#[test]
fn prompt_datasets() {
    fuzz("dataset", 3_000, hone_rlhf::fuzz::dataset);
}

#[test]
fn ppo_run_files() {
    fuzz("ppo_config", 3_000, hone_trainer::fuzz::ppo_config);
}

#[test]
fn metrics_files() {
    fuzz("metrics", 3_000, hone_trainer::fuzz::metrics);
}

#[test]
fn ppo_checkpoint_states() {
    fuzz("ppo_state", 1_000, hone_trainer::fuzz::ppo_state);
}

#[test]
fn ppo_checkpoint_weights() {
    fuzz("ppo_weights", 1_000, hone_trainer::fuzz::ppo_weights);
}
