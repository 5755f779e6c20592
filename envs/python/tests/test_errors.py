"""Bad input raises a Python exception that names the problem, and the pool stays usable: after
the error it continues exactly as a pool that never saw the bad call."""

import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import hone_envs


def twin_pools(task, num_envs=4, seed=0):
    a = hone_envs.make(task, num_envs=num_envs, seed=seed)
    b = hone_envs.make(task, num_envs=num_envs, seed=seed)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    return a, b


def assert_same_step(a, b, action):
    for x, y in zip(a.step(action)[:4], b.step(action)[:4]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "actions, error, message",
    [
        (np.array([0, 1, 2, 0]), ValueError, r"action 2 for env 2 is out of range 0..2"),
        (np.array([0, -1, 0, 0]), ValueError, r"action -1 for env 1 is out of range 0..2"),
        (np.array([0, 1, 0]), ValueError, r"shape \(4,\).*got shape \(3,\)"),
        (np.zeros((4, 2), dtype=np.int64), ValueError, r"shape \(4,\).*Discrete\(2\).*got shape \(4, 2\)"),
        (np.zeros((2, 2), dtype=np.int64), ValueError, r"got shape \(2, 2\)"),
        (np.int64(1), ValueError, r"got shape \(\)"),
        (np.zeros(4, dtype=np.float32), TypeError, r"Discrete\(2\): actions must be integers, got an array of dtype float32"),
        (["a", "b", "c", "d"], TypeError, r"must be integers, got an array of dtype <U1"),
    ],
)
def test_bad_discrete_actions(actions, error, message):
    envs, reference = twin_pools("CartPole-v1")
    with pytest.raises(error, match=message):
        envs.step(actions)
    assert_same_step(envs, reference, np.array([1, 0, 1, 0]))
    envs.close()
    reference.close()


@pytest.mark.parametrize(
    "actions, error, message",
    [
        (np.array([[0.0], [np.nan], [0.0]], dtype=np.float32), ValueError, r"env 1 is NaN at element 0"),
        (np.zeros((3, 2), dtype=np.float32), ValueError, r"shape \(3, 1\).*got shape \(3, 2\)"),
        (np.array([["x"], ["y"], ["z"]]), TypeError, r"must be real numbers"),
    ],
)
def test_bad_continuous_actions(actions, error, message):
    envs, reference = twin_pools("Pendulum-v1", num_envs=3)
    with pytest.raises(error, match=message):
        envs.step(actions)
    assert_same_step(envs, reference, np.full((3, 1), 0.5, dtype=np.float32))
    envs.close()
    reference.close()


def test_action_array_likes_are_accepted():
    envs, reference = twin_pools("CartPole-v1")
    base = np.array([1, 0, 0, 1], dtype=np.int64)
    for actions in ([1, 0, 0, 1], base.astype(np.int32), base.astype(np.uint8), np.repeat(base, 2)[::2]):
        a = envs.step(actions)
        b = reference.step(base)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
    envs.close()
    reference.close()
    # Box spaces take any real dtype (cast to float32), and a (n,) array for shape (1,) actions.
    envs, reference = twin_pools("MountainCarContinuous-v0", num_envs=2)
    for actions in (np.array([[0.25], [-0.5]]), [0.25, -0.5], np.array([0.25, -0.5], dtype=np.float16)):
        a = envs.step(actions)
        b = reference.step(np.array([[0.25], [-0.5]], dtype=np.float32))
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
    envs.close()
    reference.close()


def test_discrete_actions_of_shape_n_by_1_are_rejected_as_gymnasium_does():
    # gymnasium's vector env hands each env a (1,) array, which Discrete.contains rejects
    # (gymnasium/spaces/discrete.py); CartPole's step asserts on it.
    reference = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")
    reference.reset(seed=0)
    with pytest.raises(AssertionError):
        reference.step(np.ones((4, 1), dtype=np.int64))
    reference.close()
    envs, twin = twin_pools("CartPole-v1")
    for actions in (np.ones((4, 1), dtype=np.int64), [[1], [0], [0], [1]]):
        with pytest.raises(ValueError, match=r"must have shape \(4,\) .*Discrete\(2\).*got shape \(4, 1\)"):
            envs.step(actions)
    async_pool = hone_envs.make("CartPole-v1", num_envs=4, batch_size=2, seed=0)
    async_pool.async_reset()
    env_id = async_pool.recv()[4]["env_id"]
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
        async_pool.send(np.zeros((2, 1), dtype=np.int64), env_id)
    async_pool.send(np.zeros(2, dtype=np.int64), env_id)
    async_pool.close()
    # (N,) still steps, and the pool goes on as one that never saw the bad call.
    assert_same_step(envs, twin, np.array([1, 0, 0, 1]))
    envs.close()
    twin.close()


