#!/usr/bin/env bash
# Sharpening on the decoy task, end to end on a CPU: data, a tiny Llama SFT'd on decoy-prefixed
# answers (greedy falls for the decoy), then best-of-N with the self-reward, SFT-sharpening
# (SFT on best-of-32 winners) and RLHF-sharpening (ReMax with reward.kind = "self").
# Usage: scripts/sharpen_decoy.sh [work dir] (default runs/sharpen-decoy-demo); HONE=path/to/hone.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
hone="${HONE:-$repo/target/release/hone}"
work="${1:-runs/sharpen-decoy-demo}"
mkdir -p "$work"
cd "$work"
rm -rf init sft sft-sharpened rl-sharpened
"$hone" rlhf task decoy --out train.jsonl --count 4000 --min-len 3 --max-len 5 --p-correct 0.4 --seed 1
"$hone" rlhf task decoy --out eval.jsonl --count 200 --min-len 3 --max-len 5 --seed 2
head -n 1000 train.jsonl > train1k.jsonl
"$hone" init --layers 2 --hidden 64 --heads 4 --max-positions 64 --out init
"$hone" sft --name sft --runs-dir . --set model=init --set data=train.jsonl \
  --set learning_rate=3e-3 --set batch_size=32 --set epochs=8 --set max_steps=800 \
  --set max_length=32 | tail -n 1
base=sft/checkpoints/step-000000000800
echo "== best-of-N on the held-out prompts (base model)"
"$hone" sharpen bon --model "$base" --data eval.jsonl --max-new-tokens 8 --n 1,2,4,8,16
echo "== SFT-sharpening: best-of-32 winners on 1000 training prompts, then SFT"
"$hone" sharpen bon --model "$base" --data train1k.jsonl --max-new-tokens 8 --n 1,32 \
  --batch-prompts 32 --winners winners.jsonl
"$hone" sft --name sft-sharpened --runs-dir . --set model="$base" --set data=winners.jsonl \
  --set learning_rate=1e-3 --set batch_size=32 --set epochs=5 --set max_steps=150 \
  --set max_length=32 | tail -n 1
"$hone" sharpen bon --model sft-sharpened/checkpoints/step-000000000150 --data eval.jsonl \
  --max-new-tokens 8 --n 1,4
echo "== RLHF-sharpening: ReMax with the base model's log-likelihood as the reward"
"$hone" rlhf --name rl-sharpened --runs-dir . --set policy="$base" --set data=train.jsonl \
  --set steps=40 --set prompts_per_step=64 --set learning_rate=3e-4 --set device=cpu \
  --set generation.max_new_tokens=8 --set generation.top_p=1.0 --set reward.kind=self \
  --set remax.kl_coef=0.05 --set eval.data=eval.jsonl --set eval.every=20 \
  | grep -E "eval|accuracy"
