#!/usr/bin/env bash
# Sharpening on the decoy task, end to end on a CPU: data, a tiny Llama SFT'd on decoy-prefixed
# answers so greedy decoding falls for the decoy (configs/sft_decoy.toml), then best-of-N with
# the self-reward, SFT-sharpening (SFT on best-of-32 winners, configs/sft_sharpen_decoy.toml)
# and RLHF-sharpening (ReMax with reward.kind = "self", configs/rlhf_sharpen_decoy.toml), each
# scored by greedy accuracy on the same 200 held-out prompts.
# Usage: scripts/sharpen_decoy.sh [work dir] (default runs/sharpen-decoy-demo); HONE=path/to/hone,
# SEED=n (data, initialisation and runs; default 1, as `hone rlhf demo`).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
hone="${HONE:-$repo/target/release/hone}"
seed="${SEED:-1}"
# Tiny models run fastest on one libtorch thread (and leave the other core to the rest).
threads="${THREADS:-1}"
work="${1:-runs/sharpen-decoy-demo}"
mkdir -p "$work"
cd "$work"
rm -rf init sft sft-sharpened rl-sharpened
"$hone" rlhf task decoy --out train.jsonl --count 8000 --min-len 4 --max-len 4 --p-correct 0.35 \
  --seed "$seed"
"$hone" rlhf task sort --out eval.jsonl --count 200 --min-len 4 --max-len 4 --seed $((seed + 1))
head -n 1000 train.jsonl > train1k.jsonl
"$hone" init --layers 2 --hidden 64 --heads 4 --max-positions 64 --seed "$seed" --out init
"$hone" sft --config "$repo/configs/sft_decoy.toml" --name sft --runs-dir . --set model=init \
  --set data=train.jsonl --set seed="$seed" --threads "$threads" | tail -n 1
base=$(ls -d sft/checkpoints/step-* | tail -n 1)
echo "== best-of-N on the held-out prompts (base model $base)"
"$hone" sharpen bon --model "$base" --data eval.jsonl --max-new-tokens 8 --n 1,2,4,8,16 \
  --seed "$seed" --threads "$threads"
echo "== SFT-sharpening: best-of-32 winners on 1000 training prompts, then SFT"
"$hone" sharpen bon --model "$base" --data train1k.jsonl --max-new-tokens 8 --n 1,32 \
  --batch-prompts 32 --winners winners.jsonl --seed "$seed" --threads "$threads"
"$hone" sft --config "$repo/configs/sft_sharpen_decoy.toml" --name sft-sharpened --runs-dir . \
  --set model="$base" --set data=winners.jsonl --set seed="$seed" --threads "$threads" \
  | tail -n 1
"$hone" sharpen bon --model "$(ls -d sft-sharpened/checkpoints/step-* | tail -n 1)" \
  --data eval.jsonl --max-new-tokens 8 --n 1,4 --seed "$seed" --threads "$threads"
echo "== RLHF-sharpening: ReMax with the base model's log-likelihood as the reward"
"$hone" rlhf --config "$repo/configs/rlhf_sharpen_decoy.toml" --name rl-sharpened --runs-dir . \
  --no-tui --set policy="$base" --set seed="$seed" --threads "$threads" \
  | grep -E "eval|accuracy|warning"
