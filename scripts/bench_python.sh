#!/usr/bin/env bash
# hone_envs and envpool 1.2.7 from Python on hone's env benchmark grid, side by side in one run
# (scripts/bench_python.py). Builds the hone_envs wheel first (scripts/setup_python.sh). Options
# go to bench_python.py: --ms N, --tasks A,B, --envs 1,8,..., --threads 1,2, --modes sync,async.
#
#   bash scripts/bench_python.sh [--ms 300] [--tasks CartPole-v1]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$root/scripts/setup_python.sh"
wheel=$(find "${CARGO_TARGET_DIR:-$root/target}/python/wheels" -name 'hone_envs-*.whl' 2>/dev/null | head -n 1)
if [ -z "$wheel" ]; then
  # Installed already, from a wheel since deleted: build it again.
  rm -f "${HONE_CACHE:-$HOME/.cache/hone}/python-torch-2.11.0/.hone-envs-fingerprint"
  bash "$root/scripts/setup_python.sh"
  wheel=$(find "${CARGO_TARGET_DIR:-$root/target}/python/wheels" -name 'hone_envs-*.whl' | head -n 1)
fi
python3 "$root/scripts/bench_python.py" --wheel "$wheel" "$@"
