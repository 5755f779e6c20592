#!/usr/bin/env python3
"""Records reference trajectories of gymnasium's MuJoCo envs (v5) for hone-envs' `mujoco` tests.

Run by hand (not by CI) in hone's Python environment, which scripts/setup.sh gives the same
MuJoCo (3.11.0) that hone links; the files it writes are committed under envs/tests/data/mujoco/:

    ~/.cache/hone/python-torch-2.11.0/bin/python scripts/record_gymnasium_mujoco.py [OUT_DIR]

Deterministic: the same gymnasium, MuJoCo, numpy and C library give the same bytes. For each env
(gym.make with its default v5 arguments) it records three kinds of episodes, as
scripts/record_gymnasium.py does for classic control:

- seeded: env.reset(seed=s) (hone seeds Pcg64::from_seed(s) and must land on the same qpos and
  qvel bit for bit);
- continued: env.reset() right after another episode (the generator the previous reset left);
- set state: env.reset(seed=s), then env.unwrapped.set_state(qpos, qvel) with a state chosen here
  (far from the reset distribution, near the health bounds).

Actions come from seeded generators and simple controllers: uniform within the bounds and 1.5
times beyond them (MuJoCo clamps the controls, the control cost sees the raw action), bang-bang
on the bounds, smooth periodic gaits, a balancing controller for InvertedPendulum. Some envs are
recorded with a shorter TimeLimit than registered (so that episodes also end by truncation within
a small file); the registered limit is in the header too.

Files are kept small by storing every float but the initial and final states (and rewards) as float32 (the
tests compare at 1e-6 relative, far above float32's 6e-8 rounding) and, for the envs with large
observations (Ant, Humanoid), the observation's leading qpos/qvel part every step and the whole
observation every `obs_stride`-th step and at each episode's last step.

File format, little-endian:

    header:  8s magic b"HONEMJC1"
             H + bytes: environment id; H + bytes: provenance (versions)
             I registered max_episode_steps; I recorded time limit
             I obs_len; I nu; nu f32 action low; nu f32 action high; I nq; I nv
             H info count, then per key H + bytes (the step info's numbers, in this order)
             I obs_head; I obs_stride; I episode count
    episode: B reset kind (0 seeded, 1 continued, 2 set state); Q seed (0 for continued)
             nq f64 qpos, nv f64 qvel after the reset (or the set)
             obs_head f32: the observation of that state (reset's return; _get_obs() after a
                       set), its leading obs_head values
             I step count
             per step: nu f32 action; obs_head f32 observation head; when the step is full
                       ((step + 1) % obs_stride == 0 or the last), obs_len - obs_head f32 more;
                       d reward; B flags (bit 0 terminated, bit 1 truncated); info count f32
             nq f64 final qpos; nv f64 final qvel
"""

import os
import platform
import struct
import sys
import zlib

import gymnasium as gym
import mujoco
import numpy as np

MAGIC = b"HONEMJC1"
SEEDED, CONTINUED, SET_STATE = 0, 1, 2
SEEDS = [0, 1, 2, 3, 7, 42, 123, 2024, 99_999, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 17, 2**63 + 5, 2**64 - 1]


def provenance() -> str:
    libc = "-".join(platform.libc_ver())
    return (
        f"gymnasium {gym.__version__}, mujoco {mujoco.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {libc}, {platform.machine()}"
    )


class Writer:
    def __init__(self):
        self.parts = []

    def pack(self, fmt, *values):
        self.parts.append(struct.pack("<" + fmt, *values))

    def f32s(self, values):
        self.parts.append(np.asarray(values, dtype="<f4").ravel().tobytes())

    def f64s(self, values):
        self.parts.append(np.asarray(values, dtype="<f8").ravel().tobytes())

    def text(self, value: str):
        data = value.encode()
        self.pack("H", len(data))
        self.parts.append(data)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


