#!/usr/bin/env python3
"""envpool 1.2.7 on hone's env benchmark grid, and the ratio hone / envpool per cell.

    python3 scripts/bench_envpool.py [--ms 300] [--tasks A,B] [--envs 1,8,...] [--threads 1,2]
                                     [--modes sync,async] [--csv OUT] [--hone-csv HONE_CSV]

Runs itself in a Python 3.12 virtual environment under ~/.cache/hone/envpool-bench with
envpool==1.2.7 (created on first use; envpool 1.2.7 has wheels up to Python 3.12). The python
used to create it is $HONE_ENVPOOL_PYTHON, else ~/.pyenv/versions/3.12.1/bin/python, else
python3.12 on PATH.

The measurement mirrors `hone_envs::bench::run_cell`: random valid actions drawn beforehand
(16 batches, cycled), a warm-up of a fifth of the measured time, then env-steps (batch rows,
reset rows included) per second of wall time. Async cells use batch_size = num_envs / 2 and
send each received batch straight back. `num_threads` is passed to envpool as is: envpool's
worker threads, while hone's count includes the calling thread.

With --hone-csv (written by `cargo bench -p hone-envs --bench envs -- --csv PATH`), prints the
side-by-side table with the ratio hone / envpool.
"""

import argparse
import csv
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

VENV = Path.home() / ".cache" / "hone" / "envpool-bench"
REQUIREMENTS = ["envpool==1.2.7", "numpy<2"]
TASKS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def ensure_venv():
    """Re-executes this script inside the envpool virtual environment, creating it if needed."""
    venv_python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    marker = VENV / ".hone-requirements"
    installed = marker.read_text() if marker.exists() else ""
    if not venv_python.exists() or installed != " ".join(REQUIREMENTS):
        candidates = [
            os.environ.get("HONE_ENVPOOL_PYTHON"),
            str(Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python"),
            "python3.12",
        ]
        python = next((c for c in candidates if c and (Path(c).exists() or which(c))), None)
        if python is None:
            sys.exit("bench_envpool: no Python 3.12 found; set HONE_ENVPOOL_PYTHON")
        if not venv_python.exists():
            print(f"bench_envpool: creating {VENV} with {python}", file=sys.stderr)
            subprocess.run([python, "-m", "venv", str(VENV)], check=True)
        print(f"bench_envpool: installing {' '.join(REQUIREMENTS)}", file=sys.stderr)
        subprocess.run(
            [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
            check=True,
        )
        marker.write_text(" ".join(REQUIREMENTS))
    os.execv(str(venv_python), [str(venv_python), *sys.argv])


def which(name):
    return any((Path(p) / name).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ms", type=int, default=300, help="measured milliseconds per cell")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--envs", default="1,8,64,256,1024")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--csv", help="write envpool's rows as CSV here")
    parser.add_argument("--hone-csv", help="hone's CSV, to print the ratio table")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def action_table(space, rows, seed, batches=16):
    import numpy as np

    rng = np.random.default_rng(seed)
    if hasattr(space, "n"):
        return [rng.integers(0, space.n, size=rows, dtype=np.int64) for _ in range(batches)]
    low = np.maximum(space.low, -1e3)
    high = np.minimum(space.high, 1e3)
    return [rng.uniform(low, high, size=(rows, *space.shape)).astype(np.float32) for _ in range(batches)]


def run_cell(task, mode, num_envs, num_threads, seconds, seed):
    import envpool

    batch_size = num_envs if mode == "sync" else max(num_envs // 2, 1)
    env = envpool.make(
        task, env_type="gymnasium", num_envs=num_envs, batch_size=batch_size, num_threads=num_threads, seed=seed
    )
    actions = action_table(env.action_space, batch_size, seed)
    steps_per_check = max(4096 // batch_size, 1)

    if mode == "sync":
        env.reset()

        def run_for(limit):
            start = time.perf_counter()
            rows, step = 0, 0
            while True:
                for _ in range(steps_per_check):
                    env.step(actions[step % 16])
                    rows += batch_size
                    step += 1
                elapsed = time.perf_counter() - start
                if elapsed >= limit:
                    return rows, elapsed

    else:
        env.async_reset()

        def run_for(limit):
            start = time.perf_counter()
            rows, step = 0, 0
            while True:
                for _ in range(steps_per_check):
                    *_, info = env.recv()
                    env_id = info["env_id"]
                    env.send(actions[step % 16][: len(env_id)], env_id)
                    rows += len(env_id)
                    step += 1
                elapsed = time.perf_counter() - start
                if elapsed >= limit:
                    return rows, elapsed

    run_for(seconds / 5)
    rows, elapsed = run_for(seconds)
    env.close()
    return batch_size, rows / elapsed


def main():
    args = parse_args()
    ensure_venv()
    warnings.filterwarnings("ignore")
    import envpool

    tasks = args.tasks.split(",")
    envs = [int(n) for n in args.envs.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    modes = args.modes.split(",")
    print(f"envpool {envpool.__version__}, Python {sys.version.split()[0]}", flush=True)
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    header = f"{'task':<26} {'mode':<5} {'envs':>6} {'threads':>7} {'batch':>6} {'env-steps/s':>14} {'ns/step':>10}"
    print(header, flush=True)
    rows = []
    for task in tasks:
        for mode in modes:
            for num_envs in envs:
                if mode == "async" and num_envs < 2:
                    continue
                for num_threads in threads:
                    batch, rate = run_cell(task, mode, num_envs, num_threads, args.ms / 1000, args.seed)
                    rows.append((task, mode, num_envs, num_threads, batch, rate))
                    print(
                        f"{task:<26} {mode:<5} {num_envs:>6} {num_threads:>7} {batch:>6} {rate:>14.0f} {1e9 / rate:>10.1f}",
                        flush=True,
                    )
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["task", "mode", "num_envs", "num_threads", "batch_size", "steps_per_second"])
            writer.writerows(rows)
    if args.hone_csv:
        print_ratios(rows, args.hone_csv)


def print_ratios(envpool_rows, hone_csv):
    hone = {}
    with open(hone_csv, newline="") as source:
        for row in csv.DictReader(source):
            key = (row["task"], row["mode"], int(row["num_envs"]), int(row["num_threads"]))
            hone[key] = float(row["steps_per_second"])
    print()
    print("hone / envpool, env-steps/s (same machine, same run)")
    print(f"{'task':<26} {'mode':<5} {'envs':>6} {'threads':>7} {'hone':>12} {'envpool':>12} {'ratio':>7}")
    for task, mode, num_envs, num_threads, _batch, rate in envpool_rows:
        ours = hone.get((task, mode, num_envs, num_threads))
        if ours is None:
            continue
        print(
            f"{task:<26} {mode:<5} {num_envs:>6} {num_threads:>7} {ours:>12.0f} {rate:>12.0f} {ours / rate:>6.1f}x"
        )
    singles = [(r, hone.get(r[:4])) for r in envpool_rows if r[2] == 1 and r[1] == "sync"]
    for (task, _mode, _n, num_threads, _b, rate), ours in singles:
        if ours:
            print(
                f"single env, {num_threads} thread(s), {task}: hone {1e9 / ours:.0f} ns/step, "
                f"envpool {1e9 / rate:.0f} ns/step"
            )


if __name__ == "__main__":
    main()
