#!/usr/bin/env bash
# hone's MuJoCo envs and envpool 1.2.7's on the same grid, in the same run: the pool's
# env-steps/s per cell against the physics floor (bare mj_step on the env's own trajectory, one
# thread times the threads the pool used, and that many threads at once) and the ratio
# hone / envpool. Options are passed to both: --ms N, --tasks A,B (default Ant-v5,HalfCheetah-v5),
# --envs 1,8,..., --threads 1,2, --modes sync,async. With --repeat N (default 1) both run N times,
# alternating, and a last table compares the best of the N runs per cell (for a machine whose
# cores other work shares).
#
#   bash scripts/bench_mujoco.sh [--ms 1000] [--envs 64,256] [--repeat 3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

repeat=1
args=(--tasks Ant-v5,HalfCheetah-v5 --ms 1000)
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
csv_dir=$(mktemp -d)
trap 'rm -rf "$csv_dir"' EXIT

for run in $(seq 1 "$repeat"); do
  printf '== run %s of %s: hone (cargo bench -p hone-envs --features mujoco --bench mujoco)\n' "$run" "$repeat"
  cargo bench --quiet -p hone-envs --features mujoco --bench mujoco -- "${args[@]}" --csv "$csv_dir/hone-$run.csv"
  printf '\n== run %s of %s: envpool\n' "$run" "$repeat"
  python3 scripts/bench_envpool.py "${args[@]}" --csv "$csv_dir/envpool-$run.csv" --hone-csv "$csv_dir/hone-$run.csv"
  printf '\n'
done

if [ "$repeat" -gt 1 ]; then
  python3 - "$csv_dir" "$repeat" <<'PY'
import csv, sys
folder, runs = sys.argv[1], int(sys.argv[2])
def best(kind):
    table = {}
    for run in range(1, runs + 1):
        with open(f"{folder}/{kind}-{run}.csv", newline="") as source:
            for row in csv.DictReader(source):
                key = (row["task"], row["mode"], int(row["num_envs"]), int(row["num_threads"]))
                table[key] = max(table.get(key, 0.0), float(row["steps_per_second"]))
    return table
hone, envpool = best("hone"), best("envpool")
print(f"best of {runs} runs per cell, env-steps/s")
print(f"{'task':<16} {'mode':<5} {'envs':>6} {'threads':>7} {'hone':>10} {'envpool':>10} {'ratio':>7}")
for key in sorted(hone, key=lambda k: (k[0], k[1] != "sync", k[2], k[3])):
    if key in envpool:
        task, mode, envs, threads = key
        print(f"{task:<16} {mode:<5} {envs:>6} {threads:>7} {hone[key]:>10.0f} {envpool[key]:>10.0f} {hone[key] / envpool[key]:>6.2f}x")
PY
fi
