#!/usr/bin/env python3
"""Records envpool 1.2.7 Atari trajectories for hone-envs' conformance test (tests/atari_envpool.rs).

Run by hand (not by CI); the files it writes are committed under envs/tests/data/:

    python3 scripts/record_envpool_atari.py [--python PYTHON3.12] [--venv DIR] [--out DIR]

envpool 1.2.7 has wheels for Python 3.12-3.14 only, so the script makes its own side environment
(default ~/.cache/hone/envpool-1.2.7, with `envpool==1.2.7` and numpy from PyPI, made with
--python, default ~/.pyenv/versions/3.12.1/bin/python3.12 or python3.12) and re-runs itself there.

Each run: `envpool.make_gymnasium(task_id, num_envs=1, seed=SEED, **options)`, one `reset()`, then
`steps` steps of actions drawn from numpy's RandomState(ACTION_SEED) uniformly over the action
space. envpool's autoreset is "next step": after a step that is terminated or truncated, the next
`step()` ignores its action and returns the reset (reward 0, both flags false, elapsed_step 0); with
`episodic_life` a life loss ends the step (terminated) and the next step is a soft reset that keeps
the game. The recorded action is the one sent, whether or not envpool used it.

File format: envs/tests/data/envpool_atari_<rom>.jsonl, one JSON value per line:

    {"run": NAME, "task_id": ID, "seed": S, "options": {...}, "envpool": VERSION}   starts a run
    [action, obs, reward, info_reward, terminated, truncated, lives, info_terminated, elapsed_step]

action is -1 for the reset; obs is the first 16 hex digits of the sha256 of the uint8 observation
(stack x height x width, C order); flags are 0/1.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

ENVPOOL = "1.2.7"
SEED = 7
ACTION_SEED = 2024

# name, task id, make options, steps. noop_max=1 turns noop starts off (0 crashes envpool).
RUNS = [
    ("pong", "Pong-v5", {"noop_max": 1}, 1100),
    ("pong_noop30", "Pong-v5", {}, 300),
    ("pong_truncated", "Pong-v5", {"noop_max": 1, "max_episode_steps": 150}, 400),
    ("pong_sticky", "Pong-v5", {"noop_max": 1, "repeat_action_probability": 0.25}, 300),
    ("breakout", "Breakout-v5", {"noop_max": 1}, 700),
    ("breakout_life_clip", "Breakout-v5",
     {"noop_max": 1, "episodic_life": True, "reward_clip": True}, 700),
    ("breakout_noop30_life", "Breakout-v5", {"episodic_life": True}, 500),
    ("breakout_shapes", "Breakout-v5",
     {"noop_max": 1, "frame_skip": 3, "stack_num": 2, "img_height": 100, "img_width": 80}, 400),
    ("space_invaders_life_clip", "SpaceInvaders-v5",
     {"noop_max": 1, "episodic_life": True, "reward_clip": True}, 1200),
    ("space_invaders", "SpaceInvaders-v5", {"noop_max": 1}, 600),
    ("seaquest_life", "Seaquest-v5", {"noop_max": 1, "episodic_life": True}, 800),
]


def default_python():
    pyenv = os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3.12")
    return pyenv if os.path.exists(pyenv) else "python3.12"


def ensure_venv(python, venv):
    venv_python = os.path.join(venv, "bin", "python")
    if not os.path.exists(venv_python):
        subprocess.run([python, "-m", "venv", venv], check=True)
    probe = subprocess.run(
        [venv_python, "-c", "import envpool, numpy; print(envpool.__version__)"],
        capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != ENVPOOL:
        subprocess.run([venv_python, "-m", "pip", "install", "-q", f"envpool=={ENVPOOL}", "numpy"],
                       check=True)
    return venv_python


def digest(obs):
    import numpy as np
    return hashlib.sha256(np.ascontiguousarray(obs).tobytes()).hexdigest()[:16]


def record_run(name, task_id, options, steps):
    import envpool
    import numpy as np

    env = envpool.make_gymnasium(task_id, num_envs=1, seed=SEED, **options)
    actions = np.random.RandomState(ACTION_SEED).randint(env.action_space.n, size=steps)
    lines = [json.dumps({"run": name, "task_id": task_id, "seed": SEED, "options": options,
                         "envpool": envpool.__version__})]

    def line(action, obs, reward, terminated, truncated, info):
        return json.dumps([int(action), digest(obs[0]), float(reward), float(info["reward"][0]),
                           int(terminated), int(truncated), int(info["lives"][0]),
                           int(info["terminated"][0]), int(info["elapsed_step"][0])])

    obs, info = env.reset()
    lines.append(line(-1, obs, 0.0, False, False, info))
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(np.array([action]))
        lines.append(line(action, obs, reward[0], terminated[0], truncated[0], info))
    env.close()
    return lines


def record(out):
    import envpool
    os.makedirs(out, exist_ok=True)
    by_rom = {}
    for name, task_id, options, steps in RUNS:
        rom = envpool.make_spec(task_id).config.task
        by_rom.setdefault(rom, []).extend(record_run(name, task_id, options, steps))
    for rom, lines in by_rom.items():
        path = os.path.join(out, f"envpool_atari_{rom}.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {path} ({len(lines)} lines)")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=default_python(), help="a Python 3.12-3.14")
    parser.add_argument("--venv", default=os.path.expanduser(f"~/.cache/hone/envpool-{ENVPOOL}"))
    parser.add_argument("--out", default=os.path.join(here, "..", "envs", "tests", "data"))
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_venv:
        record(args.out)
        return
    venv_python = ensure_venv(args.python, args.venv)
    subprocess.run([venv_python, os.path.abspath(__file__), "--in-venv", "--out", args.out],
                   check=True)


if __name__ == "__main__":
    sys.exit(main())
