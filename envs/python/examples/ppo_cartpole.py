#!/usr/bin/env python3
"""PPO on CartPole-v1 through gymnasium's vector API, with hone_envs as the vector env.

CleanRL's `ppo.py` defaults (4 envs x 128 steps, 4 epochs of 4 minibatches, lr 2.5e-4 annealed,
GAE lambda 0.95, clip 0.2, entropy 0.01), written for gymnasium >= 1.0's next-step autoreset: the
step that ends an episode returns its last observation (so a time-limit truncation bootstraps
from it), and the next step is a reset step whose transition is left out of the update.

The full run, 500k steps: measured on hone's 2-core machine under a load average of 6 to 9 from
other jobs, 1218 s, with the mean return of the last 20 episodes at 500.0 (the maximum) from
about 290k steps on (140 at 51k steps, 289 at 102k):

    python envs/python/examples/ppo_cartpole.py
    python envs/python/examples/ppo_cartpole.py --backend gymnasium   # the same with SyncVectorEnv

The pytest suite (tests/test_ppo.py) runs a short budget of it.
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
from torch.distributions import Categorical


@dataclasses.dataclass
class Args:
    env_id: str = "CartPole-v1"
    backend: str = "hone"  # "hone": hone_envs.make; "gymnasium": gymnasium's SyncVectorEnv
    seed: int = 1
    total_timesteps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    norm_adv: bool = True
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    torch_threads: int = 1


def make_envs(args: Args) -> gym.vector.VectorEnv:
    """The vector env: `hone_envs.make` in place of gymnasium's `SyncVectorEnv`."""
    if args.backend == "hone":
        import hone_envs

        return hone_envs.make(args.env_id, num_envs=args.num_envs, seed=args.seed)
    if args.backend == "gymnasium":
        envs = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="sync")
        return gym.wrappers.vector.RecordEpisodeStatistics(envs)
    raise ValueError(f"backend = {args.backend!r}, must be 'hone' or 'gymnasium'")


def layer(in_features: int, out_features: int, std: float = np.sqrt(2)) -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(linear.weight, std)
    nn.init.constant_(linear.bias, 0.0)
    return linear


class Agent(nn.Module):
    def __init__(self, obs_size: int, num_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer(obs_size, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, std=1.0)
        )
        self.actor = nn.Sequential(
            layer(obs_size, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, num_actions, std=0.01)
        )

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def act(self, obs: torch.Tensor, action: Optional[torch.Tensor] = None):
        # Argument validation costs more than the tiny network's forward pass.
        distribution = Categorical(logits=self.actor(obs), validate_args=False)
        if action is None:
            action = distribution.sample()
        return action, distribution.log_prob(action), distribution.entropy(), self.value(obs)


def train(args: Args, log: Callable[[str], None] = print) -> dict:
    """Trains; returns the finished episodes' returns in order, the steps taken and the time."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    envs = make_envs(args)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs_size = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_size, int(envs.single_action_space.n))
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    n, steps = args.num_envs, args.num_steps
    obs_buf = torch.zeros((steps, n, obs_size))
    actions = torch.zeros((steps, n), dtype=torch.long)
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
        b_actions = actions.reshape(-1)[keep]
        b_logprobs = logprobs.reshape(-1)[keep]
        b_advantages = advantages.reshape(-1)[keep]
        b_returns = returns.reshape(-1)[keep]
        b_values = values.reshape(-1)[keep]
        rows = b_obs.shape[0]
        minibatch_size = max(rows // args.num_minibatches, 1)
        for _ in range(args.update_epochs):
            order = torch.randperm(rows)
            for first in range(0, rows, minibatch_size):
                mb = order[first : first + minibatch_size]
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
        "episode_returns": episode_returns,
        "steps": num_updates * batch_size,
        "seconds": time.perf_counter() - start,
    }


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=field.default)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(field.type), str)
            parser.add_argument(flag, type=kind, default=field.default)
    return Args(**vars(parser.parse_args()))


if __name__ == "__main__":
    result = train(parse_args())
    last = result["episode_returns"][-20:]
    print(f"done: {result['steps']} steps in {result['seconds']:.0f}s, mean return of the last 20 episodes {np.mean(last):.1f}")
