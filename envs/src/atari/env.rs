//! [`AtariEnv`]: one Atari game with envpool 1.2.7's preprocessing and semantics, a line-by-line
//! port of `AtariEnv` in envpool's `envpool/atari/atari_env.h` (cited as `h:LINE`, at
//! sail-sg/envpool 9cbcd267, whose Atari code is 1.2.7's). Pools run it as an `Env<u8>`.

use super::mt19937::{Mt19937, uniform_int};
use super::{Ale, AleOptions, FIRE, NOOP, rom_path};
use crate::env::{Action, Env, StepInfo, StepOutcome};
use crate::error::{Error, Result};
use crate::image::AreaResize;
use crate::rng::Pcg64;
use crate::space::Space;

/// ALE's screen, 210×160 for every game (h:96-98).
const RAW_HEIGHT: usize = 210;
const RAW_WIDTH: usize = 160;
const RAW_SIZE: usize = RAW_HEIGHT * RAW_WIDTH;

/// [`AtariEnv::save_state`]'s format: magic, stack length, oldest slot, elapsed step, lives, done.
const STATE_MAGIC: &[u8; 8] = b"HONEATA1";
const STATE_HEADER: usize = 8 + 8 + 8 + 4 + 4 + 1;

/// envpool's Atari options, with its defaults (`AtariEnvFns::DefaultConfig`, h:52-62, and the
/// `-v5` ids' `max_episode_steps=27000` and `seed=42`).
#[derive(Clone, Debug, PartialEq)]
pub struct AtariOptions {
    /// The pool's seed; env `env_id` seeds its no-op generator and ALE with `seed + env_id`.
    pub seed: i32,
    pub max_episode_steps: i32,
    pub stack_num: usize,
    pub frame_skip: usize,
    /// Resets play `uniform(0, noop_max - 1) + 1` no-op frames (one fewer with fire reset);
    /// 1 turns noop starts off.
    pub noop_max: i32,
    pub zero_discount_on_life_loss: bool,
    pub episodic_life: bool,
    pub reward_clip: bool,
    pub use_fire_reset: bool,
    pub img_height: usize,
    pub img_width: usize,
    /// Game mode and difficulty; -1 is the game's default (the only one supported yet).
    pub mode: i32,
    pub difficulty: i32,
    pub full_action_space: bool,
    pub repeat_action_probability: f32,
    /// OpenCV's `INTER_AREA` resize (`true`, the only one supported yet) or `INTER_LINEAR`.
    pub use_inter_area_resize: bool,
    /// Grayscale frames (`true`, the only one supported yet) or RGB.
    pub gray_scale: bool,
}

impl Default for AtariOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            max_episode_steps: 27_000,
            stack_num: 4,
            frame_skip: 4,
            noop_max: 30,
            zero_discount_on_life_loss: false,
            episodic_life: false,
            reward_clip: false,
            use_fire_reset: true,
            img_height: 84,
            img_width: 84,
            mode: -1,
            difficulty: -1,
            full_action_space: false,
            repeat_action_probability: 0.0,
            use_inter_area_resize: true,
            gray_scale: true,
        }
    }
}

impl AtariOptions {
    /// The options' errors, in the order of the fields; envpool checks none of them.
    fn check(&self, env_id: i32) -> Result<i32> {
        let bad = |message: String| Err(Error::InvalidConfig(format!("Atari: {message}")));
        let Some(seed) = self.seed.checked_add(env_id).filter(|&s| s >= 0) else {
            return bad(format!(
                "seed {} + env id {env_id} must be in 0..=2147483647 (ALE's random_seed)",
                self.seed
            ));
        };
        if self.max_episode_steps < 1 {
            return bad(format!(
                "max_episode_steps is {}; it must be at least 1",
                self.max_episode_steps
            ));
        }
        if self.stack_num < 1 || self.frame_skip < 1 {
            return bad(format!(
                "stack_num is {} and frame_skip {}; both must be at least 1",
                self.stack_num, self.frame_skip
            ));
        }
        if self.noop_max < 1 {
            return bad(format!(
                "noop_max is {}; it must be at least 1 (1 turns noop starts off; envpool \
                 crashes on 0)",
                self.noop_max
            ));
        }
        if !(1..=RAW_HEIGHT).contains(&self.img_height)
            || !(1..=RAW_WIDTH).contains(&self.img_width)
        {
            return bad(format!(
                "img_height × img_width is {}×{}; it must be within 1..={RAW_HEIGHT} × \
                 1..={RAW_WIDTH} (only downscaling is supported)",
                self.img_height, self.img_width
            ));
        }
        if self.mode != -1 || self.difficulty != -1 {
            return bad(format!(
                "mode {} and difficulty {}: only -1 (the game's default) is supported yet",
                self.mode, self.difficulty
            ));
        }
        if !(0.0..=1.0).contains(&self.repeat_action_probability) {
            return bad(format!(
                "repeat_action_probability is {}; it must be in [0, 1]",
                self.repeat_action_probability
            ));
        }
        if !self.use_inter_area_resize || !self.gray_scale {
            return bad(
                "only use_inter_area_resize=true and gray_scale=true are supported yet".into(),
            );
        }
        Ok(seed)
    }
}

