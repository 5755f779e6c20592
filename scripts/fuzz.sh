#!/usr/bin/env bash
# cargo-fuzz over every target of fuzz/ (GGUF, safetensors, config.json, tokenizer.json, the run
# files of `hone train` and `hone rlhf`, prompt datasets, metrics.jsonl, PPO checkpoints), each
# for HONE_FUZZ_SECONDS (default 120) with AddressSanitizer. Needs nightly Rust (`rustup toolchain
# install nightly`); installs cargo-fuzz when missing. Seeds come from fuzz/corpus/<target>/ (kept
# in the repo); the inputs libFuzzer finds go to fuzz/target/corpus/<target>/, and a crash, an
# allocation over 1 GiB, more than 4 GiB resident or an input slower than 30 s is saved under
# fuzz/artifacts/<target>/ and fails the script. Usage: scripts/fuzz.sh [target...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${HONE_FUZZ_SECONDS:-120}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
for target in "${targets[@]}"; do
    found=fuzz/target/corpus/$target
    mkdir -p "$found"
    printf '\n== fuzz %s (%s s)\n' "$target" "$seconds"
    log=fuzz/target/$target.log
    # One thread for libtorch, as the tests run it.
    status=0
    OMP_NUM_THREADS=1 cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$found" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -malloc_limit_mb=1024 -rss_limit_mb=4096 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added))' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz $target failed (exit $status; log $log, inputs in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
