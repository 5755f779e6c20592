#!/usr/bin/env bash
# ReMax on digit sorting, end to end on a CPU: task data, a tiny random Llama, a short SFT
# (configs/sft_sort.toml), then `hone rlhf --config configs/remax_sort.toml`, printing greedy
# accuracy on 200 held-out prompts before and after ReMax and its wall time.
# Usage: scripts/remax_sort.sh [work dir] (default runs/remax-sort-demo); HONE=path/to/hone,
# SEED=n (data, initialisation and runs; default 1, as `hone rlhf demo`); ALGORITHM=ppo runs
# configs/ppo_sort.toml instead, from a 60-step SFT model (SFT_STEPS=n overrides either).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
hone="${HONE:-$repo/target/release/hone}"
seed="${SEED:-1}"
# Tiny models run fastest on one libtorch thread (and leave the other core to the rest).
threads="${THREADS:-1}"
work="${1:-runs/remax-sort-demo}"
mkdir -p "$work"
cd "$work"
"$hone" rlhf task sort --out train.jsonl --count 4000 --min-len 3 --max-len 6 --seed "$seed"
"$hone" rlhf task sort --out eval.jsonl --count 200 --min-len 3 --max-len 6 --seed $((seed + 1))
algorithm="${ALGORITHM:-remax}"
case "$algorithm" in
    remax) sft_steps="${SFT_STEPS:-100}" ;;
    ppo) sft_steps="${SFT_STEPS:-60}" ;;
    *) echo "ALGORITHM must be remax or ppo, not $algorithm" >&2; exit 2 ;;
esac
rm -rf init sft "$algorithm"
"$hone" init --layers 2 --hidden 64 --heads 4 --max-positions 64 --seed "$seed" --out init
"$hone" sft --config "$repo/configs/sft_sort.toml" --name sft --runs-dir . --set model=init \
  --set data=train.jsonl --set seed="$seed" --set max_steps="$sft_steps" --threads "$threads" \
  | tail -n 2
start=$(date +%s)
"$hone" rlhf --config "$repo/configs/${algorithm}_sort.toml" --name "$algorithm" --runs-dir . --no-tui \
  --set policy="$(ls -d sft/checkpoints/step-* | tail -n 1)" --set seed="$seed" \
  --threads "$threads"
echo "$algorithm wall time: $(( $(date +%s) - start )) s"
