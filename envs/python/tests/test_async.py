"""envpool's asynchronous API: async_reset, send(action, env_id), recv, info["env_id"]."""

import numpy as np
import pytest

import hone_envs


def policy(obs):
    """Actions as a fixed function of the observations, so an env's trajectory does not depend on
    which other envs share its batch."""
    return (np.floor(obs[:, 1] * 1e4) % 2).astype(np.int64)


def per_env_observations_sync(num_envs, steps, seed):
    envs = hone_envs.make("CartPole-v1", num_envs=num_envs, seed=seed, max_episode_steps=25)
    obs, _ = envs.reset()
    streams = [[row.copy()] for row in obs]
    for _ in range(steps):
        obs, *_ = envs.step(policy(obs))
        for i in range(num_envs):
            streams[i].append(obs[i].copy())
    envs.close()
    return streams


def test_recv_returns_batch_size_envs_and_send_takes_env_ids():
    envs = hone_envs.make("CartPole-v1", num_envs=8, batch_size=3, num_threads=2, seed=1, max_episode_steps=25)
    assert envs.is_async and envs.observation_space.shape == (3, 4)
    envs.async_reset()
    streams = [[] for _ in range(8)]
    received = np.zeros(8, dtype=int)
    for _ in range(400):
        obs, reward, terminated, truncated, info = envs.recv()
        env_id = info["env_id"]
        assert obs.shape == (3, 4) and reward.shape == (3,) and env_id.dtype == np.int32
        assert len(set(env_id.tolist())) == 3
        for row, i in enumerate(env_id):
            streams[i].append(obs[row].copy())
        received[env_id] += 1
        envs.send(policy(obs), env_id)
    # Every env made progress, and each one's observations are those it has in a sync pool.
    assert (received > 20).all()
    reference = per_env_observations_sync(8, int(received.max()), seed=1)
    for i in range(8):
        np.testing.assert_array_equal(np.array(streams[i]), np.array(reference[i][: len(streams[i])]))
    envs.close()


def test_send_without_env_id_sends_to_the_last_batch():
    envs = hone_envs.make("MountainCar-v0", num_envs=6, batch_size=2, num_threads=1, seed=3)
    envs.async_reset()
    seen = set()
    for _ in range(30):
        obs, _, _, _, info = envs.recv()
        seen.update(info["env_id"].tolist())
        envs.send(np.ones(2, dtype=np.int64))
    assert seen == set(range(6))
    envs.close()


def test_step_on_an_async_pool_is_send_then_recv():
    envs = hone_envs.make("Pendulum-v1", num_envs=4, batch_size=2, num_threads=1, seed=0)
    obs, info = envs.reset()
    assert obs.shape == (2, 3) and info["env_id"].shape == (2,)
    for _ in range(10):
        obs, reward, terminated, truncated, info = envs.step(np.zeros((2, 1), dtype=np.float32), info["env_id"])
        assert obs.shape == (2, 3) and reward.dtype == np.float32
    # Without env ids, step sends to the envs just received.
    obs, *_ = envs.step(np.zeros((2, 1), dtype=np.float32))
    assert obs.shape == (2, 3)
    envs.close()


def test_recv_reset_flag_returns_obs_and_info():
    envs = hone_envs.make("CartPole-v1", num_envs=4, batch_size=4, seed=2)
    envs.async_reset()
    obs, info = envs.recv(reset=True)
    expected, _ = hone_envs.make("CartPole-v1", num_envs=4, seed=2).reset()
    np.testing.assert_array_equal(obs, expected)
    assert list(info["env_id"]) == [0, 1, 2, 3]
    envs.close()


