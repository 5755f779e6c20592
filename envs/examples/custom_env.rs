//! A user-defined env, end to end: implement `Env`, register it under a task id, make a pool of
//! it, step it in sync and async mode, and read the episode statistics.
//!
//! `cargo run --release -p hone-envs --example custom_env`

use hone_envs::rng::Pcg64;
use hone_envs::{Action, Env, EnvPool, PoolConfig, Space, StepOutcome, registry};

/// Guess a hidden number in 0..16: the observation says whether the last guess was too low (-1),
/// too high (+1) or right (0); reward -1 per wrong guess, +10 for the right one.
#[derive(Clone, Default)]
struct GuessNumber {
    target: i64,
}

impl Env for GuessNumber {
    fn observation_space(&self) -> Space {
        Space::uniform_box(-1.0, 1.0, &[1])
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 16 }
    }

    fn reset(&mut self, rng: &mut Pcg64, obs: &mut [f32]) {
        self.target = (rng.next_u64() % 16) as i64;
        obs[0] = 0.0;
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [f32]) -> StepOutcome {
        // The pool checked the action is Discrete and in 0..16.
        let Action::Discrete(guess) = action else {
            unreachable!("GuessNumber has a Discrete action space")
        };
        obs[0] = (guess - self.target).signum() as f32;
        let found = guess == self.target;
        StepOutcome {
            reward: if found { 10.0 } else { -1.0 },
            terminated: found,
        }
    }
}

/// A bisecting policy: each env keeps its own interval.
struct Bisect {
    low: Vec<i64>,
    high: Vec<i64>,
    guess: Vec<i64>,
}

impl Bisect {
    fn new(num_envs: usize) -> Self {
        Self {
            low: vec![0; num_envs],
            high: vec![15; num_envs],
            guess: vec![7; num_envs],
        }
    }

    /// Updates env `id`'s interval from its observation and returns its next guess.
    fn act(&mut self, id: usize, obs: f32, elapsed_step: u32) -> i64 {
        if elapsed_step == 0 {
            (self.low[id], self.high[id]) = (0, 15);
        } else if obs > 0.0 {
            self.high[id] = self.guess[id] - 1;
        } else if obs < 0.0 {
            self.low[id] = self.guess[id] + 1;
        }
        self.guess[id] = (self.low[id] + self.high[id]) / 2;
        self.guess[id]
    }
}

fn main() -> hone_envs::Result<()> {
    // Episodes longer than 8 guesses are truncated (bisection needs at most 5).
    registry::register("GuessNumber-v0", 8, GuessNumber::default)?;

    // Sync: every env each step.
    let num_envs = 64;
    let mut pool = EnvPool::new(
        PoolConfig::new("GuessNumber-v0", num_envs)
            .num_threads(2)
            .seed(1),
    )?;
    let mut policy = Bisect::new(num_envs);
    let mut actions = vec![0i64; num_envs];
    let mut batch = pool.reset()?;
    let (mut episodes, mut return_sum, mut length_sum) = (0usize, 0.0, 0u64);
    for _ in 0..100 {
        for row in 0..batch.len() {
            let id = batch.env_id[row] as usize;
            actions[id] = policy.act(id, batch.observation(row)[0], batch.elapsed_step[row]);
        }
        batch = pool.step(&actions)?;
        episodes += batch.episodes.len();
        return_sum += batch.episodes.episode_return.iter().sum::<f64>();
        length_sum += batch
            .episodes
            .length
            .iter()
            .map(|&l| u64::from(l))
            .sum::<u64>();
    }
    println!(
        "sync:  {episodes} episodes, mean return {:.2}, mean length {:.2}",
        return_sum / episodes as f64,
        length_sum as f64 / episodes as f64
    );

    // Async: half the envs per batch, whichever finish first.
    let mut pool = registry::make(
        "GuessNumber-v0",
        PoolConfig::new("", num_envs).batch_size(32).seed(2),
    )?;
    let mut policy = Bisect::new(num_envs);
    pool.async_reset()?;
    let (mut episodes, mut return_sum) = (0usize, 0.0);
    let mut env_ids = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..200 {
        let batch = pool.recv()?;
        episodes += batch.episodes.len();
        return_sum += batch.episodes.episode_return.iter().sum::<f64>();
        env_ids.clear();
        actions.clear();
        for row in 0..batch.len() {
            let id = batch.env_id[row];
            env_ids.push(id);
            actions.push(policy.act(
                id as usize,
                batch.observation(row)[0],
                batch.elapsed_step[row],
            ));
        }
        pool.send(&actions, &env_ids)?;
    }
    println!(
        "async: {episodes} episodes, mean return {:.2}",
        return_sum / episodes as f64
    );
    Ok(())
}
