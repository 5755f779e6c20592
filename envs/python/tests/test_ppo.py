"""The PPO example (examples/ppo.py), written against gymnasium's vector API, learns with
hone_envs as its vector env: CartPole-v1 with CleanRL's discrete defaults, InvertedPendulum-v5
(MuJoCo) with its continuous ones. Short budgets and modest bars: a random policy's episodes last
about 22 steps on CartPole and 5 to 10 on InvertedPendulum; the full runs reach 500 and 1000."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ppo.py"


def load_example():
    spec = importlib.util.spec_from_file_location("ppo_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def first_and_last(returns):
    return float(np.mean(returns[:20])), float(np.mean(returns[-20:]))


def test_ppo_learns_cartpole_with_hone_envs():
    ppo = load_example()
    args = ppo.Args(backend="hone", seed=1, total_timesteps=20_480, learning_rate=1e-3)
    result = ppo.train(args, log=lambda line: None)
    returns = result["episode_returns"]
    used = result["args"]
    assert (used.num_envs, used.num_steps, used.num_minibatches, used.ent_coef) == (4, 128, 4, 0.01)
    assert result["steps"] == 20_480 and len(returns) > 50
    # Learning, not luck: the first episodes are a random policy's, the last ones much longer.
    first, last = first_and_last(returns)
    assert first < 40, first
    assert last >= 100, (first, last)


def test_ppo_learns_inverted_pendulum_with_hone_envs():
    ppo = load_example()
    args = ppo.Args(env_id="InvertedPendulum-v5", backend="hone", seed=1, total_timesteps=20_480)
    result = ppo.train(args, log=lambda line: None)
    returns = result["episode_returns"]
    # CleanRL's continuous defaults: one env, 2048 steps per update, no entropy bonus.
    used = result["args"]
    assert (used.num_envs, used.num_steps, used.num_minibatches, used.ent_coef) == (1, 2048, 32, 0.0)
    assert result["steps"] == 20_480 and len(returns) > 100
    first, last = first_and_last(returns)
    assert first < 30, first
    assert last >= 100, (first, last)
