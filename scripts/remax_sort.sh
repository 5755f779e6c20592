#!/usr/bin/env bash
# ReMax on digit sorting, end to end on a CPU: task data, a tiny random Llama, a short SFT,
# then `hone rlhf --config configs/remax_sort.toml`, printing greedy accuracy before and after.
# Usage: scripts/remax_sort.sh [work dir] (default runs/remax-sort-demo); HONE=path/to/hone.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
hone="${HONE:-$repo/target/release/hone}"
work="${1:-runs/remax-sort-demo}"
mkdir -p "$work"
cd "$work"
"$hone" rlhf task sort --out train.jsonl --count 4000 --min-len 3 --max-len 6 --seed 1
"$hone" rlhf task sort --out eval.jsonl --count 200 --min-len 3 --max-len 6 --seed 2
rm -rf init sft remax
"$hone" init --layers 2 --hidden 64 --heads 4 --max-positions 64 --out init
"$hone" sft --name sft --runs-dir . --set model=init --set data=train.jsonl \
  --set learning_rate=3e-3 --set batch_size=32 --set max_steps=100 --set max_length=32 \
  | tail -n 2
start=$(date +%s)
"$hone" rlhf --config "$repo/configs/remax_sort.toml" --name remax --runs-dir .
echo "ReMax wall time: $(( $(date +%s) - start )) s"
