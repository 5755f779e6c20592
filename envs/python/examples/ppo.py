#!/usr/bin/env python3
"""PPO through gymnasium's vector API, with hone_envs as the vector env: CleanRL's `ppo.py` for
discrete actions, its `ppo_continuous_action.py` for continuous ones (the MuJoCo tasks).

The defaults follow the action space, as CleanRL's two scripts: for `Discrete` 4 envs x 128 steps,
4 epochs of 4 minibatches, lr 2.5e-4 annealed, entropy 0.01, 500k steps; for `Box` 1 env x 2048
steps, 10 epochs of 32 minibatches, lr 3e-4 annealed, no entropy bonus, 1M steps, a Gaussian
policy with a state-independent log std, and CleanRL's wrappers in their vector form (actions
clipped to the bounds, observations normalised and clipped to ±10, rewards scaled by a running
estimate of the discounted return's spread and clipped to ±10). Both: GAE lambda 0.95, gamma
0.99, clip 0.2, clipped value loss, gradient norm 0.5, 64-64 tanh networks with orthogonal
initialisation.

Written for gymnasium >= 1.0's next-step autoreset: the step that ends an episode returns its
last observation (so a time-limit truncation bootstraps from it), and the next step is a reset
step whose transition is left out of the update. The episode returns reported are the raw ones
(the pool's statistics, before any reward scaling).

CartPole-v1, 500k steps: measured on hone's 2-core machine under a load average of 6 to 9 from
other jobs, 1218 s, with the mean return of the last 20 episodes at 500.0 (the maximum) from
about 290k steps on (140 at 51k steps, 289 at 102k):

    python envs/python/examples/ppo.py
    python envs/python/examples/ppo.py --backend gymnasium   # the same with SyncVectorEnv
    python envs/python/examples/ppo.py --env-id HalfCheetah-v5  # continuous: CleanRL's defaults

The pytest suite (tests/test_ppo.py) runs short budgets of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Callable, List, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal


@dataclasses.dataclass
class Args:
    env_id: str = "CartPole-v1"
    backend: str = "hone"  # "hone": hone_envs.make; "gymnasium": gymnasium's SyncVectorEnv
    seed: int = 1
    torch_threads: int = 1
    # None: CleanRL's default for the task's action space (DISCRETE or CONTINUOUS below).
    total_timesteps: Optional[int] = None
    num_envs: Optional[int] = None
    num_steps: Optional[int] = None
    learning_rate: Optional[float] = None
    anneal_lr: Optional[bool] = None
    gamma: Optional[float] = None
    gae_lambda: Optional[float] = None
    num_minibatches: Optional[int] = None
    update_epochs: Optional[int] = None
    norm_adv: Optional[bool] = None
    clip_coef: Optional[float] = None
    clip_vloss: Optional[bool] = None
    ent_coef: Optional[float] = None
    vf_coef: Optional[float] = None
    max_grad_norm: Optional[float] = None


# CleanRL's ppo.py.
DISCRETE = dict(total_timesteps=500_000, num_envs=4, num_steps=128, learning_rate=2.5e-4, anneal_lr=True,
                gamma=0.99, gae_lambda=0.95, num_minibatches=4, update_epochs=4, norm_adv=True, clip_coef=0.2,
                clip_vloss=True, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5)
# CleanRL's ppo_continuous_action.py.
CONTINUOUS = dict(DISCRETE, total_timesteps=1_000_000, num_envs=1, num_steps=2048, learning_rate=3e-4,
                  num_minibatches=32, update_epochs=10, ent_coef=0.0)


def with_defaults(args: Args, continuous: bool) -> Args:
    """`args` with every unset setting at CleanRL's default for the action space."""
    defaults = CONTINUOUS if continuous else DISCRETE
    return dataclasses.replace(
        args, **{name: value for name, value in defaults.items() if getattr(args, name) is None}
    )


