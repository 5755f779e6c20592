#!/usr/bin/env bash
# PPO speed, side by side: CleanRL's ppo.py (from the pip package cleanrl==1.2.0) and `hone train`
# with the same settings (CleanRL's defaults: CartPole-v1, 4 envs x 128 steps, 4 epochs x 4
# minibatches), in the same run on this machine. Prints steps/s of each and the ratio.
#
#   scripts/bench_ppo_cleanrl.sh [TOTAL_STEPS]     (default 100000)
#
# CleanRL's script runs on the project's torch 2.11.0 (scripts/setup.sh) in a side environment
# under $HONE_CACHE/cleanrl-bench with what ppo.py imports: gym==0.23.1, numpy<2, tensorboard, pygame (gym's classic control imports it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
total=${1:-100000}
cache=${HONE_CACHE:-$HOME/.cache/hone}
torch_env=$cache/python-torch-2.11.0
bench_env=$cache/cleanrl-bench

bash scripts/setup.sh
requirements="gym==0.23.1 numpy<2 tensorboard pygame"
if [ "$(cat "$bench_env/.ready" 2>/dev/null)" != "$requirements" ]; then
  rm -rf "$bench_env"
  "$torch_env/bin/python" -m venv "$bench_env"
  # shellcheck disable=SC2086
  "$bench_env/bin/python" -m pip install -q --disable-pip-version-check $requirements
  # torch from the project's environment, after this environment's own packages (numpy<2 wins).
  site=$("$bench_env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$torch_env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$site/hone-torch.pth"
  # cleanrl 1.2.0 is a Python 3.10 wheel; only its ppo.py script is needed.
  tmp=$(mktemp -d)
  "$bench_env/bin/python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 \
    -d "$tmp" "cleanrl==1.2.0"
  (cd "$tmp" && "$bench_env/bin/python" -m zipfile -e cleanrl-1.2.0-py3-none-any.whl wheel)
  cp "$tmp/wheel/cleanrl/ppo.py" "$bench_env/cleanrl_ppo.py"
  rm -rf "$tmp"
  printf '%s' "$requirements" >"$bench_env/.ready"
fi

cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== CleanRL ppo.py (cleanrl 1.2.0, torch $("$bench_env/bin/python" -c 'import torch; print(torch.__version__)'), CPU), $total steps"
start=$(python3 -c "import time; print(time.time())")
(cd "$work" && "$bench_env/bin/python" -W ignore "$bench_env/cleanrl_ppo.py" --total-timesteps "$total" --cuda False \
  --seed 1 >"$work/cleanrl.log" 2>&1) || { cat "$work/cleanrl.log"; exit 1; }
cleanrl_wall=$(python3 -c "import time; print(time.time() - $start)")
cleanrl_sps=$(grep '^SPS:' "$work/cleanrl.log" | tail -1 | awk '{print $2}')
cleanrl_return=$(grep 'episodic_return=' "$work/cleanrl.log" | tail -20 | sed 's/.*episodic_return=\[\{0,1\}\([0-9.]*\).*/\1/' | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n; else print "-"}')

echo "== hone train (same settings), $total steps"
start=$(python3 -c "import time; print(time.time())")
target/release/hone train --env CartPole-v1 --total-steps "$total" --seed 1 --device cpu --runs-dir "$work/runs" \
  --name bench --eval-episodes 0 >"$work/hone.log" 2>&1 || { cat "$work/hone.log"; exit 1; }
hone_wall=$(python3 -c "import time; print(time.time() - $start)")
hone_sps=$("$torch_env/bin/python" - "$work/runs/bench/metrics.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
start = next(e for e in events if e["event"] == "start")
updates = [e for e in events if e["event"] == "update"]
print(int(updates[-1]["global_step"] / updates[-1]["elapsed_s"]))
PY
)
hone_return=$("$torch_env/bin/python" - "$work/runs/bench/metrics.jsonl" <<'PY'
import json, sys
ups = [json.loads(l) for l in open(sys.argv[1])]
rets = [u["episodes"]["return_mean"] for u in ups if u["event"] == "update" and u["episodes"]["return_mean"] is not None]
print(f"{sum(rets[-5:]) / len(rets[-5:]):.1f}" if rets else "-")
PY
)

printf '\n%-22s %12s %12s %14s\n' "" "steps/s" "wall (s)" "final return"
printf '%-22s %12s %12.1f %14s\n' "CleanRL ppo.py" "$cleanrl_sps" "$cleanrl_wall" "$cleanrl_return"
printf '%-22s %12s %12.1f %14s\n' "hone train" "$hone_sps" "$hone_wall" "$hone_return"
printf "%-22s %12.1fx\n" "hone / CleanRL" "$(python3 -c "print($hone_sps / $cleanrl_sps)")"