class Recorder:
    def __init__(self, env_id, info_keys, time_limit=None, obs_head=None, obs_stride=1):
        kwargs = {} if time_limit is None else {"max_episode_steps": time_limit}
        self.env = gym.make(env_id, **kwargs)
        self.env_id = env_id
        self.info_keys = info_keys
        self.registered_limit = gym.spec(env_id).max_episode_steps
        self.time_limit = self.env.spec.max_episode_steps
        self.obs_len = self.env.observation_space.shape[0]
        self.obs_head = self.obs_len if obs_head is None else obs_head
        self.obs_stride = obs_stride
        self.episodes = Writer()
        self.episode_count = self.step_count = self.terminations = self.truncations = 0
        self.rng = np.random.default_rng(zlib.crc32(env_id.encode()))

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def episode(self, kind, seed, policy, state=None):
        env = self.env
        obs, _ = env.reset() if kind == CONTINUED else env.reset(seed=seed)
        if kind == SET_STATE:
            qpos, qvel = state
            self.unwrapped.set_state(np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64))
            obs = self.unwrapped._get_obs()
        data = self.unwrapped.data
        w = self.episodes
        w.pack("BQ", kind, seed if kind != CONTINUED else 0)
        w.f64s(data.qpos)
        w.f64s(data.qvel)
        w.f32s(obs[: self.obs_head])
        steps = Writer()
        count = 0
        while True:
            action = np.asarray(policy(obs, count), dtype=np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            steps.f32s(action)
            steps.f32s(obs[: self.obs_head])
            if (count + 1) % self.obs_stride == 0 or done:
                steps.f32s(obs[self.obs_head :])
            steps.pack("dB", float(reward), int(bool(terminated)) | (int(bool(truncated)) << 1))
            steps.f32s([float(info[key]) for key in self.info_keys])
            count += 1
            if done:
                self.terminations += int(bool(terminated))
                self.truncations += int(bool(truncated))
                break
        w.pack("I", count)
        w.parts.extend(steps.parts)
        w.f64s(data.qpos)
        w.f64s(data.qvel)
        self.episode_count += 1
        self.step_count += count

    def write(self, out_dir):
        space = self.env.action_space
        h = Writer()
        h.parts.append(MAGIC)
        h.text(self.env_id)
        h.text(provenance())
        h.pack("II", self.registered_limit, self.time_limit)
        h.pack("II", self.obs_len, space.shape[0])
        h.f32s(space.low)
        h.f32s(space.high)
        h.pack("II", self.unwrapped.model.nq, self.unwrapped.model.nv)
        h.pack("H", len(self.info_keys))
        for key in self.info_keys:
            h.text(key)
        h.pack("III", self.obs_head, self.obs_stride, self.episode_count)
        path = os.path.join(out_dir, self.env_id + ".bin")
        with open(path, "wb") as f:
            f.write(h.bytes())
            f.write(self.episodes.bytes())
        print(
            f"{path}: {self.episode_count} episodes, {self.step_count} steps ({self.terminations} "
            f"terminated, {self.truncations} truncated), {os.path.getsize(path)} bytes"
        )

    # ---- policies ----

    def uniform(self, scale=1.0):
        space = self.env.action_space
        low, high = space.low.astype(np.float64) * scale, space.high.astype(np.float64) * scale
        return lambda obs, t: self.rng.uniform(low, high)

    def bang(self):
        space = self.env.action_space
        return lambda obs, t: np.where(self.rng.random(space.shape[0]) < 0.5, space.low, space.high)

    def gait(self, period, amplitude=1.0):
        """Each actuator a sine of its own phase: smooth, periodic, moves the walkers along."""
        space = self.env.action_space
        phases = self.rng.uniform(0, 2 * np.pi, size=space.shape[0])
        return lambda obs, t: amplitude * space.high * np.sin(2 * np.pi * t / period + phases)

    def random_state(self, qpos_noise, qvel_noise, qpos_at=None):
        """init_qpos/qvel plus noise, with some coordinates set (e.g. a height near a bound)."""
        model = self.unwrapped.model
        qpos = self.unwrapped.init_qpos + self.rng.uniform(-qpos_noise, qpos_noise, size=model.nq)
        qvel = self.rng.normal(0.0, qvel_noise, size=model.nv)
        for index, value in (qpos_at or {}).items():
            qpos[index] = value
        return qpos, qvel

    def standard_episodes(self, policies, seeds=SEEDS, continued_every=2):
        for i, seed in enumerate(seeds):
            self.episode(SEEDED, seed, policies[i % len(policies)]())
            if i % continued_every == 0:
                self.episode(CONTINUED, 0, policies[(i + 1) % len(policies)]())


def record_ant(out_dir):
    keys = ["x_position", "y_position", "distance_from_origin", "x_velocity", "y_velocity",
            "reward_forward", "reward_ctrl", "reward_contact", "reward_survive"]
    r = Recorder("Ant-v5", keys, time_limit=100, obs_head=27, obs_stride=10)
    policies = [lambda: r.uniform(), lambda: r.gait(20), lambda: r.uniform(1.5), lambda: r.bang()]
    r.standard_episodes(policies, seeds=SEEDS * 2)
    states = [
        r.random_state(0.1, 0.5, {2: 0.25}),  # low: the legs push it up or it falls below 0.2
        r.random_state(0.1, 0.5, {2: 0.95}),
        r.random_state(0.3, 2.0),
        r.random_state(0.05, 0.1, {2: 0.21}),
    ]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 500 + i, policies[i % len(policies)](), state)
    r.write(out_dir)


