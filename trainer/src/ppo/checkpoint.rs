//! A PPO checkpoint folder: `model.safetensors`, `optimizer.safetensors`, `state.json` (all
//! that is not a tensor) and `config.toml`. Loading it restores the run exactly: floats in
//! `state.json` parse back to the bits they were written from (serde_json's `float_roundtrip`),
//! and nothing non-finite is ever written or loaded.

use std::path::Path;
use std::time::Instant;

use hone_envs::PoolSnapshot;
use hone_envs::rng::Pcg64;
use hone_kernels::{RewardNormalizer, RunningMeanStd};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{Ppo, PpoConfig};
use crate::{Error, Result};

/// Everything of a run that is not a tensor, as saved in `state.json`.
#[derive(Debug, Serialize, Deserialize)]
struct TrainerState {
    global_step: u64,
    iteration: u64,
    elapsed_s: f64,
    rng: [u64; 4],
    obs_stats: Option<RunningMeanStd>,
    reward_normalizer: Option<RewardNormalizer>,
    next_obs: Vec<f32>,
    pool: PoolSnapshot,
}

impl Ppo {
    /// The first parameter or optimiser moment that holds a NaN or an infinity, named.
    pub(super) fn first_non_finite(&self) -> Result<Option<String>> {
        if let Some(name) = self.agent.params.first_non_finite()? {
            return Ok(Some(format!("parameter `{name}`")));
        }
        Ok(self
            .optimizer
            .first_non_finite()?
            .map(|name| format!("optimiser state `{name}`")))
    }

