#!/usr/bin/env python3
"""Records reference trajectories from gymnasium for hone-envs' conformance tests.

Run by hand (not by CI); the files it writes are committed under envs/tests/data/:

    python3.12 -m venv ~/.cache/hone/gymnasium-ref
    ~/.cache/hone/gymnasium-ref/bin/pip install 'gymnasium>=1,<2'
    ~/.cache/hone/gymnasium-ref/bin/python scripts/record_gymnasium.py [OUT_DIR]

OUT_DIR defaults to envs/tests/data. The script is deterministic: the same gymnasium, numpy and
C library give the same bytes. For each environment (made with gym.make, so with gymnasium's own
TimeLimit) it records three kinds of episodes:

- seeded: env.reset(seed=s) for a range of seeds, from 0 to 2**64 - 1 (the Rust side seeds
  Pcg64::from_seed(s) and must land on the same initial state);
- continued: env.reset() without a seed right after another episode, so the initial state comes
  from the generator the previous reset left behind;
- set state: env.reset(seed=s), then env.unwrapped.state = a float64 state chosen to cover
  states resets never produce (near the termination bounds, walls, angle wrapping, speed limits).

Actions are replayed from seeded generators: uniformly random ones, simple controllers with noise
(so that episodes also end by termination, not only by the time limit), and for continuous
spaces values beyond the bounds (to exercise gymnasium's clipping) and exactly on them.

File format, all little-endian ("<" in struct notation):

    header:  8s magic b"HONEREF1"
             H + bytes: environment id (utf-8)
             H + bytes: provenance (versions of gymnasium, numpy, Python, libc)
             I max_episode_steps
             I obs_len, obs_len f32 low, obs_len f32 high   (observation Box, shape (obs_len,))
             B action kind: 0 = Discrete, then q n;
                            1 = Box, then I len, len f32 low, len f32 high
             I state_len (length of env.unwrapped.state)
             I episode count
    episode: B reset kind: 0 = seeded, 1 = continued, 2 = set state
             Q seed (0 for continued)
             state_len f64: initial state (env.unwrapped.state after the reset or the set)
             obs_len f32: observation returned by reset (NaN for set state: gymnasium has none)
             I step count
             per step: action (q for Discrete, len f32 for Box), obs_len f32 observation,
                       d reward, B flags (bit 0 terminated, bit 1 truncated)
             state_len f64: final state (env.unwrapped.state after the last step)
"""

import math
import os
import platform
import struct
import sys

import gymnasium as gym
import numpy as np

MAGIC = b"HONEREF1"
SEEDED, CONTINUED, SET_STATE = 0, 1, 2

# The seeds of seeded resets: small, one-word, two-word and the largest u64.
SEEDS = [0, 1, 2, 3, 7, 42, 123, 2024, 99_999, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 17, 2**63 + 5, 2**64 - 1]


def provenance() -> str:
    libc = "-".join(platform.libc_ver())
    return f"gymnasium {gym.__version__}, numpy {np.__version__}, Python {platform.python_version()}, {libc}, {platform.machine()}"


