"""hone_envs as a gymnasium vector env: types, spaces, shapes, dtypes, autoreset, statistics.

The reference is gymnasium itself: its spaces for the same task ids, its `batch_space`, its
`RecordEpisodeStatistics` wrapper, and the checks of `gymnasium.utils.env_checker` that apply to a
vector env (reset/step determinism by seed, returned data not reused, return types).
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

import hone_envs
from test_mujoco import MUJOCO_TASKS

TASKS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def random_actions(envs, steps, seed):
    space = envs.action_space
    space.seed(seed)
    return [space.sample() for _ in range(steps)]


def rollout(envs, actions, seed=None):
    """Every array `reset` and `step` return, copied."""
    obs, info = envs.reset(seed=seed)
    out = [(obs.copy(), {k: v for k, v in info.items()})]
    for action in actions:
        obs, reward, terminated, truncated, info = envs.step(action)
        out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy(), info))
    return out


def test_list_all_envs_names_the_builtin_tasks():
    # The MuJoCo tasks come with the `mujoco` feature, which scripts/setup_python.sh builds.
    assert hone_envs.list_all_envs() == sorted(TASKS + MUJOCO_TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_is_a_vector_env_with_gymnasiums_spaces(task):
    envs = hone_envs.make(task, num_envs=3)
    reference = gym.make(task)
    assert isinstance(envs, VectorEnv)
    assert envs.num_envs == 3
    assert envs.single_observation_space == reference.observation_space
    assert envs.single_action_space == reference.action_space
    assert envs.observation_space == batch_space(reference.observation_space, 3)
    assert envs.action_space == batch_space(reference.action_space, 3)
    assert envs.max_episode_steps == reference.spec.max_episode_steps
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert envs.unwrapped is envs
    envs.close()
    reference.close()


@pytest.mark.parametrize("task", TASKS)
def test_shapes_and_dtypes(task):
    envs = hone_envs.make(task, num_envs=5, seed=3)
    obs, info = envs.reset()
    assert obs.dtype == np.float32 and obs.shape == (5, *envs.single_observation_space.shape)
    assert envs.observation_space.contains(obs)
    assert info["env_id"].dtype == np.int32 and list(info["env_id"]) == [0, 1, 2, 3, 4]
    assert info["elapsed_step"].dtype == np.int32 and not info["elapsed_step"].any()
    for step, action in enumerate(random_actions(envs, 30, seed=0), start=1):
        obs, reward, terminated, truncated, info = envs.step(action)
        assert obs.dtype == np.float32 and obs.shape == (5, *envs.single_observation_space.shape)
        assert reward.dtype == np.float32 and reward.shape == (5,)
        assert terminated.dtype == np.bool_ and terminated.shape == (5,)
        assert truncated.dtype == np.bool_ and truncated.shape == (5,)
        assert info["env_id"].shape == (5,) and info["elapsed_step"].shape == (5,)
        assert all(a.flags.c_contiguous and a.flags.owndata for a in (obs, reward, terminated, truncated))
    envs.close()


def test_observations_stay_in_the_observation_space_over_episodes():
    # The bounds that can be reached are checked; CartPole terminates outside its x/theta bounds
    # (gymnasium's own observations leave the space there too), so use the bounded tasks.
    for task in ["Acrobot-v1", "MountainCar-v0", "Pendulum-v1"]:
        envs = hone_envs.make(task, num_envs=4, seed=1, max_episode_steps=50)
        obs, _ = envs.reset()
        for action in random_actions(envs, 120, seed=2):
            obs, *_ = envs.step(action)
            assert envs.observation_space.contains(obs), (task, obs)
        envs.close()


def test_reset_seed_determinism():
    """gymnasium's check_reset_seed_determinism, for a vector env: same seed, same observations;
    another seed, others; env i seeded with seed + i."""
    envs = hone_envs.make("CartPole-v1", num_envs=4, seed=0)
    first, _ = envs.reset(seed=123)
    envs.step(np.ones(4, dtype=np.int64))
    again, _ = envs.reset(seed=123)
    other, _ = envs.reset(seed=124)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Env i of seed 124 is env i + 1 of seed 123.
    np.testing.assert_array_equal(other[:3], first[1:])
    # make(seed=s) followed by reset() is reset(seed=s).
    fresh = hone_envs.make("CartPole-v1", num_envs=4, seed=123)
    np.testing.assert_array_equal(fresh.reset()[0], first)
    # Without a seed, reset continues each env's random stream: new initial states.
    continued, _ = envs.reset()
    assert not np.array_equal(continued, other)
    envs.close()
    fresh.close()


def test_reset_accepts_gymnasiums_consecutive_seed_list():
    envs = hone_envs.make("CartPole-v1", num_envs=3)
    by_list, _ = envs.reset(seed=[7, 8, 9])
    by_int, _ = envs.reset(seed=7)
    np.testing.assert_array_equal(by_list, by_int)
    with pytest.raises(ValueError, match="consecutive"):
        envs.reset(seed=[7, 9, 8])
    envs.close()


@pytest.mark.parametrize("task", TASKS)
def test_step_determinism_across_thread_counts(task):
    """gymnasium's check_step_determinism: same seed and actions, same transitions; and the
    number of worker threads does not change them."""
    runs = []
    for num_threads in (1, 2, 1):
        envs = hone_envs.make(task, num_envs=40, num_threads=num_threads, seed=5, max_episode_steps=30)
        runs.append(rollout(envs, random_actions(envs, 70, seed=9)))
        envs.close()
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            for x, y in zip(a, b):
                if isinstance(x, dict):
                    assert x.keys() == y.keys()
                    np.testing.assert_array_equal(x["env_id"], y["env_id"])
                    np.testing.assert_array_equal(x["elapsed_step"], y["elapsed_step"])
                else:
                    np.testing.assert_array_equal(x, y)


def test_returned_data_not_reused():
    """gymnasium's check_returned_data_not_reused: an array a step returned is not changed by the
    next step."""
    envs = hone_envs.make("Pendulum-v1", num_envs=6, seed=0)
    obs0, info0 = envs.reset()
    kept = obs0.copy()
    obs1, reward1, term1, trunc1, info1 = envs.step(np.zeros((6, 1), dtype=np.float32))
    snapshot = [a.copy() for a in (obs1, reward1, info1["env_id"], info1["elapsed_step"])]
    envs.step(np.full((6, 1), 2.0, dtype=np.float32))
    np.testing.assert_array_equal(obs0, kept)
    for before, now in zip(snapshot, (obs1, reward1, info1["env_id"], info1["elapsed_step"])):
        np.testing.assert_array_equal(before, now)
    assert not np.shares_memory(obs0, obs1)
    # They are the caller's to change.
    obs1[:] = 0.0
    reward1[:] = 0.0
    envs.close()


def test_zero_copy_observations_are_read_only_views_the_next_step_overwrites():
    envs = hone_envs.make("Pendulum-v1", num_envs=3, seed=0, zero_copy=True)
    copying = hone_envs.make("Pendulum-v1", num_envs=3, seed=0)
    obs, _ = envs.reset()
    expected, _ = copying.reset()
    np.testing.assert_array_equal(obs, expected)
    assert not obs.flags.writeable and not obs.flags.owndata
    with pytest.raises(ValueError):
        obs[0, 0] = 1.0
    with pytest.raises(ValueError):
        obs.flags.writeable = True
    action = np.ones((3, 1), dtype=np.float32)
    obs_next, *_ = envs.step(action)
    expected_next, *_ = copying.step(action)
    # The same buffer: the first view now shows the second step, as documented.
    np.testing.assert_array_equal(obs_next, expected_next)
    np.testing.assert_array_equal(obs, expected_next)
    assert np.shares_memory(obs, obs_next)
    envs.close()
    # The view keeps the buffer alive past close(): still readable, no longer changing.
    np.testing.assert_array_equal(obs, expected_next)
    copying.close()


def test_zero_copy_views_survive_a_reseed():
    envs = hone_envs.make("CartPole-v1", num_envs=2, seed=0, zero_copy=True)
    old, _ = envs.reset()
    kept = old.copy()
    new, _ = envs.reset(seed=99)
    # A reseed makes a new pool; the old view keeps the old buffer and its values.
    np.testing.assert_array_equal(old, kept)
    assert not np.shares_memory(old, new)
    envs.close()


def test_next_step_autoreset_matches_gymnasium():
    """After terminated or truncated, the next step is a reset step: the first observation of the
    new episode, reward 0, no flags, elapsed_step 0, the action ignored."""
    envs = hone_envs.make("CartPole-v1", num_envs=3, seed=2, max_episode_steps=7)
    envs.reset()
    ended = np.zeros(3, dtype=bool)
    saw_reset_step = False
    for step in range(60):
        obs, reward, terminated, truncated, info = envs.step(np.array([0, 1, 1]))
        np.testing.assert_array_equal(reward[ended], 0.0)
        assert not terminated[ended].any() and not truncated[ended].any()
        np.testing.assert_array_equal(info["elapsed_step"][ended], 0)
        np.testing.assert_array_equal(reward[~ended], 1.0)
        # Truncation at the time limit, as gymnasium's TimeLimit.
        np.testing.assert_array_equal(truncated, info["elapsed_step"] == 7)
        saw_reset_step |= ended.any()
        ended = terminated | truncated
    assert saw_reset_step
    envs.close()


def event_streams(envs, calls):
    """Per env, its steps and resets in order, as ("step", obs, reward, terminated, truncated) and
    ("reset", obs), with actions a fixed function of the observation; either autoreset mode."""
    same_step = envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, _ = envs.reset()
    streams = [[("reset", row.copy())] for row in obs]
    ended = np.zeros(envs.num_envs, dtype=bool)
    for _ in range(calls):
        action = (np.floor(obs[:, 1] * 1e4) % 2).astype(np.int64)
        obs, reward, terminated, truncated, info = envs.step(action)
        for i, stream in enumerate(streams):
            if ended[i]:
                stream.append(("reset", obs[i].copy()))
                continue
            last = info["final_obs"][i] if same_step and (terminated[i] or truncated[i]) else obs[i]
            stream.append(("step", last.copy(), reward[i], terminated[i], truncated[i]))
            if same_step and (terminated[i] or truncated[i]):
                stream.append(("reset", obs[i].copy()))
        ended = (terminated | truncated) & (not same_step)
    return streams


def test_same_step_autoreset_is_next_step_without_the_reset_step():
    """Same-step mode returns the new episode's first observation in the row that finished, and
    the last one in info["final_obs"] (None elsewhere), as gymnasium's SyncVectorEnv; each env's
    steps and resets are those of next-step mode, one call earlier per finished episode."""
    same = hone_envs.make("CartPole-v1", num_envs=3, seed=6, max_episode_steps=9, autoreset_mode="same_step")
    next_ = hone_envs.make("CartPole-v1", num_envs=3, seed=6, max_episode_steps=9)
    assert same.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    same_streams, next_streams = event_streams(same, 60), event_streams(next_, 60)
    for same_events, next_events in zip(same_streams, next_streams):
        assert sum(event[0] == "reset" for event in same_events) >= 4
        assert len(same_events) > len(next_events) - 1 > 40
        for a, b in zip(same_events, next_events):
            assert a[0] == b[0]
            for x, y in zip(a[1:], b[1:]):
                np.testing.assert_array_equal(x, y)
    # The masks and the None rows of final_obs.
    same.reset(seed=0)
    for _ in range(40):
        _, _, terminated, truncated, info = same.step(np.ones(3, dtype=np.int64))
        done = terminated | truncated
        if done.any():
            assert info["_final_obs"].tolist() == done.tolist() == info["_final_info"].tolist()
            assert all((info["final_obs"][i] is None) != done[i] for i in range(3))
            assert info["final_obs"][np.flatnonzero(done)[0]].shape == (4,)
            break
    else:
        raise AssertionError("no episode finished")
    same.close()
    next_.close()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("task", ["CartPole-v1", "Pendulum-v1", "MountainCar-v0"])
def test_episode_statistics_match_gymnasiums_wrapper(task, mode):
    """info["episode"] / info["_episode"] as gymnasium's RecordEpisodeStatistics computes them
    from the same rewards and flags (the wrapper runs on top under another key)."""
    envs = hone_envs.make(task, num_envs=6, seed=4, max_episode_steps=40, autoreset_mode=mode)
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(envs, stats_key="reference")
    wrapped.reset()
    finished = 0
    for action in random_actions(envs, 200, seed=8):
        _, _, terminated, truncated, info = wrapped.step(action)
        done = terminated | truncated
        assert ("episode" in info) == done.any()
        if not done.any():
            continue
        finished += int(done.sum())
        np.testing.assert_array_equal(info["_episode"], info["_reference"])
        np.testing.assert_array_equal(info["episode"]["l"], info["reference"]["l"])
        # hone sums the env's float64 rewards, the wrapper the float32 ones it was handed.
        np.testing.assert_allclose(info["episode"]["r"], info["reference"]["r"], rtol=1e-5, atol=1e-4)
        assert info["episode"]["r"].dtype == np.float64 and info["episode"]["l"].dtype == np.int64
        t = info["episode"]["t"]
        assert t.dtype == np.float64 and (t[done] >= 0).all() and (t[~done] == 0).all()
    assert finished >= 6
    wrapped.close()


def test_gymnasium_vector_wrappers_run_on_top():
    envs = hone_envs.make("Pendulum-v1", num_envs=4, seed=0)
    wrapped = gym.wrappers.vector.ClipAction(gym.wrappers.vector.NormalizeObservation(envs))
    wrapped.reset(seed=1)
    obs, reward, *_ = wrapped.step(np.full((4, 1), 10.0, dtype=np.float32))
    assert obs.shape == (4, 3) and reward.shape == (4,)
    wrapped.close()
    assert envs.closed


def test_close_is_idempotent_and_later_calls_raise():
    envs = hone_envs.make("CartPole-v1", num_envs=2)
    envs.reset()
    envs.close()
    envs.close()
    assert envs.closed
    with pytest.raises(RuntimeError, match="closed"):
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="closed"):
        envs.reset()


def test_envpool_style_attributes():
    envs = hone_envs.make("Acrobot-v1", num_envs=6, batch_size=3, num_threads=1, seed=11)
    assert len(envs) == 6 and envs.is_async and envs.batch_size == 3
    assert envs.all_env_ids.dtype == np.int32 and list(envs.all_env_ids) == list(range(6))
    assert envs.config["seed"] == 11 and envs.config["num_threads"] == envs.num_threads
    assert envs.observation_space.shape == (3, 6)
    assert "Acrobot-v1" in repr(envs)
    envs.close()
