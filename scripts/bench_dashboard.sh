#!/usr/bin/env bash
# The dashboard's cost to training: `hone train --env CartPole-v1` (default config, 500k steps)
# with the dashboard and with --no-tui, both in a tmux pseudo-terminal, runs alternated so that
# drifts in machine load fall on both alike. Prints each run's training SPS (final step over the
# run's elapsed time, from metrics.jsonl) and process CPU seconds, then the means.
#
#   scripts/bench_dashboard.sh [PAIRS]     (default 3 pairs; needs tmux and python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pairs=${1:-3}
command -v tmux >/dev/null || { echo "tmux not found (Debian package tmux)" >&2; exit 1; }
cargo build --release --quiet --bin hone
hone=$PWD/target/release/hone
out=$(mktemp -d /tmp/hone-bench-dashboard.XXXXXX)
socket=hone-bench-$$
trap 'tmux -L "$socket" kill-server 2>/dev/null || true' EXIT

# One run in a fresh 160x50 pty; waits for the run to finish, leaves the dashboard with q.
run_one() {
  local mode=$1 name=$2 flags=""
  [ "$mode" = no-tui ] && flags=--no-tui
  tmux -L "$socket" new-session -d -x 160 -y 50 -s "$name" \
    "/usr/bin/time -f '%U %S' -o $out/$name.time $hone train --env CartPole-v1 --runs-dir $out \
     --name $name --eval-episodes 0 $flags; touch $out/$name.exited; sleep 600"
  until grep -qs '"event":"finish"' "$out/$name/metrics.jsonl"; do sleep 0.5; done
  # The dashboard stays on a finished run until q; --no-tui exits by itself.
  if [ "$mode" = tui ]; then
    until [ -e "$out/$name.exited" ]; do
      tmux -L "$socket" send-keys -t "$name" q
      sleep 1
    done
  fi
  until [ -e "$out/$name.exited" ]; do sleep 0.2; done
  tmux -L "$socket" kill-session -t "$name"
}

for i in $(seq 1 "$pairs"); do
  # Alternate which goes first, too.
  if [ $((i % 2)) = 1 ]; then order="tui no-tui"; else order="no-tui tui"; fi
  for mode in $order; do
    run_one "$mode" "$mode-$i"
    echo "done: $mode-$i" >&2
  done
done

python3 - "$out" "$pairs" <<'PY'
import json, pathlib, statistics, sys
out, pairs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
rows = {"tui": [], "no-tui": []}
print(f"{'run':<10} {'SPS':>8} {'CPU s':>7}")
for i in range(1, pairs + 1):
    for mode in ("tui", "no-tui"):
        name = f"{mode}-{i}"
        updates = [json.loads(l) for l in (out / name / "metrics.jsonl").read_text().splitlines()
                   if '"event":"update"' in l]
        last = updates[-1]
        sps = last["global_step"] / last["elapsed_s"]
        user, system = map(float, (out / f"{name}.time").read_text().split()[-2:])
        rows[mode].append((sps, user + system))
        print(f"{name:<10} {sps:>8.0f} {user + system:>7.1f}")
tui = statistics.mean(s for s, _ in rows["tui"])
plain = statistics.mean(s for s, _ in rows["no-tui"])
print(f"mean SPS: dashboard {tui:.0f}, --no-tui {plain:.0f}, "
      f"difference {100 * (tui - plain) / plain:+.1f}% (negative: the dashboard is slower)")
# Runs of one pair ran back to back, under much the same load from the rest of the machine.
pair = [100 * (t[0] - p[0]) / p[0] for t, p in zip(rows["tui"], rows["no-tui"])]
print("per pair: " + ", ".join(f"{d:+.1f}%" for d in pair)
      + f"; median {statistics.median(pair):+.1f}%")
print("mean CPU s: dashboard {:.1f}, --no-tui {:.1f}".format(
    statistics.mean(c for _, c in rows["tui"]), statistics.mean(c for _, c in rows["no-tui"])))
PY
