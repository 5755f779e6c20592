#!/usr/bin/env bash
# hone's env engine and envpool 1.2.7 on the same grid, in the same run, with the ratio
# hone / envpool per cell. Options (passed to both): --ms N, --tasks A,B, --envs 1,8,...,
# --threads 1,2, --modes sync,async. Defaults: the full grid of the issue, 300 ms per cell.
#
#   bash scripts/bench_envs.sh [--ms 300] [--tasks CartPole-v1,Pendulum-v1]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hone_csv=$(mktemp --suffix=.csv)
trap 'rm -f "$hone_csv"' EXIT

printf '== hone (cargo bench -p hone-envs --bench envs)\n'
cargo bench --quiet -p hone-envs --bench envs -- "$@" --csv "$hone_csv"
printf '\n== envpool\n'
python3 scripts/bench_envpool.py "$@" --hone-csv "$hone_csv"