def record_half_cheetah(out_dir):
    keys = ["x_position", "x_velocity", "reward_forward", "reward_ctrl"]
    r = Recorder("HalfCheetah-v5", keys, time_limit=150)
    policies = [lambda: r.uniform(), lambda: r.gait(12), lambda: r.uniform(1.5), lambda: r.bang()]
    r.standard_episodes(policies, seeds=SEEDS[:8], continued_every=3)
    for i in range(2):
        r.episode(SET_STATE, 600 + i, policies[i % len(policies)](), r.random_state(0.5, 3.0))
    r.write(out_dir)


def record_hopper_like(env_id, seed_base, out_dir, tall_index_values):
    keys = ["x_position", "z_distance_from_origin", "x_velocity", "reward_forward", "reward_ctrl",
            "reward_survive"]
    r = Recorder(env_id, keys, time_limit=40)
    policies = [lambda: r.uniform(), lambda: r.gait(16, 0.5), lambda: r.uniform(1.5),
                lambda: r.bang(), lambda: r.gait(30, 0.2), lambda: r.gait(8, 0.05)]
    r.standard_episodes(policies, seeds=SEEDS * 3, continued_every=1)
    for i, at in enumerate(tall_index_values):
        r.episode(SET_STATE, seed_base + i, policies[i % len(policies)](), r.random_state(0.01, 0.2, at))
    # Fast ones, to exercise the velocity clipping of the observation.
    for i in range(3):
        r.episode(SET_STATE, seed_base + 50 + i, policies[i](), r.random_state(0.01, 8.0))
    r.write(out_dir)


def record_humanoid(out_dir):
    keys = ["x_position", "y_position", "distance_from_origin", "x_velocity", "y_velocity",
            "reward_survive", "reward_forward", "reward_ctrl", "reward_contact"]
    r = Recorder("Humanoid-v5", keys, time_limit=36, obs_head=45, obs_stride=16)
    policies = [lambda: r.uniform(), lambda: r.gait(20, 0.4), lambda: r.uniform(1.5),
                lambda: r.bang(), lambda: r.gait(40, 0.1), lambda: (lambda obs, t: np.zeros(17))]
    r.standard_episodes(policies, seeds=SEEDS * 2 + SEEDS[:10], continued_every=1)
    states = [
        r.random_state(0.01, 0.3, {2: 1.02}),
        r.random_state(0.01, 0.3, {2: 1.98}),
        r.random_state(0.05, 1.0),
        r.random_state(0.01, 0.05),
    ]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 800 + i, policies[i % len(policies)](), state)
    r.write(out_dir)


def record_swimmer(out_dir):
    keys = ["x_position", "y_position", "distance_from_origin", "x_velocity", "y_velocity",
            "reward_forward", "reward_ctrl"]
    r = Recorder("Swimmer-v5", keys, time_limit=200)
    policies = [lambda: r.gait(25), lambda: r.uniform(), lambda: r.uniform(1.5), lambda: r.bang()]
    r.standard_episodes(policies, seeds=SEEDS[:5], continued_every=2)
    for i in range(2):
        r.episode(SET_STATE, 900 + i, policies[i](), r.random_state(1.0, 1.0))
    r.write(out_dir)