/// What a reset or step returns besides the observation (envpool's `WriteState`, h:270-289).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AtariStep {
    /// The frames' summed reward, its sign if `reward_clip`.
    pub reward: f32,
    /// `info["reward"]`: the unclipped reward.
    pub info_reward: f32,
    /// `done and not truncated`; with `episodic_life`, true at every life loss.
    pub terminated: bool,
    /// `done` at `max_episode_steps`.
    pub truncated: bool,
    /// `info["lives"]`.
    pub lives: i32,
    /// `info["terminated"]`: ALE's game over.
    pub game_over: bool,
    /// dm_env's discount (see `zero_discount_on_life_loss`).
    pub discount: f32,
    /// `info["elapsed_step"]`: steps since the game's reset (soft resets keep it).
    pub elapsed_step: i32,
}

/// One Atari game with envpool's preprocessing: frame skip with the last two frames max-pooled,
/// grayscale, area resize, frame stack, noop starts, fire reset, episodic life, reward clip.
/// Observations are `stack_num × img_height × img_width` bytes, oldest frame first.
pub struct AtariEnv {
    ale: Ale,
    options: AtariOptions,
    action_set: Vec<i32>,
    fire_reset: bool,
    noop_rng: Mt19937,
    /// envpool's `maxpool_buf_`: two grayscale screens, `RAW_SIZE` bytes each.
    raw: Vec<u8>,
    resize: AreaResize,
    /// envpool's `stack_buf_` as a ring of `stack_num` frames; `oldest` is its front.
    stack: Vec<u8>,
    oldest: usize,
    elapsed_step: i32,
    lives: i32,
    done: bool,
    /// The latest reset's or step's info, for the pool (`Env::info`).
    info: StepInfo,
}

impl AtariEnv {
    /// Env `env_id` of a pool playing `game` (envpool's id without `-v5`, e.g. `Breakout`).
    pub fn new(game: &str, options: &AtariOptions, env_id: i32) -> Result<Self> {
        let seed = options.check(env_id)?;
        // h:136-139: ALE is seeded with the env's seed before the ROM loads.
        let ale_options = AleOptions {
            seed,
            repeat_action_probability: options.repeat_action_probability,
            max_num_frames_per_episode: 0,
        };
        let ale = Ale::new(&rom_path(game)?, &ale_options)?;
        let action_set = if options.full_action_space {
            ale.legal_action_set().to_vec()
        } else {
            ale.minimal_action_set().to_vec()
        };
        // h:151-158: fire reset when FIRE is in the action set in use.
        let fire_reset = options.use_fire_reset && action_set.contains(&FIRE);
        let frame = options.img_height * options.img_width;
        Ok(Self {
            ale,
            action_set,
            fire_reset,
            // h:117 (env.h): gen_(seed_).
            noop_rng: Mt19937::new(seed as u32),
            raw: vec![0; 2 * RAW_SIZE],
            resize: AreaResize::new(RAW_HEIGHT, RAW_WIDTH, options.img_height, options.img_width),
            stack: vec![0; options.stack_num * frame],
            oldest: 0,
            // h:119: the first reset is a game reset.
            elapsed_step: options.max_episode_steps + 1,
            lives: 0,
            done: true,
            info: StepInfo::default(),
            options: options.clone(),
        })
    }

    pub fn options(&self) -> &AtariOptions {
        &self.options
    }

    /// The number of actions: the game's minimal set, or 18 with `full_action_space`.
    pub fn num_actions(&self) -> usize {
        self.action_set.len()
    }

