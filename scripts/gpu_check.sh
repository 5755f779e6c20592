#!/usr/bin/env bash
# The GPU check of issues 5 and 7, run on a GPU machine with the binaries built on the CPU
# machine, against the GPU machine's own PyTorch 2.11 libtorch:
#   1. `hone doctor`: the devices libtorch sees, and libtorch_cuda.so loaded;
#   2. PPO on CUDA: the written-out PPO gradient against autograd's (a trainer unit test, carried
#      as target/release/hone-trainer-tests); CartPole-v1 (configs/ppo_cartpole_fast.toml, to
#      the end) and Pendulum-v1 (configs/ppo_pendulum.toml, the first PENDULUM_STEPS steps): SPS
#      and evaluation returns;
#   3. the LLM core on CUDA: the fused Adam step against the naive one (a hone-kernels test,
#      carried as target/release/hone-kernels-tests); in f32 and bf16, a seeded random
#      checkpoint of SmolLM2-135M's shape, made there by transformers (nothing is downloaded);
#      hone's logits and greedy tokens against transformers' on the same device and dtype
#      (llm_parity); prefill and generation tokens/s and one SFT step, hone (llm_speed) and
#      transformers (bench_llm.py) side by side.
#
#   bash scripts/gpu_check.sh --build            here: build what the check runs
#   bash scripts/gpu_check.sh [out_dir]          there (a machine with CUDA)
#   GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh /tmp/gpu-dry-run    a dry run on the CPU
#
# Python: $GPU_CHECK_PYTHON, else python3 if it imports torch and transformers, else the
# project's HONE_PYTHON. Each step has a time limit (STEP_LIMIT seconds, default 240), and a
# failed step does not stop the others; the exit status says whether any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = "--build" ]; then
  set -e
  cargo build --release -p hone --bin hone --bin hone-core
  cargo build --release -p hone-rlhf --example llm_parity --example llm_speed
  # carry_tests NAME CARGO_TEST_ARGS...: builds a test binary and copies it to
  # target/release/NAME, a fixed name to carry.
  carry_tests() {
    local name=$1
    shift
    cp "$(cargo test --release "$@" --no-run 2>&1 | sed -n 's/.*Executable .* (\(.*\))$/\1/p')" \
      "target/release/$name"
  }
  # The trainer's unit tests (the PPO gradient check on CUDA) and the kernels' tests (the fused
  # Adam step of the LLM optimiser on CUDA).
  carry_tests hone-trainer-tests -p hone-trainer --lib
  carry_tests hone-kernels-tests -p hone-kernels --test tests
  exit 0
fi

device=${GPU_CHECK_DEVICE:-cuda}
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
limit=${STEP_LIMIT:-240}
pendulum_steps=${PENDULUM_STEPS:-200000}

python=${GPU_CHECK_PYTHON:-}
if [ -z "$python" ]; then
  if python3 -c 'import torch, transformers' 2>/dev/null; then
    python=python3
  else
    python=$(sed -n 's/^HONE_PYTHON = "\(.*\)"$/\1/p' .cargo/config.toml)
  fi
fi
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
  echo "gpu_check: $python cannot import torch" >&2
  exit 1
}
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for binary in target/release/hone target/release/hone-core target/release/examples/llm_parity \
  target/release/examples/llm_speed target/release/hone-trainer-tests \
  target/release/hone-kernels-tests; do
  [ -x "$binary" ] || { echo "gpu_check: $binary is missing: run scripts/gpu_check.sh --build" >&2; exit 1; }
done

failed=0
# step NAME COMMAND...: runs COMMAND with the time limit, its output to the screen and
# $out/NAME.log, and its wall time.
step() {
  local name=$1
  shift
  printf '\n== %s: %s\n' "$name" "$*"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local status=${PIPESTATUS[0]}
  printf '== %s: exit %s after %s s\n' "$name" "$status" "$((SECONDS - start))"
  [ "$status" -eq 0 ] || failed=1
}

echo "gpu_check: device $device, python $python (torch $("$python" -c 'import torch; print(torch.__version__)')), out $out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step doctor target/release/hone doctor

