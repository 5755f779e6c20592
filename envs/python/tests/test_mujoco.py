"""gymnasium's MuJoCo tasks through hone_envs (the module built with its `mujoco` feature, as
scripts/setup_python.sh builds it): the same spaces, the same trajectories as gymnasium's own
vector env for the same seeds and actions (resets, terminations, time limits and autoresets
included), envpool's asynchronous API, and gymnasium's vector wrappers on top.

hone observes in float32 (gymnasium in float64) and returns float32 rewards, so values are
compared to a relative 1e-5; the bit-level conformance of the physics, rewards and resets to
gymnasium is the Rust suite's (envs/tests/mujoco.rs, to 1e-6 relative).
"""

import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import hone_envs

MUJOCO_TASKS = [
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Humanoid-v5",
    "InvertedDoublePendulum-v5",
    "InvertedPendulum-v5",
    "Pusher-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Walker2d-v5",
]


def test_the_module_has_the_mujoco_tasks():
    missing = sorted(set(MUJOCO_TASKS) - set(hone_envs.list_all_envs()))
    assert not missing, (
        f"hone_envs lacks {missing}: build it with the `mujoco` feature (bash scripts/setup_python.sh)"
    )


def gymnasium_vector(task, num_envs, max_episode_steps):
    return gym.make_vec(
        task,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
        max_episode_steps=max_episode_steps,
    )


@pytest.mark.parametrize("task", MUJOCO_TASKS)
def test_spaces_are_gymnasiums_with_float32_observations(task):
    envs = hone_envs.make(task, num_envs=2)
    reference = gymnasium_vector(task, 2, None)
    assert envs.single_action_space == reference.single_action_space
    assert envs.single_observation_space.shape == reference.single_observation_space.shape
    assert envs.single_observation_space.dtype == np.float32
    assert envs.spec is None or envs.spec.id == task
    envs.close()
    reference.close()


@pytest.mark.parametrize("task", MUJOCO_TASKS)
def test_trajectories_match_gymnasiums_vector_env(task):
    """Seeds seed + i, random actions (beyond the bounds too: MuJoCo clamps the controls, the
    control cost takes them as given), a short time limit so that truncations and next-step
    autoresets happen, and whatever terminations the task has."""
    num_envs, steps, limit = 3, 40, 12
    envs = hone_envs.make(task, num_envs=num_envs, seed=5, max_episode_steps=limit)
    reference = gymnasium_vector(task, num_envs, limit)
    obs, _ = envs.reset()
    expected, _ = reference.reset(seed=5)
    np.testing.assert_allclose(obs, expected, rtol=1e-5, atol=1e-6)
    space = envs.single_action_space
    rng = np.random.default_rng(7)
    ends = 0
    for step in range(steps):
        actions = rng.uniform(1.2 * space.low, 1.2 * space.high, size=(num_envs, *space.shape))
        actions = actions.astype(np.float32)
        obs, reward, terminated, truncated, info = envs.step(actions)
        expected, expected_reward, expected_terminated, expected_truncated, _ = reference.step(actions)
        where = f"{task}, step {step}"
        np.testing.assert_array_equal(terminated, expected_terminated, err_msg=where)
        np.testing.assert_array_equal(truncated, expected_truncated, err_msg=where)
        np.testing.assert_allclose(obs, expected, rtol=1e-5, atol=1e-6, err_msg=where)
        np.testing.assert_allclose(reward, expected_reward, rtol=1e-5, atol=1e-6, err_msg=where)
        ends += int((terminated | truncated).sum())
    assert ends >= num_envs * (steps // (limit + 1)), "the time limit ended episodes"
    envs.close()
    reference.close()


def test_async_envs_follow_their_sync_trajectories():
    """In async mode an env's trajectory depends only on the actions it is sent: the envs of a
    2-thread async pool, each sent the same actions as in a sync pool, see the same observations."""
    task, num_envs, steps = "Hopper-v5", 6, 30
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, size=(steps, num_envs, 3)).astype(np.float32)

    sync = hone_envs.make(task, num_envs=num_envs, seed=9, max_episode_steps=10)
    obs, _ = sync.reset()
    streams = [[row.copy()] for row in obs]
    for step in range(steps):
        obs, *_ = sync.step(actions[step])
        for env in range(num_envs):
            streams[env].append(obs[env].copy())
    sync.close()

    pool = hone_envs.make(task, num_envs=num_envs, batch_size=2, num_threads=2, seed=9, max_episode_steps=10)
    pool.async_reset()
    seen = [[] for _ in range(num_envs)]
    while min(len(s) for s in seen) < steps + 1:
        obs, _, _, _, info = pool.recv()
        ids = info["env_id"]
        for row, env in enumerate(ids):
            seen[env].append(obs[row].copy())
        taken = [min(len(seen[env]) - 1, steps - 1) for env in ids]
        pool.send(np.stack([actions[k, env] for k, env in zip(taken, ids)]), ids)
    pool.close()
    for env in range(num_envs):
        np.testing.assert_array_equal(np.array(seen[env][: steps + 1]), np.array(streams[env]), err_msg=f"env {env}")


def test_cleanrl_style_vector_wrappers_run_on_top():
    """CleanRL's continuous-control wrappers, in their vector form: clip the actions, normalise
    the observations and rewards, record the episode statistics."""
    envs = hone_envs.make("HalfCheetah-v5", num_envs=4, seed=0, max_episode_steps=20)
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(envs, stats_key="stats")
    wrapped = gym.wrappers.vector.ClipAction(wrapped)
    wrapped = gym.wrappers.vector.NormalizeObservation(wrapped)
    wrapped = gym.wrappers.vector.NormalizeReward(wrapped, gamma=0.99)
    wrapped.reset(seed=1)
    finished = 0
    for _ in range(25):
        obs, reward, terminated, truncated, info = wrapped.step(np.full((4, 6), 3.0, dtype=np.float32))
        assert obs.shape == (4, 17) and np.isfinite(obs).all() and np.isfinite(reward).all()
        if "stats" in info:
            finished += int(info["_stats"].sum())
            np.testing.assert_array_equal(info["stats"]["l"][info["_stats"]], 20)
    assert finished == 4
    wrapped.close()
    assert envs.closed


def test_a_mujoco_pool_too_large_for_the_machine_is_an_error_not_an_exit():
    # Each env's mjData is far larger than its rows of the pool's buffers: a pool sized by the rows
    # alone made MuJoCo print "Could not allocate memory" and exit the interpreter. Run in a child
    # interpreter, which must survive to print the error.
    script = """
import hone_envs
with open("/proc/meminfo") as f:
    available = next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable:"))
num_envs = min(available // 2048, 2**31 - 1)
try:
    hone_envs.make("HalfCheetah-v5", num_envs=num_envs)
except (MemoryError, ValueError) as error:
    print(type(error).__name__, error)
else:
    print("no error")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert re.match(r"ValueError .*num_envs = \d+ needs about .* available", result.stdout), result.stdout
    assert "Could not allocate" not in result.stdout + result.stderr
