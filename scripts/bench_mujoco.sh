#!/usr/bin/env bash
# hone's MuJoCo envs and envpool 1.2.7's on the same grid: the pool's env-steps/s per cell against
# the physics floor (bare mj_step on the env's own trajectory, timed in windows between the pool's:
# see envs/benches/mujoco.rs) and the ratio hone / envpool.
#
# The two run cell by cell, one right after the other (in turn first), so that both of a cell's
# figures come from the machine in the same state: on a machine whose cores other work shares, the
# speed of everything drifts by tens of percent over minutes. With --repeat N (default 1) the
# grid runs N times; the summary gives, per cell, the median over the runs of the paired ratio
# hone / envpool, of hone's share of its floor and of its rate over the other two references
# (round-robin, concurrent: see envs/benches/mujoco.rs), and the best rate of each.
#
#   bash scripts/bench_mujoco.sh [--ms 1000] [--tasks Ant-v5,HalfCheetah-v5] [--envs 64,256]
#                                [--threads 1,2] [--modes sync,async] [--repeat 3]
#                                [--cpus 2,3] [--no-envpool] [--out DIR]
#
# --cpus runs both tools under `taskset -c` on those CPUs only: a quiet machine of that many
# cores carved out of a larger one. --no-envpool times hone and its floor alone (on a machine
# without envpool's virtual environment). --out keeps every cell's CSV files in DIR. With
# HONE_MUJOCO_BENCH set to a built bench binary (envs/benches/mujoco.rs), the script runs it
# instead of building one, on a machine without cargo.
set -euo pipefail
# Paths given relative to where the script is run from, before it moves to the repository root.
absolute() { realpath -m -- "$1"; }
bench=${HONE_MUJOCO_BENCH:+$(absolute "$HONE_MUJOCO_BENCH")}

repeat=1 ms=1000 tasks=Ant-v5,HalfCheetah-v5 envs=64,256 threads=1,2 modes=sync,async
cpus='' with_envpool=1 out=''
while [ $# -gt 0 ]; do
  if [ "$1" = --no-envpool ]; then with_envpool=0; shift; continue; fi
  [ $# -ge 2 ] || { echo "bench_mujoco: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --cpus) cpus=$2 ;;
    --out) out=$(absolute "$2") ;;
    --repeat) repeat=$2 ;;
    --ms) ms=$2 ;;
    --tasks) tasks=$2 ;;
    --envs) envs=$2 ;;
    --threads) threads=$2 ;;
    --modes) modes=$2 ;;
    *) echo "bench_mujoco: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "$out" ]; then
  mkdir -p "$out"
  [ -z "$(ls -A "$out")" ] || { echo "bench_mujoco: --out $out is not empty" >&2; exit 2; }
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
# The command prefix that keeps both tools on --cpus (`env`, which runs its arguments, when none).
pin=(env)
if [ -n "$cpus" ]; then
  command -v taskset >/dev/null || { echo "bench_mujoco: --cpus needs taskset (util-linux)" >&2; exit 2; }
  taskset -c "$cpus" true || { echo "bench_mujoco: --cpus $cpus is not a CPU list taskset accepts here" >&2; exit 2; }
  pin=(taskset -c "$cpus")
fi

# Build once; the cells then run the binary cargo reports.
if [ -n "$bench" ]; then
  [ -x "$bench" ] || { echo "bench_mujoco: HONE_MUJOCO_BENCH=$bench is not an executable file" >&2; exit 2; }
