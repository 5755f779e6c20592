#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (seconds once cached), formatting, clippy (warnings
# fail), then every test. One profile (release) for all of it, so the workspace is built once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (release, all targets, warnings are errors)"
cargo clippy --release --workspace --all-targets --quiet -- -D warnings
step "cargo test (release)"
cargo test --release --workspace
# The MuJoCo environments and the Atari emulator are behind hone-envs' `mujoco` and `atari`
# features (native libraries); lint and test them too, both in one build (this rebuilds hone-envs
# alone with the features, about a minute).
step "cargo clippy + test, hone-envs with the mujoco and atari features; hone-trainer's resume test with mujoco"
cargo clippy --release -p hone-envs --features mujoco,atari --all-targets --quiet -- -D warnings
cargo test --release -p hone-envs --features mujoco,atari
# Checkpoint resume is bit-exact for MuJoCo tasks too (HalfCheetah, Hopper): hone-trainer's resume
# test with the feature (rebuilds hone-trainer's test binary with it, about 20 s; runs in ~1 s).
cargo test --release -p hone-trainer --features mujoco resum
step "pytest: the Python module hone_envs (envs/python/tests)"
bash scripts/test_python.sh