class Writer:
    def __init__(self):
        self.parts = []

    def pack(self, fmt, *values):
        self.parts.append(struct.pack("<" + fmt, *values))

    def f32s(self, values):
        values = np.asarray(values, dtype=np.float32).ravel()
        self.parts.append(values.astype("<f4").tobytes())

    def f64s(self, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        self.parts.append(values.astype("<f8").tobytes())

    def text(self, value: str):
        data = value.encode()
        self.pack("H", len(data))
        self.parts.append(data)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def internal_state(env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, dtype=np.float64).ravel()


class Recorder:
    def __init__(self, env_id: str):
        self.env_id = env_id
        self.env = gym.make(env_id)
        self.discrete = isinstance(self.env.action_space, gym.spaces.Discrete)
        self.episodes = Writer()
        self.episode_count = 0
        self.step_count = 0
        self.terminations = 0
        self.truncations = 0

    def episode(self, kind, seed, policy, state=None):
        """Runs one episode to termination or truncation, recording it."""
        env = self.env
        if kind == CONTINUED:
            obs, _ = env.reset()
        else:
            obs, _ = env.reset(seed=seed)
        if kind == SET_STATE:
            env.unwrapped.state = np.array(state, dtype=np.float64)
            obs = np.full(env.observation_space.shape, np.nan, dtype=np.float32)
        w = self.episodes
        w.pack("BQ", kind, seed if kind != CONTINUED else 0)
        w.f64s(internal_state(env))
        w.f32s(obs)
        steps = Writer()
        count = 0
        while True:
            action = policy(env.unwrapped.state)
            obs, reward, terminated, truncated, _ = env.step(action)
            if self.discrete:
                steps.pack("q", int(action))
            else:
                steps.f32s(action)
            steps.f32s(obs)
            steps.pack("dB", float(reward), int(bool(terminated)) | (int(bool(truncated)) << 1))
            count += 1
            if terminated or truncated:
                self.terminations += int(bool(terminated))
                self.truncations += int(bool(truncated))
                break
        w.pack("I", count)
        w.parts.extend(steps.parts)
        w.f64s(internal_state(env))
        self.episode_count += 1
        self.step_count += count

    def write(self, out_dir: str):
        env = self.env
        header = Writer()
        header.parts.append(MAGIC)
        header.text(self.env_id)
        header.text(provenance())
        header.pack("I", env.spec.max_episode_steps)
        obs_space = env.observation_space
        header.pack("I", obs_space.shape[0])
        header.f32s(obs_space.low)
        header.f32s(obs_space.high)
        action_space = env.action_space
        if self.discrete:
            header.pack("Bq", 0, int(action_space.n))
        else:
            header.pack("BI", 1, action_space.shape[0])
            header.f32s(action_space.low)
            header.f32s(action_space.high)
        header.pack("I", len(internal_state(env)))
        header.pack("I", self.episode_count)
        path = os.path.join(out_dir, self.env_id + ".bin")
        with open(path, "wb") as f:
            f.write(header.bytes())
            f.write(self.episodes.bytes())
        size = os.path.getsize(path)
        print(
            f"{path}: {self.episode_count} episodes, {self.step_count} steps "
            f"({self.terminations} terminated, {self.truncations} truncated), {size} bytes"
        )


def discrete_random(n, rng):
    return lambda state: int(rng.integers(n))


def with_noise(controller, n, epsilon, rng):
    def policy(state):
        if rng.random() < epsilon:
            return int(rng.integers(n))
        return controller(state)

    return policy


def continuous_random(low, high, rng):
    return lambda state: np.array([rng.uniform(low, high)], dtype=np.float32)


def record_cartpole(out_dir):
    r = Recorder("CartPole-v1")
    rng = np.random.default_rng(1001)
    # A PD controller on the pole (and weakly the cart): keeps episodes up to the time limit.
    balance = lambda s: int(s[2] + 0.5 * s[3] + 0.01 * s[0] + 0.05 * s[1] > 0)
    for i, seed in enumerate(SEEDS):
        policy = discrete_random(2, rng) if i % 3 else with_noise(balance, 2, 0.2, rng)
        r.episode(SEEDED, seed, policy)
        r.episode(CONTINUED, 0, discrete_random(2, rng))
    for epsilon in [0.05, 0.3, 0.5]:
        r.episode(CONTINUED, 0, with_noise(balance, 2, epsilon, rng))
    states = [
        [2.3, 1.0, 0.1, 0.5],
        [-2.39, -0.5, -0.2, -1.0],
        [0.0, 0.0, 0.2094, 0.1],
        [0.0, 3.0, 0.0, -3.0],
        [1.0, 0.0, -0.15, 2.0],
        [2.5, 0.0, 0.0, 0.0],  # outside the bounds: terminates on the first step
        [0.0, 0.0, -0.3, 0.0],
    ]
    states += [rng.uniform([-2.4, -2, -0.2, -2], [2.4, 2, 0.2, 2]) for _ in range(8)]
    for i, state in enumerate(states):
        policy = with_noise(balance, 2, 0.1, rng) if i % 2 else discrete_random(2, rng)
        r.episode(SET_STATE, 500 + i, policy, state)
    r.write(out_dir)


def record_acrobot(out_dir):
    r = Recorder("Acrobot-v1")
    rng = np.random.default_rng(1002)
    # Pumps energy: torque along the first link's swing; reaches the goal in a few hundred steps.
    pump = lambda s: 2 if s[2] > 0 else 0
    for i, seed in enumerate(SEEDS[:10]):
        policy = discrete_random(3, rng) if i % 2 else with_noise(pump, 3, 0.1, rng)
        r.episode(SEEDED, seed, policy)
        if i % 3 == 0:
            r.episode(CONTINUED, 0, with_noise(pump, 3, 0.2, rng))
    pi = math.pi
    states = [
        [pi - 1e-3, 0.0, 0.0, 0.0],
        [-pi + 1e-3, pi - 1e-3, 4 * pi, -9 * pi],
        [1.0, -2.0, 12.0, 28.0],
        [0.0, 0.0, -4 * pi, 9 * pi],
    ]
    states += [rng.uniform([-pi, -pi, -4 * pi, -9 * pi], [pi, pi, 4 * pi, 9 * pi]) for _ in range(6)]
    for i, state in enumerate(states):
        policy = with_noise(pump, 3, 0.1, rng) if i % 2 else discrete_random(3, rng)
        r.episode(SET_STATE, 700 + i, policy, state)
    r.write(out_dir)


def record_mountain_car(out_dir):
    r = Recorder("MountainCar-v0")
    rng = np.random.default_rng(1003)
    # Push along the velocity: reaches the flag in about 100-150 steps.
    pump = lambda s: 2 if s[1] >= 0 else 0
    for i, seed in enumerate(SEEDS):
        policy = discrete_random(3, rng) if i % 2 else with_noise(pump, 3, 0.15, rng)
        r.episode(SEEDED, seed, policy)
        if i % 4 == 0:
            r.episode(CONTINUED, 0, with_noise(pump, 3, 0.3, rng))
    states = [
        [-1.2, -0.05],
        [-1.19, -0.07],
        [0.49, 0.01],
        [0.45, 0.07],
        [0.0, 0.07],
        [-0.5, -0.07],
        [0.5, -0.001],
    ]
    states += [rng.uniform([-1.2, -0.07], [0.6, 0.07]) for _ in range(5)]
    for i, state in enumerate(states):
        policy = with_noise(pump, 3, 0.1, rng) if i % 2 else discrete_random(3, rng)
        r.episode(SET_STATE, 900 + i, policy, state)
    r.write(out_dir)


def record_mountain_car_continuous(out_dir):
    r = Recorder("MountainCarContinuous-v0")
    rng = np.random.default_rng(1004)

    def pump(scale_low, scale_high):
        # Push along the velocity with a random magnitude, part of it beyond the bounds.
        def policy(s):
            sign = 1.0 if s[1] >= 0 else -1.0
            return np.array([sign * rng.uniform(scale_low, scale_high)], dtype=np.float32)

        return policy

    def on_bounds(s):
        # Exactly -1, 0 or 1: the values where gymnasium's clipping keeps the float32 action.
        return np.array([rng.choice([-1.0, 0.0, 1.0])], dtype=np.float32)

    policies = [
        lambda: pump(0.3, 1.6),
        lambda: continuous_random(-2.0, 2.0, rng),
        lambda: pump(0.8, 1.0),
        lambda: on_bounds,
    ]
    for i, seed in enumerate(SEEDS[:10]):
        r.episode(SEEDED, seed, policies[i % len(policies)]())
        if i % 4 == 0:
            r.episode(CONTINUED, 0, pump(0.5, 1.2))
    states = [
        [0.44, 0.01],
        [-1.2, -0.07],
        [0.6, 0.07],
        [0.449, 0.0005],
        [-1.19, -0.069],
        [0.3, 0.07],
    ]
    states += [rng.uniform([-1.2, -0.07], [0.6, 0.07]) for _ in range(4)]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 1100 + i, policies[i % len(policies)](), state)
    r.write(out_dir)