def record_reacher(out_dir):
    r = Recorder("Reacher-v5", ["reward_dist", "reward_ctrl"])
    policies = [lambda: r.uniform(), lambda: r.gait(10), lambda: r.uniform(1.5), lambda: r.bang()]
    r.standard_episodes(policies, seeds=SEEDS + SEEDS[:5], continued_every=1)
    for i in range(4):
        state = r.random_state(2.0, 5.0)
        state[1][-2:] = 0.0
        r.episode(SET_STATE, 1000 + i, policies[i % len(policies)](), state)
    r.write(out_dir)


def record_pusher(out_dir):
    r = Recorder("Pusher-v5", ["reward_dist", "reward_ctrl", "reward_near"])
    policies = [lambda: r.uniform(), lambda: r.gait(15), lambda: r.uniform(1.5), lambda: r.bang()]
    r.standard_episodes(policies, seeds=SEEDS[:12], continued_every=3)
    for i in range(3):
        qpos, qvel = r.random_state(0.5, 1.0)
        qpos[-2:] = 0.0
        qvel[-4:] = 0.0
        r.episode(SET_STATE, 1100 + i, policies[i % len(policies)](), (qpos, qvel))
    r.write(out_dir)


def record_inverted_pendulum(out_dir):
    r = Recorder("InvertedPendulum-v5", ["reward_survive"], time_limit=300)

    def balance(gains, noise):
        gains = np.asarray(gains)
        return lambda obs, t: [np.clip(gains @ obs + r.rng.normal(0, noise), -3, 3)]

    policies = [lambda: r.uniform(), lambda: balance((1, 10, 1, 1), 0.3), lambda: r.bang(),
                lambda: r.uniform(1.5), lambda: balance((0, 3, 0, 0.3), 0.0)]
    r.standard_episodes(policies, seeds=SEEDS, continued_every=2)
    states = [([0.0, 0.19], [0.0, 0.5]), ([0.9, -0.15], [1.0, -1.0]), ([-0.5, 0.0], [0.0, 0.0])]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 1200 + i, policies[(i + 1) % len(policies)](), state)
    r.write(out_dir)


def record_inverted_double_pendulum(out_dir):
    r = Recorder("InvertedDoublePendulum-v5", ["reward_survive", "distance_penalty", "velocity_penalty"],
                 time_limit=25)
    policies = [lambda: r.uniform(), lambda: r.bang(), lambda: r.uniform(1.5), lambda: r.gait(6, 0.2)]
    r.standard_episodes(policies, seeds=SEEDS * 10, continued_every=1)
    states = [([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), ([0.5, 0.05, -0.05], [0.0, 2.0, -3.0]),
              ([0.0, 0.3, 0.3], [0.0, 12.0, -12.0])]
    for i, state in enumerate(states):
        r.episode(SET_STATE, 1300 + i, lambda obs, t: [0.0], state)
    r.write(out_dir)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "envs", "tests", "data", "mujoco"
    )
    os.makedirs(out_dir, exist_ok=True)
    print(provenance())
    record_ant(out_dir)
    record_half_cheetah(out_dir)
    hopper_heights = [{1: 1.25, 2: 0.19}, {1: 0.71}, {2: -0.19}, {1: 1.5}]
    record_hopper_like("Hopper-v5", 700, out_dir, hopper_heights)
    walker_heights = [{1: 1.25, 2: 0.99}, {1: 0.81}, {1: 1.99}, {2: -0.99}]
    record_hopper_like("Walker2d-v5", 750, out_dir, walker_heights)
    record_humanoid(out_dir)
    record_swimmer(out_dir)
    record_reacher(out_dir)
    record_pusher(out_dir)
    record_inverted_pendulum(out_dir)
    record_inverted_double_pendulum(out_dir)


if __name__ == "__main__":
    main()
