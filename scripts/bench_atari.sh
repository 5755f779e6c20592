#!/usr/bin/env bash
# Atari env-steps/s (one step = one agent step = 4 frames) of hone against envpool 1.2.7 and the
# floor, in one run on this machine: Pong-v5 and Breakout-v5 at 8, 64 and 256 envs, sync and
# async (batch = envs / 2), 1 and 2 threads. The floor is one thread of bare ALE act() calls with
# the same frame skip and preprocessing (envs/examples/atari_speed.rs), per thread and times the
# threads the pool used. hone and envpool run cell by cell, who goes first alternating, so both
# figures of a cell come from the machine in the same state.
#
#   bash scripts/bench_atari.sh [--seconds 5] [--quick] [--games Pong-v5,Breakout-v5]
#                               [--envs 8,64,256] [--threads 1,2] [--modes sync,async]
#                               [--no-envpool] [--out DIR]
#
# --seconds: measured seconds per cell and tool (after a warm-up of a fifth of it). --quick:
# --seconds 0.5 (a look at the whole grid in a few minutes, not numbers to report).
# --no-envpool: hone and its floor alone. --out keeps the CSV files. HONE_ATARI_BENCH=PATH runs a
# built envs/examples/atari_speed.rs instead of building one. envpool runs in the side
# environment of scripts/record_envpool_atari.py (made on first use).
set -euo pipefail
absolute() { realpath -m -- "$1"; }
bench=${HONE_ATARI_BENCH:+$(absolute "$HONE_ATARI_BENCH")}

seconds=5 games=Pong-v5,Breakout-v5 envs=8,64,256 threads=1,2 modes=sync,async
with_envpool=1 out=''
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) seconds=0.5; shift; continue ;;
    --no-envpool) with_envpool=0; shift; continue ;;
  esac
  [ $# -ge 2 ] || { echo "bench_atari: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --seconds) seconds=$2 ;;
    --games) games=$2 ;;
    --envs) envs=$2 ;;
    --threads) threads=$2 ;;
    --modes) modes=$2 ;;
    --out) out=$(absolute "$2") ;;
    *) echo "bench_atari: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "$out" ]; then
  mkdir -p "$out"
  [ -z "$(ls -A "$out")" ] || { echo "bench_atari: --out $out is not empty" >&2; exit 2; }
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

# Build once (the atari feature: ALE from scripts/setup.sh); the cells run the binary cargo reports.
if [ -z "$bench" ]; then
  bench=$(cargo build --quiet --release -p hone-envs --features atari --example atari_speed \
    --message-format=json | python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["target"]["name"] == "atari_speed":
        print(message["executable"])')
fi
[ -x "$bench" ] || { echo "bench_atari: no atari_speed binary (cargo build ... --features atari --example atari_speed)" >&2; exit 1; }
if [ "$with_envpool" = 1 ]; then
  envpool_python=$(python3 scripts/bench_envpool_atari.py --venv-python)
fi

hone() {
  printf '== %s %s %s envs %s threads: hone\n' "$game" "$mode" "$n" "$t"
  "$bench" "${args[@]}" --csv "$out/hone-$cell.csv" | tail -n +2
}
envpool() {
  [ "$with_envpool" = 1 ] || return 0
  printf '== %s %s %s envs %s threads: envpool\n' "$game" "$mode" "$n" "$t"
  "$envpool_python" scripts/bench_envpool_atari.py --in-venv "${args[@]}" --csv "$out/envpool-$cell.csv" | tail -n +3
}

printf 'load average at start: %s\n' "$(cat /proc/loadavg)"
IFS=, read -ra game_list <<<"$games"
IFS=, read -ra mode_list <<<"$modes"
IFS=, read -ra env_list <<<"$envs"
IFS=, read -ra thread_list <<<"$threads"
cell=0
for game in "${game_list[@]}"; do
  for mode in "${mode_list[@]}"; do
    for n in "${env_list[@]}"; do
      for t in "${thread_list[@]}"; do
        cell=$((cell + 1))
        args=(--games "$game" --modes "$mode" --envs "$n" --threads "$t" --seconds "$seconds")
        if [ $((cell % 2)) -eq 0 ]; then hone; envpool; else envpool; hone; fi
      done
    done
  done
done
printf 'load average at end: %s\n\n' "$(cat /proc/loadavg)"

python3 - "$out" "$seconds" <<'PY'
import csv, glob, sys
folder, seconds = sys.argv[1], sys.argv[2]
def rows(kind):
    table = {}
    for path in glob.glob(f"{folder}/{kind}-*.csv"):
        with open(path, newline="") as source:
            for row in csv.DictReader(source):
                table[(row["game"], int(row["num_envs"]), row["mode"], int(row["num_threads"]))] = row
    return table
hone, envpool = rows("hone"), rows("envpool")
ratio = lambda a, b: f"{a / b:.2f}x" if b == b and b > 0 else "-"
print(f"env-steps/s (1 step = 4 frames), {seconds} s per cell; floor: bare ALE + preprocessing on one thread, x threads used")
print("| game | envs | mode | threads | hone | envpool | hone/envpool | floor/thread | floor | hone/floor |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
order = lambda k: (k[0], k[1], k[2] != "sync", k[3])
for key in sorted(hone, key=order):
    h = hone[key]
    rate, per_thread, floor = (float(h[c]) for c in ("steps_per_second", "floor_per_thread", "floor"))
    theirs = float(envpool[key]["steps_per_second"]) if key in envpool else float("nan")
    shown = lambda v: f"{v:.0f}" if v == v else "-"
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {rate:.0f} | {shown(theirs)} | {ratio(rate, theirs)} "
          f"| {shown(per_thread)} | {shown(floor)} | {ratio(rate, floor)} |")
PY
