//! Evaluation of a policy: the deterministic action (argmax or mean) on fresh envs, one episode
//! each, observation statistics frozen.

use hone_envs::{Actions, AutoReset, PoolConfig, Space};
use hone_kernels::RunningMeanStd;
use tch::{Device, Tensor};

use super::{NORMALIZE_EPSILON, PpoConfig};
use crate::policy::{ActionKind, ActorCritic};
use crate::{Error, Result};

/// Envs an evaluation steps at once: `--episodes` beyond it run in rounds, so memory stays
/// bounded however many episodes are asked for.
pub const EVAL_ENVS: usize = 1024;

/// See [`Ppo::evaluate`]. One env per episode (env i seeded `seed + i`), each stopped after its
/// first episode, at most [`EVAL_ENVS`] at a time.
pub fn evaluate_policy(
    agent: &ActorCritic,
    config: &PpoConfig,
    obs_stats: Option<&RunningMeanStd>,
    episodes: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f64>> {
    let mut returns = Vec::new();
    returns.try_reserve_exact(episodes).map_err(|_| {
        Error::Config(format!(
            "{episodes} evaluation episodes do not fit in memory"
        ))
    })?;
    while returns.len() < episodes {
        let first = returns.len();
        let round_seed = u64::try_from(first)
            .ok()
            .and_then(|first| seed.checked_add(first))
            .ok_or_else(|| {
                Error::Config(format!(
                    "evaluation seed {seed} + {episodes} episodes passes 2^64 - 1"
                ))
            })?;
        let round = (episodes - first).min(EVAL_ENVS);
        returns.extend(evaluate_round(agent, config, obs_stats, round, round_seed)?);
        progress(returns.len());
    }
    Ok(returns)
}

/// `episodes` (at least 1) episodes of one pool, env i seeded `seed + i`.
fn evaluate_round(
    agent: &ActorCritic,
    config: &PpoConfig,
    obs_stats: Option<&RunningMeanStd>,
    episodes: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let mut pool_config = PoolConfig::new(config.env_id.clone(), episodes)
        .num_threads(config.env_threads)
        .seed(seed)
        .autoreset(AutoReset::SameStep);
    if let Some(steps) = config.max_episode_steps {
        pool_config = pool_config.max_episode_steps(steps);
    }
    let mut pool = hone_envs::registry::make(&config.env_id, pool_config)?;
    let d = agent.obs_dim as usize;
    let (low, high) = match pool.action_space() {
        Space::Box { low, high, .. } => (low.clone(), high.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    let mut returns: Vec<Option<f64>> = vec![None; episodes];
    let mut obs = pool.reset()?.observations.to_vec();
    let mut discrete = vec![0i64; episodes];
    let mut continuous: Vec<f32>;
    while returns.iter().any(Option::is_none) {
        if let Some(stats) = obs_stats {
            stats.normalize(&mut obs, NORMALIZE_EPSILON, Some(config.clip_observation))?;
        }
        let input = Tensor::from_slice(&obs)
            .view([episodes as i64, d as i64])
            .to_device(agent.device());
        let out = tch::no_grad(|| agent.actor_output(&input));
        let batch = match agent.action {
            ActionKind::Categorical { .. } => {
                let best = Vec::<i64>::try_from(out.argmax(-1, false).to_device(Device::Cpu))?;
                discrete.copy_from_slice(&best);
                pool.step(Actions::Int(&discrete))?
            }
            ActionKind::Gaussian { .. } => {
                continuous = Vec::<f32>::try_from(out.to_device(Device::Cpu).flatten(0, -1))?;
                for (i, a) in continuous.iter_mut().enumerate() {
                    *a = a.clamp(low[i % low.len()], high[i % high.len()]);
                }
                pool.step(Actions::Float(&continuous))?
            }
        };
        let eps = &batch.episodes;
        for k in 0..eps.len() {
            let slot = &mut returns[eps.env_id[k] as usize];
            if slot.is_none() {
                *slot = Some(eps.episode_return[k]);
            }
        }
        obs.copy_from_slice(batch.observations);
    }
    Ok(returns
        .into_iter()
        .map(|r| r.expect("every episode finished"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppo::Ppo;

    /// Episodes beyond one round run in later rounds seeded where the earlier ones stopped, so
    /// episode i is env `seed + i`'s whatever the count; a seed that would pass 2^64 is an error.
    #[test]
    fn evaluation_runs_in_rounds_seeded_where_the_last_stopped() {
        let config = PpoConfig {
            num_envs: 1,
            num_steps: 8,
            num_minibatches: 1,
            torch_threads: 1,
            env_threads: 1,
            device: "cpu".into(),
            ..PpoConfig::default()
        };
        let ppo = Ppo::new(config).unwrap();
        let mut rounds = Vec::new();
        let all = ppo
            .evaluate_with_progress(EVAL_ENVS + 3, 7, &mut |done| rounds.push(done))
            .unwrap();
        assert_eq!(rounds, [EVAL_ENVS, EVAL_ENVS + 3]);
        let tail = ppo.evaluate(3, 7 + EVAL_ENVS as u64).unwrap();
        assert_eq!(all[EVAL_ENVS..], tail[..]);
        let err = ppo.evaluate(EVAL_ENVS + 1, u64::MAX - 10).unwrap_err();
        assert!(err.to_string().contains("passes 2^64"), "{err}");
    }
}