    /// Writes the checkpoint files into `dir` (a fresh folder; see `CheckpointStore::save`).
    /// Non-finite weights are an error, and nothing is written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some(what) = self.first_non_finite()? {
            return Err(Error::Diverged(format!(
                "{what} holds NaN or infinite values at update {}; no checkpoint written",
                self.iteration
            )));
        }
        let state = TrainerState {
            global_step: self.global_step,
            iteration: self.iteration,
            elapsed_s: self.elapsed_s(),
            rng: self.rng.to_words(),
            obs_stats: self.obs_stats.clone(),
            reward_normalizer: self.reward_normalizer.clone(),
            next_obs: self.next_obs.clone(),
            pool: self.pool.snapshot()?,
        };
        Tensor::write_safetensors(
            &self.agent.params.named_tensors(),
            dir.join("model.safetensors"),
        )?;
        Tensor::write_safetensors(
            &self.optimizer.state_tensors(),
            dir.join("optimizer.safetensors"),
        )?;
        let json = serde_json::to_vec(&state).expect("the trainer state serialises");
        crate::run_dir::write_atomic(&dir.join("state.json"), &json)?;
        crate::run_dir::write_atomic(
            &dir.join("config.toml"),
            crate::config::to_toml(&self.config)?.as_bytes(),
        )?;
        Ok(())
    }

    /// Rebuilds a run from a checkpoint folder written by [`Self::save`]. `config` is the run's
    /// config (possibly with a longer `total_timesteps`); its model shape must match. A
    /// checkpoint with non-finite weights is an error that names the tensor.
    pub fn load(config: PpoConfig, dir: &Path) -> Result<Self> {
        let source = dir.display().to_string();
        let mut ppo = Self::new(config)?;
        let read = |name: &str| -> Result<Vec<(String, Tensor)>> {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Error::Checkpoint(format!("{source}: {name} is missing")));
            }
            Tensor::read_safetensors(&path)
                .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))
        };
        ppo.agent
            .params
            .load_named(&read("model.safetensors")?, &source)?;
        ppo.optimizer
            .load_state(&read("optimizer.safetensors")?, &source)?;
        if let Some(what) = ppo.first_non_finite()? {
            return Err(Error::Checkpoint(format!(
                "{source}: {what} holds NaN or infinite values"
            )));
        }
        let state_path = dir.join("state.json");
        let bytes = std::fs::read(&state_path).map_err(|source| Error::Io {
            path: state_path.clone(),
            cause: source,
        })?;
        let state: TrainerState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", state_path.display())))?;
        if state.next_obs.len() != ppo.next_obs.len() {
            return Err(Error::Checkpoint(format!(
                "{source}: saved with {} observation values, this run has {}",
                state.next_obs.len(),
                ppo.next_obs.len()
            )));
        }
        ppo.pool
            .restore(&state.pool)
            .map_err(|e| Error::Checkpoint(format!("{source}: {e}")))?;
        ppo.global_step = state.global_step;
        ppo.iteration = state.iteration;
        ppo.elapsed_before = state.elapsed_s;
        ppo.session_start = Instant::now();
        ppo.rng = Pcg64::from_words(state.rng);
        ppo.obs_stats = state.obs_stats;
        ppo.reward_normalizer = state.reward_normalizer;
        ppo.next_obs = state.next_obs;
        Ok(ppo)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hone_telemetry::UpdateEvent;

    use super::*;
    use crate::ppo::tests::small;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hone-ppo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What must be equal, to the bit, between a straight run and a resumed one.
    fn fingerprint(event: &UpdateEvent) -> String {
        format!(
            "{} {} {:?} {:?} {:?} {:?} {:?} {:?}",
            event.update,
            event.global_step,
            event.losses.policy_loss.to_bits(),
            event.losses.value_loss.to_bits(),
            event.losses.entropy.to_bits(),
            event.losses.approx_kl.to_bits(),
            event.losses.grad_norm.to_bits(),
            event.episodes,
        )
    }

    fn file_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
        ["model.safetensors", "optimizer.safetensors", "state.json"]
            .iter()
            .map(|name| (name.to_string(), std::fs::read(dir.join(name)).unwrap()))
            .collect()
    }

    /// "N updates straight" equals "k updates, save, load, N - k more" at every stop point k,
    /// to the bit: the events, and a checkpoint of the resumed run equals the straight run's
    /// byte for byte. The state holds f64 env states and normaliser statistics, so a float
    /// that does not parse back to its bits fails this (the elapsed time is zeroed: it is the
    /// one value that differs between the runs). With the `mujoco` feature the list holds
    /// MuJoCo tasks too (their env state is MuJoCo's integration state plus the task's carried
    /// values); Hopper terminates, so its episodes end and reset between the stop points.
    #[test]
    fn resuming_at_every_stop_point_equals_the_straight_run() {
        let dir = temp_dir("resume");
        #[cfg_attr(not(feature = "mujoco"), allow(unused_mut))]
        let mut tasks = vec![
            ("CartPole-v1", false),
            ("Pendulum-v1", true),
            ("Acrobot-v1", false),
            ("MountainCarContinuous-v0", true),
        ];
        #[cfg(feature = "mujoco")]
        tasks.extend([("HalfCheetah-v5", true), ("Hopper-v5", true)]);
        for (env, continuous) in tasks {
            let updates = 6;
            let config = small(env, continuous);
            // Every run starts from one saved initial state: Ppo::new draws its initial weights
            // from libtorch's global generator, which tests running alongside draw from too.
            let init = dir.join(format!("{env}-init"));
            std::fs::create_dir_all(&init).unwrap();
            Ppo::new(config.clone()).unwrap().save(&init).unwrap();
            let fresh = || Ppo::load(config.clone(), &init).unwrap();
            let mut straight = fresh();
            let events: Vec<UpdateEvent> =
                (0..updates).map(|_| straight.iterate().unwrap()).collect();
            let want: Vec<String> = events.iter().map(fingerprint).collect();
            if env == "Hopper-v5" {
                // Episodes end (and reset) before the last stop point, not only at the end.
                let ended: u64 = events[..updates - 1].iter().map(|e| e.episodes.count).sum();
                assert!(
                    ended > 0,
                    "{env}: no episode ended before the last stop point"
                );
            }
            straight.elapsed_before = 0.0;
            straight.session_start = Instant::now();
            let end = dir.join(format!("{env}-straight"));
            std::fs::create_dir_all(&end).unwrap();
            straight.save(&end).unwrap();
            for stop in 1..updates {
                let mut first = fresh();
                let mut got: Vec<String> = (0..stop)
                    .map(|_| fingerprint(&first.iterate().unwrap()))
                    .collect();
                let at = dir.join(format!("{env}-{stop}"));
                std::fs::create_dir_all(&at).unwrap();
                first.save(&at).unwrap();
                drop(first);
                let mut resumed = Ppo::load(config.clone(), &at).unwrap();
                got.extend((stop..updates).map(|_| fingerprint(&resumed.iterate().unwrap())));
                assert_eq!(got, want, "{env}: resumed after update {stop}");
                resumed.elapsed_before = 0.0;
                resumed.session_start = Instant::now();
                let again = dir.join(format!("{env}-{stop}-end"));
                std::fs::create_dir_all(&again).unwrap();
                resumed.save(&again).unwrap();
                // state.json's elapsed_s is the only field that may differ (a few microseconds).
                let strip = |files: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
                    files
                        .into_iter()
                        .map(|(name, bytes)| {
                            if name != "state.json" {
                                return (name, bytes);
                            }
                            let mut value: serde_json::Value =
                                serde_json::from_slice(&bytes).unwrap();
                            value["elapsed_s"] = 0.into();
                            (name, serde_json::to_vec(&value).unwrap())
                        })
                        .collect()
                };
                assert!(
                    strip(file_bytes(&again)) == strip(file_bytes(&end)),
                    "{env}: the checkpoint after resuming at {stop} differs from the straight run's"
                );
            }
        }
    }

    /// Every f64 and f32 bit pattern of a finite value survives state.json: the f64 env states
    /// and statistics of a checkpoint parse back to the bits they were written from.
    #[test]
    fn state_floats_round_trip_to_the_bit() {
        let mut rng = Pcg64::from_seed(5);
        let mut f64s = Vec::new();
        let mut f32s = Vec::new();
        while f64s.len() < 200_000 {
            let x = f64::from_bits(rng.next_u64());
            if x.is_finite() {
                f64s.push(x);
            }
            let y = f32::from_bits(rng.next_u64() as u32);
            if y.is_finite() {
                f32s.push(y);
            }
        }
        let text = serde_json::to_string(&(&f64s, &f32s)).unwrap();
        let (back64, back32): (Vec<f64>, Vec<f32>) = serde_json::from_str(&text).unwrap();
        let differ64 = f64s
            .iter()
            .zip(&back64)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        let differ32 = f32s
            .iter()
            .zip(&back32)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            (differ64, differ32),
            (0, 0),
            "floats that do not parse back to their bits"
        );
    }

    /// A step that makes the weights non-finite fails the update, naming the tensor; such
    /// weights are never saved, and a checkpoint holding them does not load.
    #[test]
    fn non_finite_weights_are_never_saved_or_loaded() {
        let config = PpoConfig {
            learning_rate: 1e39,
            num_minibatches: 1,
            update_epochs: 1,
            ..small("CartPole-v1", false)
        };
        let mut ppo = Ppo::new(config.clone()).unwrap();
        let err = ppo.iterate().unwrap_err().to_string();
        assert!(
            err.contains("parameter `") && err.contains("NaN or infinite"),
            "{err}"
        );
        let dir = temp_dir("non-finite");
        let err = ppo.save(&dir).unwrap_err().to_string();
        assert!(err.contains("no checkpoint written"), "{err}");
        assert!(!dir.join("model.safetensors").exists());

        let fine = small("CartPole-v1", false);
        Ppo::new(fine.clone()).unwrap().save(&dir).unwrap();
        let mut tensors = Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
        let (name, tensor) = &mut tensors[1];
        let _ = tensor.fill_(f64::INFINITY);
        let name = name.clone();
        Tensor::write_safetensors(&tensors, dir.join("model.safetensors")).unwrap();
        let err = Ppo::load(fine, &dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("parameter `{name}` holds NaN or infinite values")),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_checkpoint_is_a_clear_error() {
        let dir = temp_dir("corrupt");
        let config = small("CartPole-v1", false);
        Ppo::new(config.clone()).unwrap().save(&dir).unwrap();
        std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
        let err = Ppo::load(config.clone(), &dir).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        let err = Ppo::load(config.clone(), &dir).unwrap_err().to_string();
        assert!(err.contains("model.safetensors is missing"), "{err}");
        let wider = PpoConfig {
            hidden_sizes: vec![32, 32],
            ..config.clone()
        };
        Ppo::new(config.clone()).unwrap().save(&dir).unwrap();
        let err = Ppo::load(wider, &dir).unwrap_err().to_string();
        assert!(err.contains("has shape"), "{err}");
    }
}
