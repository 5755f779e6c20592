//! Atari env-steps/s of hone's pool, and their floor, for `scripts/bench_atari.sh` (which adds
//! envpool 1.2.7's figures from the same run and prints the side-by-side table).
//!
//! `cargo run --release -p hone-envs --features atari --example atari_speed -- OPTIONS`
//!
//! One env-step is one agent step: 4 ALE frames (frame skip 4). Per cell: a pool of the task at
//! envpool's defaults, random legal actions (16 batches drawn beforehand from a fixed seed,
//! cycled), a warm-up of a fifth of the measured time, then env-steps (batch rows, reset rows
//! included) per second of wall time. Async cells use batch_size = num_envs / 2 and send each
//! received batch straight back.
//!
//! The floor, timed right after the cell: one thread of bare ALE `act()` calls with the same
//! frame skip and preprocessing work (grayscale screens of the last two frames, max-pool,
//! `AreaResize` to 84×84, the frame-stack copy into a batch row), over as many emulators as the
//! cell has envs, stepped round robin as the pool steps them. It is reported per thread and times
//! the threads the pool used.
//!
//! Options: `--seconds F` measured seconds per cell (default 5), `--games Pong-v5,Breakout-v5`,
//! `--envs 8,64,256`, `--threads 1,2`, `--modes sync,async`, `--seed N` (default 0),
//! `--no-floor`, `--csv PATH` (write the rows as CSV).

#[cfg(feature = "atari")]
fn main() {
    speed::main();
}

#[cfg(not(feature = "atari"))]
fn main() {
    eprintln!("atari_speed: build with `--features atari`");
    std::process::exit(2);
}

#[cfg(feature = "atari")]
mod speed {
    use std::time::Instant;

    use hone_envs::atari::{Ale, AleOptions, AtariOptions, rom_path};
    use hone_envs::bench::parse_list;
    use hone_envs::image::{AreaResize, max_pool_u8};
    use hone_envs::rng::Pcg64;
    use hone_envs::{EnvPool, PoolConfig, Space};

    /// ALE's screen, and envpool's defaults for `-v5` ids.
    const RAW: usize = 210 * 160;
    const SIDE: usize = 84;
    const STACK: usize = 4;
    const FRAME_SKIP: usize = 4;
    /// Action batches drawn beforehand, cycled.
    const BATCHES: usize = 16;

    struct Options {
        seconds: f64,
        games: Vec<String>,
        envs: Vec<usize>,
        threads: Vec<usize>,
        modes: Vec<String>,
        seed: u64,
        floor: bool,
        csv: Option<String>,
    }