# Issue 5: PPO on the device: its written-out gradient against autograd's there, then training.
if [ "$device" = cuda ]; then
  step ppo_gradient target/release/hone-trainer-tests --ignored --exact \
    ppo::loss::tests::the_written_out_gradient_equals_autograds_on_cuda
fi
step ppo_cartpole target/release/hone train --env CartPole-v1 --config configs/ppo_cartpole_fast.toml \
  --device "$device" --no-tui --runs-dir "$out/runs" --name cartpole
step ppo_pendulum target/release/hone train --env Pendulum-v1 --config configs/ppo_pendulum.toml \
  --device "$device" --total-steps "$pendulum_steps" --no-tui --runs-dir "$out/runs" --name pendulum

# Issue 7: the fused Adam step of the LLM optimiser on CUDA, then parity with transformers and
# speed, f32 and bf16.
if [ "$device" = cuda ]; then
  step adam_cuda target/release/hone-kernels-tests --ignored --exact \
    adam::the_fused_step_matches_the_naive_adam_on_cuda
fi
model="$out/smollm2-shaped"
step make_model "$python" scripts/llm_reference.py smollm2-shaped "$model"
for dtype in f32 bf16; do
  step "reference_$dtype" "$python" scripts/llm_reference.py device-reference "$model" "$device" "$dtype" \
    "$out/reference_$dtype.safetensors"
  step "parity_$dtype" target/release/examples/llm_parity "$model" "$out/reference_$dtype.safetensors" \
    --device "$device" --dtype "$dtype"
  step "speed_hone_$dtype" target/release/examples/llm_speed "$model" 1 --device "$device" --dtype "$dtype"
  step "speed_transformers_$dtype" "$python" scripts/bench_llm.py "$model" 1 --device "$device" --dtype "$dtype"
done
# The size of bf16's own error: hone in bf16 against transformers in f32.
step parity_bf16_vs_f32 target/release/examples/llm_parity "$model" "$out/reference_f32.safetensors" \
  --device "$device" --dtype bf16

printf '\n== summary (%s)\n' "$device"
for run in cartpole pendulum; do
  [ -f "$out/ppo_$run.log" ] || continue
  printf '%s: %s\n  %s\n' "$run" "$(grep "sps" "$out/ppo_$run.log" | tail -1)" "$(grep "evaluation:" "$out/ppo_$run.log")"
done
"$python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def lines(name):
    path = os.path.join(out, name + ".log")
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.startswith("{")]
for name, against in (("parity_f32", "f32"), ("parity_bf16", "bf16"), ("parity_bf16_vs_f32", "f32")):
    for parity in lines(name):
        print(f"hone {parity['placement']} against transformers {against}: max relative logit error "
              f"{parity['max_relative_logit_error']:.2e}, greedy tokens agreeing per row "
              f"{parity['greedy_agree_per_row']} of {parity['greedy_tokens']}")
for dtype in ("f32", "bf16"):
    hone = {(r["what"], r.get("batch"), r.get("cache")): r for r in lines(f"speed_hone_{dtype}")}
    hf = {(r["what"], r.get("batch"), r.get("cache")): r for r in lines(f"speed_transformers_{dtype}")}
    for key in hone:
        if key not in hf:
            continue
        what, batch, cache = key
        a, b = hone[key], hf[key]
        if what == "sft_step":
            phases = lambda r: "/".join(f"{r.get(p, float('nan')):.3f}" for p in ("forward", "backward", "update"))
            print(f"{dtype} SFT step 8x256 (f32): hone {a['seconds']:.3f} s, transformers {b['seconds']:.3f} s; "
                  f"forward/backward/update hone {phases(a)}, transformers {phases(b)}")
        else:
            label = what + f" b={batch}" + ("" if cache is None else (" cache" if cache else " no cache"))
            print(f"{dtype} {label}: hone {a['tokens_per_s']:.0f} tok/s, transformers {b['tokens_per_s']:.0f} tok/s, "
                  f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x")
PY
exit "$failed"