def test_step_before_reset():
    envs = hone_envs.make("CartPole-v1", num_envs=2)
    with pytest.raises(RuntimeError, match=r"step\(\) before any reset: call reset\(\) first"):
        envs.step(np.zeros(2, dtype=np.int64))
    envs.reset()
    envs.step(np.zeros(2, dtype=np.int64))
    envs.close()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(task_id="CartPole-v9", num_envs=2), ValueError, r"unknown task id `CartPole-v9`; known ids: Acrobot-v1, Ant-v5, CartPole-v1, HalfCheetah-v5"),
        (dict(task_id="CartPole-v1", num_envs=0), ValueError, r"num_envs = 0, must be at least 1"),
        (dict(task_id="CartPole-v1", num_envs=2.5), TypeError, r"num_envs must be an int"),
        (dict(task_id="CartPole-v1", num_envs=4, batch_size=5), ValueError, r"batch_size = 5, must be in 1..=4"),
        (dict(task_id="CartPole-v1", num_envs=4, num_threads=-1), ValueError, r"num_threads = -1, must be at least 0"),
        (dict(task_id="CartPole-v1", num_envs=4, seed=-3), ValueError, r"seed = -3, must be in 0..2\*\*64"),
        (dict(task_id="CartPole-v1", num_envs=4, seed=2**64), ValueError, r"seed = 18446744073709551616"),
        (dict(task_id="CartPole-v1", num_envs=4, seed=1.5), TypeError, r"seed must be an int"),
        (dict(task_id="CartPole-v1", num_envs=4, max_episode_steps=0), ValueError, r"max_episode_steps = 0, must be at least 1"),
        (dict(task_id="CartPole-v1", num_envs=4, autoreset_mode="later"), ValueError, r"autoreset_mode = 'later'"),
        (dict(task_id="CartPole-v1", num_envs=4, autoreset_mode=AutoresetMode.DISABLED), ValueError, r"DISABLED is not supported"),
    ],
)
def test_bad_configs(kwargs, error, message):
    with pytest.raises(error, match=message):
        hone_envs.make(**kwargs)


def test_reset_rejects_what_it_cannot_do():
    envs = hone_envs.make("CartPole-v1", num_envs=2)
    with pytest.raises(ValueError, match=r"reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(ValueError, match=r"unsupported reset options \['foo'\]"):
        envs.reset(options={"foo": 1})
    with pytest.raises(ValueError, match=r"seed = -1"):
        envs.reset(seed=-1)
    with pytest.raises(ValueError, match=r"2 seeds for 2 envs|got 3 seeds for 2 envs"):
        envs.reset(seed=[1, 2, 3])
    obs, _ = envs.reset(options={})
    assert obs.shape == (2, 4)
    envs.close()


def test_sync_pool_rejects_async_only_misuse_with_clear_messages():
    envs = hone_envs.make("CartPole-v1", num_envs=3)
    with pytest.raises(RuntimeError, match=r"recv with nothing in flight: send actions first"):
        envs.recv()
    envs.close()


def test_a_pool_too_large_for_the_machine_is_a_value_error():
    # 2**31 - 1 envs used to abort the interpreter in the allocator.
    with pytest.raises(ValueError, match=r"num_envs = 2147483647 needs about .* available"):
        hone_envs.make("CartPole-v1", num_envs=2**31 - 1)


UNDER_AN_ADDRESS_SPACE_LIMIT = """
import resource
import hone_envs

status = open("/proc/self/status").read()
mapped = int(next(l for l in status.splitlines() if l.startswith("VmSize:")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + 2**30, resource.RLIM_INFINITY))
try:
    hone_envs.make("CartPole-v1", num_envs=20_000_000)
except ValueError as e:
    print("ValueError", e)
"""


def test_a_pool_beyond_an_address_space_limit_is_a_value_error():
    # Under `ulimit -v` (1 GiB above what the interpreter maps), 20 million envs (about 2.8 GiB)
    # fit the machine but not the limit; the check used to read only MemAvailable and the
    # allocator then aborted the interpreter. A child interpreter carries the limit.
    result = subprocess.run(
        [sys.executable, "-c", UNDER_AN_ADDRESS_SPACE_LIMIT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert re.match(r"ValueError .*num_envs = 20000000 needs about .* GiB", result.stdout), result.stdout
    meminfo = open("/proc/meminfo").read()
    available = int(next(l for l in meminfo.splitlines() if l.startswith("MemAvailable:")).split()[1]) * 1024
    if available > 3 * 2**30:
        assert "address-space limit (ulimit -v)" in result.stdout, result.stdout


def test_seed_plus_env_index_does_not_wrap_past_2_pow_64():
    # gymnasium seeds env i with the Python int seed + i (gymnasium/vector/sync_vector_env.py,
    # reset), which SeedSequence takes unbounded: env 1 of seed 2**64 - 1 gets 2**64, not 0.
    seed = 2**64 - 1
    reference = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync")
    want, _ = reference.reset(seed=seed)
    reference.close()
    envs = hone_envs.make("CartPole-v1", num_envs=3, seed=seed)
    obs, _ = envs.reset()
    np.testing.assert_array_equal(obs, want.astype(np.float32))
    wrapped, _ = hone_envs.make("CartPole-v1", num_envs=1, seed=0).reset()
    assert not np.array_equal(obs[1], wrapped[0])
    # The same through reset(seed=...), as an int and as gymnasium's list of per-env seeds.
    for reseed in (seed, [seed, seed + 1, seed + 2]):
        obs, _ = envs.reset(seed=reseed)
        np.testing.assert_array_equal(obs, want.astype(np.float32))
    envs.close()