    fn parse() -> Options {
        let mut o = Options {
            seconds: 5.0,
            games: vec!["Pong-v5".to_owned(), "Breakout-v5".to_owned()],
            envs: vec![8, 64, 256],
            threads: vec![1, 2],
            modes: vec!["sync".to_owned(), "async".to_owned()],
            seed: 0,
            floor: true,
            csv: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--no-floor" {
                o.floor = false;
                continue;
            }
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--seconds" => o.seconds = parse_list(&value(), "--seconds")[0],
                "--games" => o.games = parse_list(&value(), "--games"),
                "--envs" => o.envs = parse_list(&value(), "--envs"),
                "--threads" => o.threads = parse_list(&value(), "--threads"),
                "--modes" => o.modes = parse_list(&value(), "--modes"),
                "--seed" => o.seed = parse_list(&value(), "--seed")[0],
                "--csv" => o.csv = Some(value()),
                other => panic!("unknown option {other}"),
            }
        }
        for mode in &o.modes {
            assert!(mode == "sync" || mode == "async", "bad mode `{mode}`");
        }
        o
    }

    /// `BATCHES` batches of `rows` random actions in `0..n`.
    fn action_table(n: i64, rows: usize, seed: u64) -> Vec<i64> {
        let mut rng = Pcg64::from_seed(seed);
        (0..BATCHES * rows)
            .map(|_| (rng.next_u64() % n as u64) as i64)
            .collect()
    }

    /// Runs `step` (returning env-steps done) for a warm-up of a fifth of `seconds`, then for
    /// `seconds`; env-steps per second of the measured part.
    fn timed(seconds: f64, mut step: impl FnMut() -> u64) -> f64 {
        let mut run_for = |limit: f64| {
            let (start, mut rows) = (Instant::now(), 0u64);
            loop {
                rows += step();
                let elapsed = start.elapsed().as_secs_f64();
                if elapsed >= limit {
                    return rows as f64 / elapsed;
                }
            }
        };
        run_for(seconds / 5.0);
        run_for(seconds)
    }

    /// hone's rate for one cell, with the threads the pool used and its batch size.
    fn pool_rate(
        task: &str,
        mode: &str,
        num_envs: usize,
        threads: usize,
        o: &Options,
    ) -> (f64, usize, usize) {
        let batch_size = if mode == "sync" {
            num_envs
        } else {
            (num_envs / 2).max(1)
        };
        let config = PoolConfig::new(task, num_envs)
            .batch_size(batch_size)
            .num_threads(threads)
            .seed(o.seed);
        let mut pool = EnvPool::<u8>::make(config).unwrap_or_else(|e| panic!("{task}: {e}"));
        let Space::Discrete { n } = *pool.action_space() else {
            panic!("{task}: Atari actions are Discrete")
        };
        let actions = action_table(n, batch_size, o.seed + 1);
        let rows = |step: usize, len: usize| &actions[(step % BATCHES) * batch_size..][..len];
        let mut step = 0usize;
        let rate = if mode == "sync" {
            pool.reset().expect("reset");
            timed(o.seconds, || {
                step += 1;
                pool.step(rows(step, batch_size)).expect("step").len() as u64
            })
        } else {
            pool.async_reset().expect("async_reset");
            let mut env_ids: Vec<u32> = Vec::with_capacity(batch_size);
            timed(o.seconds, || {
                step += 1;
                env_ids.clear();
                env_ids.extend_from_slice(pool.recv().expect("recv").env_id);
                pool.send(rows(step, env_ids.len()), &env_ids)
                    .expect("send");
                env_ids.len() as u64
            })
        };
        (rate, pool.num_threads(), batch_size)
    }

    /// One emulator with the pool's per-step work and nothing else.
    struct BareEnv {
        ale: Ale,
        action_set: Vec<i32>,
        /// The last two grayscale screens, then their max.
        raw: Vec<u8>,
        pooled: Vec<u8>,
        /// The frame stack as a ring; `oldest` is its front.
        stack: Vec<u8>,
        oldest: usize,
    }

    impl BareEnv {
        fn new(game: &str, seed: i32) -> Self {
            let options = AleOptions {
                seed,
                repeat_action_probability: AtariOptions::default().repeat_action_probability,
                max_num_frames_per_episode: 0,
            };
            let ale = Ale::new(&rom_path(game).expect("ROM"), &options).expect("ALE");
            Self {
                action_set: ale.minimal_action_set().to_vec(),
                ale,
                raw: vec![0; 2 * RAW],
                pooled: vec![0; RAW],
                stack: vec![0; STACK * SIDE * SIDE],
                oldest: 0,
            }
        }

        /// One agent step: `FRAME_SKIP` frames, the last two screens max-pooled, resized into
        /// the stack, the stack copied into `out` oldest first; a new game after game over.
        fn step(&mut self, action: i64, resize: &AreaResize, out: &mut [u8]) {
            let ale_action = self.action_set[action as usize % self.action_set.len()];
            for frame in 0..FRAME_SKIP {
                self.ale.act(ale_action).expect("act");
                if frame + 2 >= FRAME_SKIP {
                    let at = (frame + 2 - FRAME_SKIP) * RAW;
                    self.ale
                        .screen_grayscale(&mut self.raw[at..at + RAW])
                        .expect("screen");
                }
                if self.ale.game_over(true) {
                    self.ale.reset().expect("reset");
                    break;
                }
            }
            let (a, b) = self.raw.split_at(RAW);
            max_pool_u8(a, b, &mut self.pooled);
            let frame = SIDE * SIDE;
            let slot = self.oldest;
            resize.apply(
                &self.pooled,
                &mut self.stack[slot * frame..(slot + 1) * frame],
            );
            self.oldest = (slot + 1) % STACK;
            for (i, row) in out.chunks_exact_mut(frame).enumerate() {
                let s = (self.oldest + i) % STACK;
                row.copy_from_slice(&self.stack[s * frame..(s + 1) * frame]);
            }
        }
    }

    /// The floor of a cell: `num_envs` bare emulators on this thread, round robin.
    fn floor_rate(game: &str, num_envs: usize, o: &Options) -> f64 {
        let mut envs: Vec<BareEnv> = (0..num_envs)
            .map(|i| BareEnv::new(game, o.seed as i32 + i as i32))
            .collect();
        let resize = AreaResize::new(210, 160, SIDE, SIDE);
        let n = envs[0].action_set.len() as i64;
        let actions = action_table(n, num_envs, o.seed + 1);
        let mut batch = vec![0u8; num_envs * STACK * SIDE * SIDE];
        let mut step = 0usize;
        timed(o.seconds, || {
            step += 1;
            let acts = &actions[(step % BATCHES) * num_envs..][..num_envs];
            let rows = batch.chunks_exact_mut(STACK * SIDE * SIDE);
            for ((env, &action), out) in envs.iter_mut().zip(acts).zip(rows) {
                env.step(action, &resize, out);
            }
            num_envs as u64
        })
    }

    pub fn main() {
        let o = parse();
        let mut csv = String::from(
            "game,mode,num_envs,num_threads,threads_used,batch_size,steps_per_second,floor_per_thread,floor\n",
        );
        println!(
            "{:<12} {:<5} {:>5} {:>7} {:>4} {:>5} {:>11} {:>12} {:>11} {:>6}",
            "game",
            "mode",
            "envs",
            "threads",
            "used",
            "batch",
            "env-steps/s",
            "floor/thread",
            "floor",
            "of it"
        );
        for task in &o.games {
            let game = task.strip_suffix("-v5").unwrap_or(task);
            for mode in &o.modes {
                for &num_envs in &o.envs {
                    for &threads in &o.threads {
                        let (rate, used, batch) = pool_rate(task, mode, num_envs, threads, &o);
                        let per_thread = if o.floor {
                            floor_rate(game, num_envs, &o)
                        } else {
                            f64::NAN
                        };
                        let floor = per_thread * used as f64;
                        println!(
                            "{task:<12} {mode:<5} {num_envs:>5} {threads:>7} {used:>4} {batch:>5} {rate:>11.0} {per_thread:>12.0} {floor:>11.0} {:>5.0}%",
                            100.0 * rate / floor
                        );
                        csv.push_str(&format!(
                            "{task},{mode},{num_envs},{threads},{used},{batch},{rate},{per_thread},{floor}\n"
                        ));
                    }
                }
            }
        }
        if let Some(path) = &o.csv {
            std::fs::write(path, csv).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
    }
}