def record_pendulum(out_dir):
    r = Recorder("Pendulum-v1")
    rng = np.random.default_rng(1005)

    def bang(s):
        # Along the angular velocity, at or far beyond the torque limit.
        sign = 1.0 if s[1] >= 0 else -1.0
        return np.array([sign * rng.choice([2.0, 2.5, 10.0])], dtype=np.float32)

    policies = [lambda: continuous_random(-3.0, 3.0, rng), lambda: bang, lambda: continuous_random(-2.0, 2.0, rng)]
    for i, seed in enumerate(SEEDS):
        r.episode(SEEDED, seed, policies[i % len(policies)]())
        if i % 3 == 0:
            r.episode(CONTINUED, 0, continuous_random(-3.0, 3.0, rng))
    pi = math.pi
    states = [[10.0, 0.0], [-20.0, 8.0], [pi, 0.0], [-pi, 8.0], [0.0, -8.0], [100.0, 12.0], [-3 * pi, -15.0]]
    states += [rng.uniform([-50.0, -8.0], [50.0, 8.0]) for _ in range(5)]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 1300 + i, policies[i % len(policies)](), state)
    r.write(out_dir)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "envs", "tests", "data")
    os.makedirs(out_dir, exist_ok=True)
    print(provenance())
    record_cartpole(out_dir)
    record_acrobot(out_dir)
    record_mountain_car(out_dir)
    record_mountain_car_continuous(out_dir)
    record_pendulum(out_dir)


if __name__ == "__main__":
    main()
