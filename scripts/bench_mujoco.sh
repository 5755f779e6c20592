#!/usr/bin/env bash
# hone's MuJoCo envs and envpool 1.2.7's on the same grid, in the same run: the pool's
# env-steps/s per cell against the physics floor (bare mj_step on one thread, same model, states
# and controls, times the threads the pool used) and the ratio hone / envpool. Options are passed
# to both: --ms N, --tasks A,B (default Ant-v5,HalfCheetah-v5), --envs 1,8,..., --threads 1,2,
# --modes sync,async.
#
#   bash scripts/bench_mujoco.sh [--ms 1000] [--envs 64,256]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

args=(--tasks Ant-v5,HalfCheetah-v5 --ms 1000 "$@")
hone_csv=$(mktemp --suffix=.csv)
trap 'rm -f "$hone_csv"' EXIT

printf '== hone (cargo bench -p hone-envs --features mujoco --bench mujoco)\n'
cargo bench --quiet -p hone-envs --features mujoco --bench mujoco -- "${args[@]}" --csv "$hone_csv"
printf '\n== envpool\n'
python3 scripts/bench_envpool.py "${args[@]}" --hone-csv "$hone_csv"
