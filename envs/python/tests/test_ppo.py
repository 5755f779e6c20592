"""The PPO example (examples/ppo_cartpole.py), written against gymnasium's vector API, learns
CartPole-v1 with hone_envs as its vector env: a short budget and a modest bar (a random policy's
episodes last about 22 steps; the full run of the script reaches 500)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ppo_cartpole.py"


def load_example():
    spec = importlib.util.spec_from_file_location("ppo_cartpole", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_ppo_learns_cartpole_with_hone_envs():
    ppo = load_example()
    args = ppo.Args(backend="hone", seed=1, total_timesteps=20_480, learning_rate=1e-3)
    result = ppo.train(args, log=lambda line: None)
    returns = result["episode_returns"]
    assert result["steps"] == 20_480 and len(returns) > 50
    # Learning, not luck: the first episodes are a random policy's, the last ones much longer.
    first, last = float(np.mean(returns[:20])), float(np.mean(returns[-20:]))
    assert first < 40, first
    assert last >= 100, (first, last)
