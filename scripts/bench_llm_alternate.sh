#!/usr/bin/env bash
# hone and transformers alternating for several rounds, so both see the same load on a shared
# machine: cached generation at batch 8 (`gen8`, the issue's 1.5x bar) or one SFT step at batch
# 8 x 256 (`sft`, the "no slower" bar). Prints every run and the best (least disturbed) and
# median of each side. SmolLM2-135M-Instruct, f32, CPU.
#
#   bash scripts/bench_llm_alternate.sh [threads] [rounds] [gen8|sft]      (defaults 1, 3, gen8)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-1}
rounds=${2:-3}
mode=${3:-gen8}
case $mode in gen8 | sft) ;; *) echo "mode must be gen8 or sft, not $mode" >&2; exit 1 ;; esac
# shellcheck source=scripts/llm_bench_model.sh
source scripts/llm_bench_model.sh
for _ in $(seq "$rounds"); do
    target/release/examples/llm_speed "$work/smollm2" "$threads" "$mode" >>"$work/hone.jsonl"
    "$python" scripts/bench_llm.py "$work/smollm2" "$threads" "$mode" 2>/dev/null >>"$work/hf.jsonl"
done
"$python" - "$work/hone.jsonl" "$work/hf.jsonl" "$threads" "$rounds" "$mode" <<'PY'
import json, statistics, sys
mode = sys.argv[5]
def values(p):
    out = []
    for r in map(json.loads, open(p)):
        if mode == "gen8":
            out += [r["tokens"] / s for s in r["seconds"]]
        else:
            out.append(r["seconds"])
    return out
hone, hf = values(sys.argv[1]), values(sys.argv[2])
if mode == "gen8":
    print(f"SmolLM2-135M-Instruct, f32, CPU, {sys.argv[3]} threads; batch 8, prompt 64, 32 new "
          f"tokens, KV cache; {sys.argv[4]} alternating rounds")
    header, best, faster = "tok/s", max, lambda a, b: a / b
else:
    print(f"SmolLM2-135M-Instruct, f32, CPU, {sys.argv[3]} threads; one SFT step at batch 8 x 256 "
          f"(median of 2 after a warm-up, per run); {sys.argv[4]} alternating rounds")
    header, best, faster = "seconds", min, lambda a, b: b / a
print(f"{header:<10}{'hone':>10}{'transformers':>14}{'hone faster':>13}")
for name, f in (("best", best), ("median", statistics.median)):
    print(f"{name:<10}{f(hone):>10.2f}{f(hf):>14.2f}{faster(f(hone), f(hf)):>12.2f}x")
if mode == "sft":
    for phase in ("forward", "backward", "update"):
        side = [statistics.median(r[phase] for r in map(json.loads, open(p))) for p in sys.argv[1:3]]
        print(f"{phase:<10}{side[0]:>10.2f}{side[1]:>14.2f}{side[1] / side[0]:>12.2f}x  (median)")
print("hone runs:", " ".join(f"{x:.1f}" for x in hone))
print("transformers runs:", " ".join(f"{x:.1f}" for x in hf))
PY
