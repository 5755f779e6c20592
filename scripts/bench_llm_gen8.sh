#!/usr/bin/env bash
# Cached generation at batch 8 (the issue's 1.5x bar), hone and transformers alternating for
# several rounds so both see the same load on a shared machine; prints every run and the best
# (least disturbed) and median tokens/s of each side. SmolLM2-135M-Instruct, f32, CPU.
#
#   bash scripts/bench_llm_gen8.sh [threads] [rounds]      (defaults 1, 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-1}
rounds=${2:-3}
python=$(sed -n 's/^HONE_PYTHON = "\(.*\)"$/\1/p' .cargo/config.toml)
[ -x "$python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gguf=$("$python" scripts/llm_reference.py smollm2-gguf | "$python" -c 'import json,sys; print(json.load(sys.stdin)["path"])')
cargo build --release -q -p hone --bin hone
cargo build --release -q -p hone-rlhf --example llm_speed
target/release/hone convert gguf "$gguf" "$work/smollm2" >/dev/null
for _ in $(seq "$rounds"); do
    target/release/examples/llm_speed "$work/smollm2" "$threads" gen8 >>"$work/hone.jsonl"
    "$python" scripts/bench_llm.py "$work/smollm2" "$threads" gen8 2>/dev/null >>"$work/hf.jsonl"
done
"$python" - "$work/hone.jsonl" "$work/hf.jsonl" "$threads" "$rounds" <<'PY'
import json, statistics, sys
def rates(p):
    out = []
    for r in map(json.loads, open(p)):
        out += [r["tokens"] / s for s in r["seconds"]]
    return out
hone, hf = rates(sys.argv[1]), rates(sys.argv[2])
print(f"SmolLM2-135M-Instruct, f32, CPU, {sys.argv[3]} threads; batch 8, prompt 64, 32 new "
      f"tokens, KV cache; {sys.argv[4]} alternating rounds")
print(f"{'tok/s':<10}{'hone':>10}{'transformers':>14}{'hone/hf':>9}")
for name, f in (("best", max), ("median", statistics.median)):
    print(f"{name:<10}{f(hone):>10.2f}{f(hf):>14.2f}{f(hone) / f(hf):>8.2f}x")
print("hone runs:", " ".join(f"{x:.1f}" for x in hone))
print("transformers runs:", " ".join(f"{x:.1f}" for x in hf))
PY
