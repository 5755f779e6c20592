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


def train_and_check(settings, *, defaults, min_episodes, first_below, last_at_least):
    """Trains 20,480 steps with hone_envs; checks the settings the action space picked
    (num_envs, num_steps, num_minibatches, ent_coef), and that it learned: the first 20 episodes
    are a random policy's, the last 20 much longer."""
    ppo = load_example()
    result = ppo.train(ppo.Args(backend="hone", seed=1, total_timesteps=20_480, **settings), log=lambda line: None)
    used, returns = result["args"], result["episode_returns"]
    assert (used.num_envs, used.num_steps, used.num_minibatches, used.ent_coef) == defaults
    assert result["steps"] == 20_480 and len(returns) > min_episodes
    first, last = float(np.mean(returns[:20])), float(np.mean(returns[-20:]))
    assert first < first_below, first
    assert last >= last_at_least, (first, last)


def test_ppo_learns_cartpole_with_hone_envs():
    # CleanRL's discrete defaults (ppo.py), a higher learning rate for the short budget.
    train_and_check(
        dict(learning_rate=1e-3), defaults=(4, 128, 4, 0.01), min_episodes=50, first_below=40, last_at_least=100
    )


def test_ppo_learns_inverted_pendulum_with_hone_envs():
    # CleanRL's continuous defaults (ppo_continuous_action.py): one env, 2048 steps per update.
    train_and_check(
        dict(env_id="InvertedPendulum-v5"),
        defaults=(1, 2048, 32, 0.0),
        min_episodes=100,
        first_below=30,
        last_at_least=100,
    )
