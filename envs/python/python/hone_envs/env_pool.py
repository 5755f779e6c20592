"""`EnvPool`: hone's env engine as a `gymnasium.vector.VectorEnv`, with envpool's async API."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native

__all__ = ["EnvPool", "make", "list_all_envs"]

_SEED_LIMIT = 2**64
_AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "nextstep": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "samestep": AutoresetMode.SAME_STEP,
}


class EnvPool(VectorEnv):
    """`num_envs` copies of one task, stepped in place by hone's native worker threads.

    A `gymnasium.vector.VectorEnv` (`reset`, `step`, the `single_*` and batched spaces,
    `metadata["autoreset_mode"]`, `close`) that also speaks envpool's asynchronous API
    (`async_reset`, `send`, `recv`, `info["env_id"]`). Make one with `hone_envs.make`.

    Returned arrays (one row per batch row): observations float32 `(rows, *obs_shape)`, reward
    float32, terminated and truncated bool, and `info` with `env_id` and `elapsed_step` (int32)
    always, and on a step where episodes finished gymnasium's `RecordEpisodeStatistics` keys
    `info["episode"] = {"r": float64, "l": int64, "t": float64}` (zero where nothing finished)
    with the mask `info["_episode"]`; in same-step mode also `final_obs` (an object array holding
    the last observation of each finished episode, None elsewhere), `final_info` and their masks,
    as `SyncVectorEnv` returns them.

    Every returned array is new and owned by the caller, never touched by the pool again, except
    with `zero_copy=True`: then the observation array is a read-only view of the pool's buffer,
    valid until the next call that steps the pool (a sync pool's next `step`, `recv` or `reset`;
    in an async pool the next `send`, after which worker threads overwrite the rows in the
    background). Copy it to keep it. The view keeps the buffer alive, so reading it after
    `close()` is safe; it just stops changing.
    """

    def __init__(
        self,
        task_id: str,
        num_envs: int,
        batch_size: Optional[int] = None,
        num_threads: int = 0,
        seed: int = 0,
        max_episode_steps: Optional[int] = None,
        autoreset_mode: Union[str, AutoresetMode] = "next_step",
        *,
        zero_copy: bool = False,
    ) -> None:
        mode = _autoreset_mode(autoreset_mode)
        self._pool = _native.NativePool(
            task_id,
            _count("num_envs", num_envs, minimum=1),
            None if batch_size is None else _count("batch_size", batch_size, minimum=1),
            _count("num_threads", num_threads, minimum=0),
            _seed(seed),
            None if max_episode_steps is None else _count("max_episode_steps", max_episode_steps, minimum=1),
            mode is AutoresetMode.SAME_STEP,
            bool(zero_copy),
        )
        self.task_id = task_id
        self.num_envs = self._pool.num_envs
        self.batch_size = self._pool.batch_size
        self.single_observation_space = _gymnasium_space(self._pool.observation_space)
        self.single_action_space = _gymnasium_space(self._pool.action_space)
        # A batch has batch_size rows (num_envs in sync mode).
        self.observation_space = batch_space(self.single_observation_space, self.batch_size)
        self.action_space = batch_space(self.single_action_space, self.batch_size)
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self._all_env_ids = np.arange(self.num_envs, dtype=np.int32)
        self._all_env_ids.flags.writeable = False

    # ---- gymnasium's VectorEnv ----

    def reset(
        self,
        *,
        seed: Union[int, Sequence[int], None] = None,
        options: Optional[dict] = None,
    ) -> Tuple[np.ndarray, dict]:
        """Resets every env: `(obs, info)`. `seed=s` reseeds, env `i` with `s + i` (as
        gymnasium's vector envs); without it each env goes on with its random stream."""
        if options:
            if "reset_mask" in options:
                raise ValueError(
                    "options['reset_mask'] is not supported: every env resets, and finished "
                    "episodes autoreset on their own"
                )
            raise ValueError(f"unsupported reset options {sorted(options)}: EnvPool.reset takes none")
        pool_seed = _vector_seed(seed, self.num_envs)
        if pool_seed is not None:
            super().reset(seed=pool_seed)
        return self._pool.reset(pool_seed)

    def step(self, actions: Any, env_id: Any = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Steps with one action row per env (sync pools) or, for async pools, `send(actions,
        env_id)` then `recv()`: `(obs, reward, terminated, truncated, info)`."""
        return self._pool.step(actions, env_id)

    def close_extras(self, **kwargs: Any) -> None:
        """Stops the worker threads and frees the pool's buffers."""
        self._pool.close()

    # ---- envpool's asynchronous API ----

    def async_reset(self) -> None:
        """Starts resetting every env; `recv()` returns the first observations."""
        self._pool.async_reset(None)

    def send(self, action: Any, env_id: Any = None) -> None:
        """Sends one action row per env of `env_id` (int array-like). Without `env_id`: async
        pools send to the envs of the last `recv`, sync pools to every env."""
        self._pool.send(action, env_id)

    def recv(self, reset: bool = False, return_info: bool = True) -> tuple:
        """`(obs, reward, terminated, truncated, info)` of `batch_size` envs, the first to
        finish first (`info["env_id"]` says which); `(obs, info)` with `reset=True`."""
        result = self._pool.recv()
        if reset:
            return result[0], result[4]
        return result

    @property
    def all_env_ids(self) -> np.ndarray:
        """`arange(num_envs)`, int32, read-only."""
        return self._all_env_ids

    @property
    def is_async(self) -> bool:
        return self._pool.is_async

    @property
    def num_threads(self) -> int:
        """Threads stepping envs, the calling thread included."""
        return self._pool.num_threads

    @property
    def max_episode_steps(self) -> int:
        return self._pool.max_episode_steps

    @property
    def config(self) -> dict:
        pool = self._pool
        return {
            "task_id": self.task_id,
            "num_envs": pool.num_envs,
            "batch_size": pool.batch_size,
            "num_threads": pool.num_threads,
            "seed": pool.seed,
            "max_episode_steps": pool.max_episode_steps,
            "autoreset_mode": self.metadata["autoreset_mode"],
            "zero_copy": pool.zero_copy,
        }

    def __len__(self) -> int:
        return self.num_envs

    def __repr__(self) -> str:
        return f"EnvPool({self.task_id}, num_envs={self.num_envs}, batch_size={self.batch_size})"


def make(
    task_id: str,
    num_envs: int,
    batch_size: Optional[int] = None,
    num_threads: int = 0,
    seed: int = 0,
    max_episode_steps: Optional[int] = None,
    autoreset_mode: Union[str, AutoresetMode] = "next_step",
    *,
    zero_copy: bool = False,
) -> EnvPool:
    """A pool of `num_envs` envs of `task_id` (see `list_all_envs()`).

    - `batch_size`: rows per batch; `None` or `num_envs` is sync mode (`reset`/`step`), fewer is
      async mode (`async_reset`/`send`/`recv`, whichever envs finish first).
    - `num_threads`: threads stepping envs, the calling thread included; 0 = one per core.
    - `seed`: env `i` draws from `seed + i`.
    - `max_episode_steps`: overrides the task's time limit (truncation).
    - `autoreset_mode`: `"next_step"` (gymnasium's default and envpool's) or `"same_step"`, or a
      `gymnasium.vector.AutoresetMode`.
    - `zero_copy`: observations as read-only views of the pool's buffer (see `EnvPool`).
    """
    return EnvPool(
        task_id,
        num_envs,
        batch_size,
        num_threads,
        seed,
        max_episode_steps,
        autoreset_mode,
        zero_copy=zero_copy,
    )


def list_all_envs() -> list:
    """The task ids `make` accepts, sorted."""
    return _native.list_all_envs()


def _autoreset_mode(mode: Union[str, AutoresetMode]) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        if mode is AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported: the pool always autoresets")
        return mode
    if isinstance(mode, str) and mode.lower() in _AUTORESET_MODES:
        return _AUTORESET_MODES[mode.lower()]
    raise ValueError(f"autoreset_mode = {mode!r}, must be 'next_step' or 'same_step' (or a gymnasium AutoresetMode)")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _count(name: str, value: Any, minimum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} = {value}, must be at least {minimum}")
    return int(value)


def _seed(seed: Any) -> int:
    if not _is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed = {seed}, must be in 0..2**64")
    return int(seed)


def _vector_seed(seed: Union[int, Sequence[int], None], num_envs: int) -> Optional[int]:
    """`reset`'s seed as the pool's: an int, or gymnasium's list of per-env seeds when it is
    `[s, s + 1, ...]` (what the pool does with `s`)."""
    if seed is None or _is_int(seed):
        return None if seed is None else _seed(seed)
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"reset got {len(seeds)} seeds for {num_envs} envs")
    first = _seed(seeds[0])
    if any(not _is_int(s) or s != first + i for i, s in enumerate(seeds)):
        raise ValueError(
            f"reset(seed={seeds!r}): env i is seeded with seed + i, so a list of seeds must be "
            "consecutive; pass one int"
        )
    return first


def _gymnasium_space(description: tuple) -> spaces.Space:
    kind = description[0]
    if kind == "discrete":
        return spaces.Discrete(description[1])
    if kind == "multi_discrete":
        return spaces.MultiDiscrete(np.asarray(description[1], dtype=np.int64))
    if kind == "box":
        low, high = description[1], description[2]
        return spaces.Box(low=low, high=high, shape=low.shape, dtype=np.float32)
    raise ValueError(f"unknown space kind {kind!r}")
