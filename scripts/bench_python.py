#!/usr/bin/env python3
"""hone_envs and envpool 1.2.7 from Python, side by side on hone's env benchmark grid, in one run.

    python3 scripts/bench_python.py [--ms 300] [--tasks A,B] [--envs 1,8,...] [--threads 1,2]
                                    [--modes sync,async] [--wheel PATH] [--csv OUT]

Runs in envpool's Python 3.12 environment (scripts/bench_envpool.py makes it) with the hone_envs
wheel installed there too (--wheel; scripts/bench_python.sh builds and passes it), so both
libraries run in the same process, cell by cell, through the same loop on the same random
actions: bench_envpool.py's (actions drawn beforehand, 16 batches cycled, a warm-up of a fifth
of the measured time, then env-steps per second of wall time; async cells use batch_size =
num_envs / 2 and send each received batch straight back). Which library runs first alternates
from cell to cell. `num_threads` is passed to both as is (hone counts the calling thread,
envpool does not). Also printed: the process's CPU time (every thread) per env-step, which a
loaded machine disturbs less than wall time.
"""

import csv
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_envpool  # noqa: E402  (the same folder: its venv, grid and envpool loop)


def parse_args():
    parser = bench_envpool.argparse.ArgumentParser(
        description=__doc__, formatter_class=bench_envpool.argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ms", type=int, default=300, help="measured milliseconds per cell and library")
    parser.add_argument("--tasks", default=",".join(bench_envpool.TASKS))
    parser.add_argument("--envs", default="1,8,64,256,1024")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--wheel", help="install this hone_envs wheel into the envpool environment first")
    parser.add_argument("--csv", help="write the rows as CSV here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def install_wheel(wheel):
    """Installs the hone_envs wheel (no dependencies: numpy and gymnasium are there) unless that
    very file is what is installed."""
    marker = bench_envpool.VENV / ".hone-envs-wheel"
    stamp = f"{wheel} {Path(wheel).stat().st_mtime_ns}"
    if marker.exists() and marker.read_text() == stamp:
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--force-reinstall", wheel],
        check=True,
    )
    marker.write_text(stamp)


def make_hone(task, num_envs, batch_size, num_threads, seed):
    import hone_envs

    return hone_envs.make(task, num_envs=num_envs, batch_size=batch_size, num_threads=num_threads, seed=seed)


def make_envpool(task, num_envs, batch_size, num_threads, seed):
    import envpool

    return envpool.make(
        task, env_type="gymnasium", num_envs=num_envs, batch_size=batch_size, num_threads=num_threads, seed=seed
    )


def run_cell(make, task, mode, num_envs, num_threads, seconds, seed):
    """bench_envpool.run_cell's loop, for either library: returns the batch size, env-steps per
    second of wall time, and process CPU seconds (all threads) per env-step."""
    batch_size = num_envs if mode == "sync" else max(num_envs // 2, 1)
    env = make(task, num_envs, batch_size, num_threads, seed)
    actions = bench_envpool.action_table(env.single_action_space, batch_size, seed)
    steps_per_check = max(4096 // batch_size, 1)

    if mode == "sync":
        env.reset()

        def run_for(limit):
            start, cpu = time.perf_counter(), time.process_time()
            rows, step = 0, 0
            while True:
                for _ in range(steps_per_check):
                    env.step(actions[step % 16])
                    rows += batch_size
                    step += 1
                elapsed = time.perf_counter() - start
                if elapsed >= limit:
                    return rows, elapsed, time.process_time() - cpu

    else:
        env.async_reset()

        def run_for(limit):
            start, cpu = time.perf_counter(), time.process_time()
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
                    return rows, elapsed, time.process_time() - cpu

    run_for(seconds / 5)
    rows, elapsed, cpu = run_for(seconds)
    env.close()
    return batch_size, rows / elapsed, cpu / rows


def main():
    args = parse_args()
    bench_envpool.ensure_venv()
    if args.wheel:
        install_wheel(args.wheel)
    warnings.filterwarnings("ignore")
    import envpool
    import hone_envs

    tasks = args.tasks.split(",")
    envs = [int(n) for n in args.envs.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    modes = args.modes.split(",")
    seconds = args.ms / 1000
    print(f"hone_envs {hone_envs.__version__} and envpool {envpool.__version__}, Python {sys.version.split()[0]}")
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    print(
        f"{'task':<26} {'mode':<5} {'envs':>5} {'thr':>3} {'batch':>5} {'hone_envs/s':>12} {'envpool/s':>12} "
        f"{'ratio':>6} {'hone us/call':>12} {'envpool us/call':>15} {'hone cpu ns/step':>16} {'envpool cpu ns/step':>19}",
        flush=True,
    )
    rows = []
    cell = 0
    for task in tasks:
        for mode in modes:
            for num_envs in envs:
                if mode == "async" and num_envs < 2:
                    continue
                for num_threads in threads:
                    runners = [("hone", make_hone), ("envpool", make_envpool)]
                    if cell % 2:
                        runners.reverse()
                    cell += 1
                    rates, cpus = {}, {}
                    for name, make in runners:
                        batch, rates[name], cpus[name] = run_cell(
                            make, task, mode, num_envs, num_threads, seconds, args.seed
                        )
                    ours, theirs = rates["hone"], rates["envpool"]
                    rows.append((task, mode, num_envs, num_threads, batch, ours, theirs, cpus["hone"], cpus["envpool"]))
                    print(
                        f"{task:<26} {mode:<5} {num_envs:>5} {num_threads:>3} {batch:>5} {ours:>12.0f} {theirs:>12.0f} "
                        f"{ours / theirs:>5.1f}x {1e6 * batch / ours:>12.2f} {1e6 * batch / theirs:>15.2f} "
                        f"{1e9 * cpus['hone']:>16.0f} {1e9 * cpus['envpool']:>19.0f}",
                        flush=True,
                    )
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")
    summarize(rows)
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["task", "mode", "num_envs", "num_threads", "batch_size", "hone_envs_steps_per_second",
                             "envpool_steps_per_second", "hone_envs_cpu_seconds_per_step",
                             "envpool_cpu_seconds_per_step"])
            writer.writerows(rows)


def summarize(rows):
    """The issue's bar: >= 2x envpool at num_envs >= 64, >= 3x at num_envs = 1."""
    print()
    for label, keep, bar in (("num_envs = 1", lambda n: n == 1, 3.0), ("num_envs >= 64", lambda n: n >= 64, 2.0)):
        ratios = [(r[5] / r[6], r) for r in rows if keep(r[2])]
        if not ratios:
            continue
        worst, row = min(ratios)
        below = sum(ratio < bar for ratio, _ in ratios)
        print(
            f"{label}: {len(ratios)} cells, ratio min {worst:.1f}x ({row[0]} {row[1]} envs={row[2]} threads={row[3]}), "
            f"median {sorted(r for r, _ in ratios)[len(ratios) // 2]:.1f}x; {below} below the {bar:.0f}x bar"
        )


if __name__ == "__main__":
    main()