def test_sync_pool_send_recv_is_reset_and_step():
    """On a sync pool (batch_size == num_envs) send stores the actions and recv steps, with the
    rows in env order whatever the order of env_id."""
    driven = hone_envs.make("Acrobot-v1", num_envs=4, seed=7)
    reference = hone_envs.make("Acrobot-v1", num_envs=4, seed=7)
    driven.async_reset()
    obs, *_ = driven.recv()
    np.testing.assert_array_equal(obs, reference.reset()[0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = rng.integers(0, 3, size=4)
        order = rng.permutation(4)
        driven.send(actions[order], order)
        got = driven.recv()
        want = reference.step(actions)
        for x, y in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(got[4]["env_id"], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="one action row for every env"):
        driven.send(np.zeros(2, dtype=np.int64), np.array([0, 1]))
    with pytest.raises(ValueError, match="more than once"):
        driven.send(np.zeros(4, dtype=np.int64), np.array([0, 1, 1, 2]))
    driven.send(np.zeros(4, dtype=np.int64))
    with pytest.raises(RuntimeError, match="in flight"):
        driven.send(np.zeros(4, dtype=np.int64))
    with pytest.raises(RuntimeError, match="in flight"):
        driven.step(np.zeros(4, dtype=np.int64))
    driven.recv()
    with pytest.raises(RuntimeError, match="nothing in flight"):
        driven.recv()
    driven.close()
    reference.close()


def test_async_errors_leave_the_pool_usable():
    envs = hone_envs.make("CartPole-v1", num_envs=4, batch_size=2, num_threads=1, seed=0)
    with pytest.raises(RuntimeError, match="async_reset"):
        envs.send(np.zeros(2, dtype=np.int64), np.array([0, 1]))
    envs.async_reset()
    obs, _, _, _, info = envs.recv()
    first = info["env_id"]
    in_flight = np.setdiff1d(np.arange(4), first)
    with pytest.raises(RuntimeError, match="in flight"):
        envs.send(np.zeros(2, dtype=np.int64), in_flight)
    with pytest.raises(ValueError, match="out of range 0..4"):
        envs.send(np.zeros(2, dtype=np.int64), np.array([first[0], 4]))
    with pytest.raises(ValueError, match="out of range 0..4"):
        envs.send(np.zeros(2, dtype=np.int64), np.array([first[0], -1]))
    with pytest.raises(ValueError, match="more than once"):
        envs.send(np.zeros(2, dtype=np.int64), np.array([first[0], first[0]]))
    with pytest.raises(ValueError, match="out of range 0..2"):
        envs.send(np.array([0, 2]), first)
    with pytest.raises(ValueError, match="shape"):
        envs.send(np.zeros(3, dtype=np.int64), first)
    with pytest.raises(ValueError, match="1-d"):
        envs.send(np.zeros(2, dtype=np.int64), first.reshape(2, 1))
    with pytest.raises(TypeError, match="integers"):
        envs.send(np.zeros(2, dtype=np.int64), first.astype(np.float32))
    # None of that sent anything: the remaining in-flight envs (2) fill one batch.
    obs, _, _, _, info = envs.recv()
    assert sorted(info["env_id"].tolist()) == sorted(in_flight.tolist())
    with pytest.raises(RuntimeError, match="nothing in flight"):
        envs.recv()
    envs.send(np.zeros(2, dtype=np.int64), first)
    envs.recv()
    envs.send(np.ones(1, dtype=np.int64), first[:1])
    with pytest.raises(RuntimeError, match="needs 2 envs in flight"):
        envs.recv()
    envs.send(np.ones(1, dtype=np.int64), first[1:])
    obs, _, _, _, info = envs.recv()
    assert sorted(info["env_id"].tolist()) == sorted(first.tolist())
    envs.close()


def test_reset_with_a_seed_reseeds_an_async_pool():
    envs = hone_envs.make("CartPole-v1", num_envs=4, batch_size=2, num_threads=1, seed=0)
    fresh, _ = hone_envs.make("CartPole-v1", num_envs=4, seed=10).reset()
    unseeded, info0 = envs.reset()
    obs, info = envs.reset(seed=10)
    assert obs.shape == (2, 4)
    np.testing.assert_array_equal(obs, fresh[info["env_id"]])
    assert not np.array_equal(unseeded, fresh[info0["env_id"]])
    envs.close()


@pytest.mark.parametrize("num_threads", [1, 2])
def test_reset_receives_and_drops_the_envs_in_flight(num_threads):
    envs = hone_envs.make("Acrobot-v1", num_envs=5, batch_size=3, num_threads=num_threads, seed=0)
    for _ in range(3):
        obs, info = envs.reset()
        # After a reset, batch_size envs come back reset and the rest are in flight.
        assert obs.shape == (3, 6) and (info["elapsed_step"] == 0).all()
        assert envs._pool.in_flight == 2
        envs.step(np.zeros(3, dtype=np.int64), info["env_id"])
        envs.async_reset()
        assert envs._pool.in_flight == 5
        _, reward, _, _, info = envs.recv()
        assert (info["elapsed_step"] == 0).all() and (reward == 0).all()
    envs.close()