def is_continuous(args: Args) -> bool:
    """Whether the task's actions are a `Box`, from one env of the chosen backend."""
    if args.backend == "hone":
        import hone_envs

        envs = hone_envs.make(args.env_id, num_envs=1)
        space = envs.single_action_space
    else:
        envs = gym.make(args.env_id)
        space = envs.action_space
    envs.close()
    return isinstance(space, gym.spaces.Box)


def make_envs(args: Args, continuous: bool) -> gym.vector.VectorEnv:
    """The vector env: `hone_envs.make` in place of gymnasium's `SyncVectorEnv`, under CleanRL's
    wrappers for continuous actions."""
    if args.backend == "hone":
        import hone_envs

        envs = hone_envs.make(args.env_id, num_envs=args.num_envs, seed=args.seed)
    elif args.backend == "gymnasium":
        envs = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="sync")
        envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    else:
        raise ValueError(f"backend = {args.backend!r}, must be 'hone' or 'gymnasium'")
    if continuous:
        envs = gym.wrappers.vector.ClipAction(envs)
        envs = gym.wrappers.vector.NormalizeObservation(envs)
        envs = gym.wrappers.vector.TransformObservation(envs, lambda obs: np.clip(obs, -10, 10))
        envs = gym.wrappers.vector.NormalizeReward(envs, gamma=args.gamma)
        envs = gym.wrappers.vector.TransformReward(envs, lambda reward: np.clip(reward, -10, 10))
    return envs


def layer(in_features: int, out_features: int, std: float = np.sqrt(2)) -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(linear.weight, std)
    nn.init.constant_(linear.bias, 0.0)
    return linear


class Agent(nn.Module):
    """Critic and actor, 64-64 tanh each: logits for `Discrete` actions, for `Box` ones the mean of
    a Gaussian with a learned, state-independent log std."""

    def __init__(self, obs_size: int, action_space: gym.spaces.Space) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer(obs_size, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, std=1.0)
        )
        if isinstance(action_space, gym.spaces.Discrete):
            outputs, self.actor_logstd = int(action_space.n), None
        else:
            outputs = int(np.prod(action_space.shape))
            self.actor_logstd = nn.Parameter(torch.zeros(1, outputs))
        self.actor = nn.Sequential(
            layer(obs_size, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, outputs, std=0.01)
        )

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def act(self, obs: torch.Tensor, action: Optional[torch.Tensor] = None):
        # Argument validation costs more than the tiny network's forward pass.
        if self.actor_logstd is None:
            distribution = Categorical(logits=self.actor(obs), validate_args=False)
        else:
            mean = self.actor(obs)
            distribution = Normal(mean, self.actor_logstd.expand_as(mean).exp(), validate_args=False)
        if action is None:
            action = distribution.sample()
        logprob, entropy = distribution.log_prob(action), distribution.entropy()
        if self.actor_logstd is not None:
            # Independent action dimensions: a joint log-probability and entropy.
            logprob, entropy = logprob.sum(-1), entropy.sum(-1)
        return action, logprob, entropy, self.value(obs)