else
  bench=$(cargo bench --quiet -p hone-envs --features mujoco --bench mujoco --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["target"]["name"] == "mujoco":
        print(message["executable"])')
fi
[ -x "$bench" ] || { echo "bench_mujoco: could not build the mujoco bench" >&2; exit 1; }

# One cell of run $run (task, mode, n envs, t threads, args) by each tool.
hone() {
  printf '\n== run %s, %s %s %s envs %s threads: hone\n' "$run" "$task" "$mode" "$n" "$t"
  "${pin[@]}" "$bench" "${args[@]}" --csv "$out/hone-$run-$cell.csv" --floor-csv "$out/floor-$run-$cell.csv" >"$out/log"
  grep -v '^load average' "$out/log" || true
}
envpool() {
  [ "$with_envpool" = 1 ] || return 0
  printf '== run %s, %s %s %s envs %s threads: envpool\n' "$run" "$task" "$mode" "$n" "$t"
  "${pin[@]}" python3 scripts/bench_envpool.py "${args[@]}" --csv "$out/envpool-$run-$cell.csv" >"$out/log"
  grep -v '^load average\|^envpool \|^task ' "$out/log" || true
}

printf 'load average at start: %s\n' "$(cat /proc/loadavg)"
[ -z "$cpus" ] || printf 'both tools on CPUs %s only\n' "$cpus"
IFS=, read -ra task_list <<<"$tasks"
IFS=, read -ra mode_list <<<"$modes"
IFS=, read -ra env_list <<<"$envs"
IFS=, read -ra thread_list <<<"$threads"
for run in $(seq 1 "$repeat"); do
  cell=0
  for task in "${task_list[@]}"; do
    for mode in "${mode_list[@]}"; do
      for n in "${env_list[@]}"; do
        for t in "${thread_list[@]}"; do
          # An async pool needs at least two envs (its batch is half of them).
          [ "$mode" = async ] && [ "$n" -lt 2 ] && continue
          cell=$((cell + 1))
          args=(--tasks "$task" --modes "$mode" --envs "$n" --threads "$t" --ms "$ms")
          # Who goes first alternates from cell to cell and, for a cell, from run to run.
          if [ $(((cell + run) % 2)) -eq 0 ]; then hone; envpool; else envpool; hone; fi
        done
      done
    done
  done
done
printf '\nload average at end: %s\n\n' "$(cat /proc/loadavg)"

python3 - "$out" "$repeat" <<'PY'
import csv, glob, statistics, sys
folder, runs = sys.argv[1], int(sys.argv[2])
def rows(kind):
    table = {}
    for path in glob.glob(f"{folder}/{kind}-*.csv"):
        run = int(path.rsplit("/", 1)[1].split("-")[1])
        with open(path, newline="") as source:
            for row in csv.DictReader(source):
                key = (row["task"], row["mode"], int(row["num_envs"]), int(row["num_threads"]))
                table.setdefault(key, {})[run] = row
    return table
# hone's rate per cell is in its floor rows (steps_per_second), next to the references.
envpool, floor = rows("envpool"), rows("floor")
rate = lambda row: float(row["steps_per_second"])
print(f"env-steps/s over {runs} run(s); ratio: median of the paired hone / envpool; floor: median of hone's share of its floor;")
print("RR, conc: median of hone's rate over the round-robin and concurrent bare mj_step references")
print(f"{'task':<16} {'mode':<5} {'envs':>5} {'threads':>7} {'best hone':>10} {'best envpool':>12} {'ratio':>7} {'floor':>6} {'RR':>5} {'conc':>5} {'CPU eff':>7}")
for key in sorted(floor, key=lambda k: (k[0], k[1] != "sync", k[2], k[3])):
    paired = [rate(floor[key][r]) / rate(envpool[key][r]) for r in floor[key] if r in envpool.get(key, {})]
    shares = [(float(f["steps_per_second"]) / float(f["floor"]), float(f["steps_per_second"]) / float(f["round_robin"]),
               float(f["steps_per_second"]) / float(f["concurrent"]), float(f["cpu_efficiency"]))
              for f in floor.get(key, {}).values()]
    best_envpool = max((rate(r) for r in envpool.get(key, {}).values()), default=float("nan"))
    median = lambda values: statistics.median(values) if values else float("nan")
    print(f"{key[0]:<16} {key[1]:<5} {key[2]:>5} {key[3]:>7} {max(rate(r) for r in floor[key].values()):>10.0f} {(f'{best_envpool:.0f}' if paired else '-'):>12}"
          f" {(f'{median(paired):.2f}x' if paired else '-'):>7} {100 * median([s[0] for s in shares]):>5.0f}% {100 * median([s[1] for s in shares]):>4.0f}%"
          f" {100 * median([s[2] for s in shares]):>4.0f}% {100 * median([s[3] for s in shares]):>6.0f}%")
PY
