"""hone_envs: hone's Rust env engine as a drop-in gymnasium vector env, with envpool's API.

    import hone_envs
    envs = hone_envs.make("CartPole-v1", num_envs=8, seed=0)
    obs, info = envs.reset()
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
"""

from ._native import __version__
from .env_pool import EnvPool, list_all_envs, make

__all__ = ["EnvPool", "make", "list_all_envs", "__version__"]