    /// The ALE actions that action indices map to.
    pub fn action_set(&self) -> &[i32] {
        &self.action_set
    }

    /// Whether resets press FIRE.
    pub fn fire_reset(&self) -> bool {
        self.fire_reset
    }

    /// `(stack_num, img_height, img_width)`.
    pub fn observation_shape(&self) -> (usize, usize, usize) {
        let o = &self.options;
        (o.stack_num, o.img_height, o.img_width)
    }

    /// Whether the last step ended an episode (a life, with `episodic_life`): the next
    /// [`step`](Self::step) resets.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The emulator.
    pub fn ale(&self) -> &Ale {
        &self.ale
    }

    /// envpool's `reset()`: a new game, noop starts, fire reset.
    pub fn reset(&mut self, obs: &mut [u8]) -> Result<AtariStep> {
        self.check_obs(obs)?;
        self.reset_episode(true, obs)
    }

    /// envpool's `Reset()` itself (h:168-200): with `episodic_life`, after a life loss that did
    /// not end the game, a soft reset that keeps the game, the step count and the frame stack.
    /// The pool's resets; [`reset`](Self::reset) always starts a new game.
    pub fn reset_soft(&mut self, obs: &mut [u8]) -> Result<AtariStep> {
        self.check_obs(obs)?;
        self.reset_episode(false, obs)
    }

    /// envpool's step: `action` indexes the action set. After a step that ended an episode this
    /// is envpool's autoreset instead (the action unused): a new game, or with `episodic_life`
    /// after a life loss a soft reset that keeps the game, the step count and the frame stack.
    pub fn step(&mut self, action: i64, obs: &mut [u8]) -> Result<AtariStep> {
        self.check_obs(obs)?;
        let n = self.action_set.len();
        let Some(&ale_action) = usize::try_from(action)
            .ok()
            .and_then(|a| self.action_set.get(a))
        else {
            return Err(Error::ActionOutOfRange {
                env_id: 0,
                value: action,
                n: n as i64,
            });
        };
        if self.done {
            return self.reset_episode(false, obs);
        }
        self.step_frames(ale_action, obs)
    }