def train(args: Args, log: Callable[[str], None] = print) -> dict:
    """Trains; returns the finished episodes' returns in order, the steps taken and the time."""
    continuous = is_continuous(args)
    args = with_defaults(args, continuous)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    envs = make_envs(args, continuous)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs_size = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_size, envs.single_action_space)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    n, steps = args.num_envs, args.num_steps
    obs_buf = torch.zeros((steps, n, obs_size))
    action_shape = envs.single_action_space.shape
    actions = torch.zeros((steps, n, *action_shape), dtype=torch.float32 if continuous else torch.long)
    logprobs = torch.zeros((steps, n))
    rewards = torch.zeros((steps, n))
    terminated = torch.zeros((steps, n), dtype=torch.bool)
    ended = torch.zeros((steps, n), dtype=torch.bool)
    valid = torch.zeros((steps, n), dtype=torch.bool)
    values = torch.zeros((steps, n))

    batch_size = n * steps
    num_updates = args.total_timesteps // batch_size
    episode_returns: List[float] = []
    start = time.perf_counter()

    obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(obs_np, dtype=torch.float32)
    # Rows whose previous step ended an episode: this step resets them (next-step autoreset).
    resetting = torch.zeros(n, dtype=torch.bool)
    for update in range(1, num_updates + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (update - 1.0) / num_updates)
        for step in range(steps):
            obs_buf[step] = next_obs
            valid[step] = ~resetting
            with torch.no_grad():
                action, logprob, _, value = agent.act(next_obs)
            actions[step], logprobs[step], values[step] = action, logprob, value
            obs_np, reward, term, trunc, info = envs.step(action.numpy())
            next_obs = torch.as_tensor(obs_np, dtype=torch.float32)
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            terminated[step] = torch.as_tensor(term)
            resetting = torch.as_tensor(np.logical_or(term, trunc))
            ended[step] = resetting
            if "episode" in info:
                episode_returns.extend(info["episode"]["r"][info["_episode"]].tolist())

        with torch.no_grad():
            # values[t + 1] is V of the observation step t returned: the last one of a finished
            # episode, which a truncated episode bootstraps from.
            next_values = torch.cat([values[1:], agent.value(next_obs).unsqueeze(0)])
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(n)
            for t in reversed(range(steps)):
                delta = rewards[t] + args.gamma * next_values[t] * (~terminated[t]) - values[t]
                last = delta + args.gamma * args.gae_lambda * (~ended[t]) * last
                # A reset step's transition is no transition: nothing flows through it.
                last = torch.where(valid[t], last, torch.zeros_like(last))
                advantages[t] = last
            returns = advantages + values

        keep = valid.reshape(-1)
        b_obs = obs_buf.reshape(-1, obs_size)[keep]
        b_actions = actions.reshape(-1, *action_shape)[keep]
        b_logprobs = logprobs.reshape(-1)[keep]
        b_advantages = advantages.reshape(-1)[keep]
        b_returns = returns.reshape(-1)[keep]
        b_values = values.reshape(-1)[keep]
        rows = b_obs.shape[0]
        for _ in range(args.update_epochs):
            order = torch.randperm(rows)
            # num_minibatches of (nearly) equal size, as CleanRL's when no row is left out.
            for mb in torch.tensor_split(order, min(args.num_minibatches, rows)):
                _, new_logprob, entropy, new_value = agent.act(b_obs[mb], b_actions[mb])
                log_ratio = new_logprob - b_logprobs[mb]
                ratio = log_ratio.exp()
                mb_adv = b_advantages[mb]
                if args.norm_adv and len(mb) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                ).mean()
                if args.clip_vloss:
                    unclipped = (new_value - b_returns[mb]) ** 2
                    clipped_value = b_values[mb] + torch.clamp(
                        new_value - b_values[mb], -args.clip_coef, args.clip_coef
                    )
                    v_loss = 0.5 * torch.max(unclipped, (clipped_value - b_returns[mb]) ** 2).mean()
                else:
                    v_loss = 0.5 * ((new_value - b_returns[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        if update % 10 == 0 or update == num_updates:
            recent = episode_returns[-20:]
            mean = float(np.mean(recent)) if recent else float("nan")
            log(
                f"update {update}/{num_updates}  steps {update * batch_size}  "
                f"episodes {len(episode_returns)}  mean return (last 20) {mean:.1f}  "
                f"{time.perf_counter() - start:.1f}s"
            )
    envs.close()
    return {
        "args": args,
        "episode_returns": episode_returns,
        "steps": num_updates * batch_size,
        "seconds": time.perf_counter() - start,
    }


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        # The annotations are strings (`from __future__ import annotations`): "Optional[int]"...
        name = str(field.type).removeprefix("Optional[").removesuffix("]")
        if name == "bool":
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=field.default)
        else:
            kind = {"int": int, "float": float, "str": str}[name]
            parser.add_argument(flag, type=kind, default=field.default)
    return Args(**vars(parser.parse_args()))


if __name__ == "__main__":
    result = train(parse_args())
    last = result["episode_returns"][-20:]
    print(f"done: {result['steps']} steps in {result['seconds']:.0f}s, mean return of the last 20 episodes {np.mean(last):.1f}")
