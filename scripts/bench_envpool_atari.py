#!/usr/bin/env python3
"""envpool 1.2.7's Atari env-steps/s on scripts/bench_atari.sh's cells.

    python3 scripts/bench_envpool_atari.py [--seconds 5] [--games Pong-v5,Breakout-v5]
        [--envs 8,64,256] [--threads 1,2] [--modes sync,async] [--seed 0] [--csv OUT]
    python3 scripts/bench_envpool_atari.py --venv-python   # set up, print the venv's python

Runs in the Python 3.12 side environment of scripts/record_envpool_atari.py (its
`ensure_venv`: ~/.cache/hone/envpool-1.2.7 with envpool==1.2.7), re-running itself there.

The measurement mirrors envs/examples/atari_speed.rs: `envpool.make(task,
env_type="gymnasium", ...)` at envpool's defaults, random legal actions (16 batches from a fixed
seed, cycled), a warm-up of a fifth of the measured time, then env-steps (batch rows) per second
of wall time; one env-step is one agent step (4 frames). Async cells use batch_size =
num_envs / 2 and send each received batch straight back. `num_threads` goes to envpool as is.
"""

import argparse
import csv
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import record_envpool_atari as recorder  # noqa: E402  (the venv set-up lives there)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--games", default="Pong-v5,Breakout-v5")
    parser.add_argument("--envs", default="8,64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", help="write the rows as CSV here")
    parser.add_argument("--python", default=recorder.default_python(), help="a Python 3.12-3.14")
    parser.add_argument("--venv", default=os.path.expanduser(f"~/.cache/hone/envpool-{recorder.ENVPOOL}"))
    parser.add_argument("--venv-python", action="store_true", help="set up the venv, print its python")
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def timed(seconds, step):
    """Runs `step` (returning env-steps) for a warm-up of seconds / 5, then `seconds`; the rate."""

    def run_for(limit):
        start, rows = time.perf_counter(), 0
        while True:
            rows += step()
            elapsed = time.perf_counter() - start
            if elapsed >= limit:
                return rows / elapsed

    run_for(seconds / 5)
    return run_for(seconds)


def run_cell(task, mode, num_envs, num_threads, seconds, seed):
    import envpool
    import numpy as np

    batch_size = num_envs if mode == "sync" else max(num_envs // 2, 1)
    env = envpool.make(
        task, env_type="gymnasium", num_envs=num_envs, batch_size=batch_size, num_threads=num_threads, seed=seed
    )
    rng = np.random.default_rng(seed + 1)
    actions = [rng.integers(0, env.action_space.n, size=batch_size, dtype=np.int64) for _ in range(16)]
    counter = [0]
    if mode == "sync":
        env.reset()

        def step():
            counter[0] += 1
            env.step(actions[counter[0] % 16])
            return batch_size

    else:
        env.async_reset()

        def step():
            counter[0] += 1
            env_id = env.recv()[-1]["env_id"]
            env.send(actions[counter[0] % 16][: len(env_id)], env_id)
            return len(env_id)

    rate = timed(seconds, step)
    env.close()
    return batch_size, rate


def main():
    args = parse_args()
    if not args.in_venv:
        venv_python = recorder.ensure_venv(args.python, args.venv)
        if args.venv_python:
            print(venv_python)
            return
        os.execv(venv_python, [venv_python, os.path.abspath(__file__), *sys.argv[1:], "--in-venv"])
    warnings.filterwarnings("ignore")
    import envpool

    print(f"envpool {envpool.__version__}, Python {sys.version.split()[0]}", flush=True)
    print(f"{'task':<12} {'mode':<5} {'envs':>5} {'threads':>7} {'batch':>5} {'env-steps/s':>11}", flush=True)
    rows = []
    for task in args.games.split(","):
        for mode in args.modes.split(","):
            for num_envs in (int(n) for n in args.envs.split(",")):
                for num_threads in (int(t) for t in args.threads.split(",")):
                    batch, rate = run_cell(task, mode, num_envs, num_threads, args.seconds, args.seed)
                    rows.append((task, mode, num_envs, num_threads, batch, rate))
                    print(f"{task:<12} {mode:<5} {num_envs:>5} {num_threads:>7} {batch:>5} {rate:>11.0f}", flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["game", "mode", "num_envs", "num_threads", "batch_size", "steps_per_second"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