    /// The env's whole state for a bit-exact resume: ALE's with its RNG, the
    /// frame stack, the last raw frame (an early game over pushes it again), the step count,
    /// lives, the done flag and the no-op generator. Little-endian; for [`load_state`](Self::load_state)
    /// of an env of the same game and options.
    ///
    /// Refused with sticky actions: ALE 0.12.1's state omits the previous action that they
    /// repeat (`StellaEnvironment::m_player_a_action`, stella_environment.cpp:173), so a restored
    /// env could act differently.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        if self.options.repeat_action_probability > 0.0 {
            return Err(Error::Snapshot(format!(
                "Atari state with repeat_action_probability = {}: ALE 0.12.1 does not save the \
                 action sticky actions repeat, so a resume would not be exact",
                self.options.repeat_action_probability
            )));
        }
        let ale = self.ale.clone_state(true)?;
        let mut out =
            Vec::with_capacity(STATE_HEADER + 625 * 4 + RAW_SIZE + self.stack.len() + ale.len());
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&(self.stack.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.oldest as u64).to_le_bytes());
        out.extend_from_slice(&self.elapsed_step.to_le_bytes());
        out.extend_from_slice(&self.lives.to_le_bytes());
        out.push(u8::from(self.done));
        for word in self.noop_rng.to_words() {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.raw[..RAW_SIZE]);
        out.extend_from_slice(&self.stack);
        out.extend_from_slice(&ale);
        Ok(out)
    }

    /// Restores [`save_state`](Self::save_state)'s bytes; bytes that do not fit this env's
    /// options are an error that leaves the env as it was.
    pub fn load_state(&mut self, state: &[u8]) -> Result<()> {
        let bad = |why: &str| Error::Snapshot(format!("Atari state: {why}"));
        let frames = STATE_HEADER + 625 * 4 + RAW_SIZE + self.stack.len();
        if state.len() < frames || &state[..8] != STATE_MAGIC {
            return Err(bad("not written by AtariEnv::save_state, or cut short"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(state[at..at + 8].try_into().unwrap());
        let i32_at = |at: usize| i32::from_le_bytes(state[at..at + 4].try_into().unwrap());
        let oldest = u64_at(16) as usize;
        if u64_at(8) != self.stack.len() as u64 || oldest >= self.options.stack_num {
            return Err(bad("its frame stack does not fit this env's options"));
        }
        let mut words = [0u32; 625];
        for (i, word) in words.iter_mut().enumerate() {
            let at = STATE_HEADER + 4 * i;
            *word = u32::from_le_bytes(state[at..at + 4].try_into().unwrap());
        }
        let rng = Mt19937::from_words(&words).ok_or_else(|| bad("bad no-op generator"))?;
        // ALE last: it checks its own part and leaves the emulator as it was on an error.
        self.ale.restore_state(&state[frames..])?;
        self.noop_rng = rng;
        self.oldest = oldest;
        self.elapsed_step = i32_at(24);
        self.lives = i32_at(28);
        self.done = state[32] != 0;
        let raw_at = STATE_HEADER + 625 * 4;
        self.raw[..RAW_SIZE].copy_from_slice(&state[raw_at..raw_at + RAW_SIZE]);
        self.stack
            .copy_from_slice(&state[raw_at + RAW_SIZE..frames]);
        Ok(())
    }

    fn check_obs(&self, obs: &[u8]) -> Result<()> {
        if obs.len() == self.stack.len() {
            Ok(())
        } else {
            let (s, h, w) = self.observation_shape();
            Err(Error::InvalidConfig(format!(
                "Atari observation buffer of {} bytes; {s}×{h}×{w} needs {}",
                obs.len(),
                self.stack.len()
            )))
        }
    }

    /// h:168-200.
    fn reset_episode(&mut self, force: bool, obs: &mut [u8]) -> Result<AtariStep> {
        let o = &self.options;
        let mut noop = uniform_int(&mut self.noop_rng, 0, o.noop_max - 1) + 1;
        noop -= i32::from(self.fire_reset);
        let mut push_all = false;
        if force
            || !o.episodic_life
            || self.ale.game_over(true)
            || self.elapsed_step >= o.max_episode_steps
        {
            self.ale.reset()?;
            self.elapsed_step = 0;
            push_all = true;
        }
        for _ in 0..noop {
            self.ale.act(NOOP)?;
            if self.ale.game_over(true) {
                self.ale.reset()?;
                push_all = true;
            }
        }
        if self.fire_reset {
            self.ale.act(FIRE)?;
        }
        self.ale.screen_grayscale(&mut self.raw[..RAW_SIZE])?;
        self.push_stack(push_all, false);
        self.done = false;
        self.lives = self.ale.lives();
        Ok(self.write_state(0.0, 1.0, 0.0, obs))
    }

    /// h:202-247.
    fn step_frames(&mut self, ale_action: i32, obs: &mut [u8]) -> Result<AtariStep> {
        let frame_skip = self.options.frame_skip;
        let pooled = frame_skip.min(2);
        let mut reward = 0.0f32;
        self.done = false;
        let mut skip_id = frame_skip;
        while skip_id > 0 && !self.done {
            reward += self.ale.act(ale_action)? as f32;
            self.done = self.ale.game_over(true);
            // The last `pooled` frames land in raw[0] and raw[1], in order (h:211-222).
            if skip_id <= pooled {
                let at = (pooled - skip_id) * RAW_SIZE;
                self.ale
                    .screen_grayscale(&mut self.raw[at..at + RAW_SIZE])?;
            }
            skip_id -= 1;
        }
        // Max-pool only when every skipped frame ran (h:225); an early game over pushes raw[0]
        // as it is, which may be an earlier step's frame, as envpool does.
        self.push_stack(false, frame_skip > 1 && skip_id == 0);
        self.elapsed_step += 1;
        self.done |= self.elapsed_step >= self.options.max_episode_steps;
        let lives = self.ale.lives();
        if self.options.episodic_life && 0 < lives && lives < self.lives {
            self.done = true;
        }
        let discount = if self.options.zero_discount_on_life_loss {
            f32::from(u8::from(self.lives == lives && !self.done))
        } else {
            1.0 - f32::from(u8::from(self.done))
        };
        let info_reward = reward;
        if self.options.reward_clip {
            reward = if reward > 0.0 {
                1.0
            } else if reward < 0.0 {
                -1.0
            } else {
                reward
            };
        }
        self.lives = lives;
        Ok(self.write_state(reward, discount, info_reward, obs))
    }

    /// h:270-289: the flags, and the stack, oldest frame first, into `obs`.
    fn write_state(
        &self,
        reward: f32,
        discount: f32,
        info_reward: f32,
        obs: &mut [u8],
    ) -> AtariStep {
        let truncated = self.done && self.elapsed_step >= self.options.max_episode_steps;
        let frame = self.options.img_height * self.options.img_width;
        let n = self.options.stack_num;
        for (i, out) in obs.chunks_exact_mut(frame).enumerate() {
            let slot = (self.oldest + i) % n;
            out.copy_from_slice(&self.stack[slot * frame..(slot + 1) * frame]);
        }
        AtariStep {
            reward,
            info_reward,
            // envpool's Python: terminated = done & ~trunc.
            terminated: self.done && !truncated,
            truncated,
            lives: self.lives,
            game_over: self.ale.game_over(true),
            discount,
            elapsed_step: self.elapsed_step,
        }
    }

    /// h:308-346: max-pool into raw[0] in place (a later early-ended step may push it again),
    /// resize into the oldest slot, which becomes the newest; `push_all` copies it to every slot.
    fn push_stack(&mut self, push_all: bool, maxpool: bool) {
        let (first, second) = self.raw.split_at_mut(RAW_SIZE);
        if maxpool {
            for (a, &b) in first.iter_mut().zip(second.iter()) {
                *a = (*a).max(b);
            }
        }
        let frame = self.options.img_height * self.options.img_width;
        let n = self.options.stack_num;
        let slot = self.oldest;
        self.resize
            .apply(first, &mut self.stack[slot * frame..(slot + 1) * frame]);
        self.oldest = (slot + 1) % n;
        if push_all {
            let (before, rest) = self.stack.split_at_mut(slot * frame);
            let (newest, after) = rest.split_at_mut(frame);
            for other in before
                .chunks_exact_mut(frame)
                .chain(after.chunks_exact_mut(frame))
            {
                other.copy_from_slice(newest);
            }
        }
    }
}

/// The pool's Atari env. envpool resets on the step after `done`, ignoring its action
/// (h:163-166, 202-204): the pool's `AutoReset::NextStep` does the same, calling `reset` (envpool's
/// `Reset()`, soft after a life loss) instead of `step`. ALE errors cannot happen on a loaded ROM
/// with validated actions; one that does panics, which the pool reports as `EnvPanicked`.
impl Env<u8> for AtariEnv {
    fn observation_space(&self) -> Space {
        let (s, h, w) = self.observation_shape();
        Space::uint8_box(0, 255, &[s, h, w])
    }

    fn action_space(&self) -> Space {
        Space::Discrete {
            n: self.action_set.len() as i64,
        }
    }

    fn reset(&mut self, _rng: &mut Pcg64, obs: &mut [u8]) {
        let step = self
            .reset_soft(obs)
            .unwrap_or_else(|e| panic!("Atari reset: {e}"));
        self.info = info(&step);
    }

    fn step(&mut self, action: Action<'_>, _rng: &mut Pcg64, obs: &mut [u8]) -> StepOutcome {
        let Action::Discrete(action) = action else {
            unreachable!("the pool checks actions against Discrete")
        };
        let step = AtariEnv::step(self, action, obs).unwrap_or_else(|e| panic!("Atari step: {e}"));
        self.info = info(&step);
        StepOutcome {
            reward: step.reward.into(),
            terminated: step.terminated,
        }
    }

    fn has_info(&self) -> bool {
        true
    }

    fn info(&self) -> StepInfo {
        self.info
    }

    fn heap_bytes(&self) -> usize {
        // ALE's own state (emulator, ROM, screen) is a few hundred KB beyond this.
        self.raw.len() + self.stack.len() + (1 << 18)
    }

    fn save_bytes(&self) -> Option<Vec<u8>> {
        // An ALE that cannot serialize is a bug; no checkpoint then (`Snapshot` error).
        self.save_state().ok()
    }

    fn load_bytes(&mut self, state: &[u8]) -> std::result::Result<(), String> {
        self.load_state(state).map_err(|e| e.to_string())
    }
}

fn info(step: &AtariStep) -> StepInfo {
    StepInfo {
        lives: step.lives,
        raw_reward: step.info_reward,
        truncated: step.truncated,
    }
}
