#!/usr/bin/env bash
# Builds the Python module hone_envs (envs/python, an abi3 wheel made by maturin) and installs it
# into hone's Python environment, the one scripts/setup.sh makes, together with the pinned
# gymnasium, pytest and maturin its tests need (and OpenCV, for hone-envs' image tests).
# Idempotent, and a second or so when nothing changed: a fingerprint of the sources the wheel is
# built from is kept in the environment.
#
#   HONE_CACHE   cache folder (default ~/.cache/hone), as for scripts/setup.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${HONE_CACHE:-$HOME/.cache/hone}
venv=$cache/python-torch-2.11.0
python=$venv/bin/python
# The same pins as scripts/setup.sh, and OpenCV: the reference of hone-envs' image tests
# (envs/tests/image.rs), the OpenCV 4.13.0 that envpool builds its INTER_AREA resize against.
requirements=("gymnasium==1.4.0" "pytest==9.2.0" "maturin==1.16.0"
  "opencv-python-headless==4.13.0.92")

log() { printf 'setup_python: %s\n' "$*" >&2; }
die() { printf 'setup_python: error: %s\n' "$*" >&2; exit 1; }

[ -x "$python" ] || die "no Python environment at $venv: run scripts/setup.sh first"
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"

# One of these at a time. Not scripts/setup.sh's lock: setup.sh may run this script while it
# holds that one.
exec 8>"$cache/.lock-hone-envs"
flock 8

missing=$("$python" - "${requirements[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for requirement in sys.argv[1:]:
    name, wanted = requirement.split("==")
    try:
        if version(name) != wanted:
            print(requirement)
    except PackageNotFoundError:
        print(requirement)
PY
)
if [ -n "$missing" ]; then
  log "installing $(echo $missing) into $venv"
  # shellcheck disable=SC2086 # one requirement per word
  "$python" -m pip install --quiet --disable-pip-version-check $missing || die "pip could not install $missing"
fi

# What the wheel is built from: the engine (its build script too), the binding, the workspace
# manifest and lock, the library paths set-up wrote (.cargo/config.toml), this script (the build
# command) and the compiler.
cd "$root"
sources=(envs/Cargo.toml envs/build.rs envs/src envs/python/Cargo.toml envs/python/build.rs
  envs/python/pyproject.toml
  envs/python/README.md envs/python/src envs/python/python Cargo.toml Cargo.lock
  .cargo/config.toml scripts/setup_python.sh)
fingerprint=$({ find "${sources[@]}" -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; rustc -V; } \
  | sha256sum | cut -d' ' -f1)
marker=$venv/.hone-envs-fingerprint
if [ "$(cat "$marker" 2>/dev/null)" = "$fingerprint" ] && "$python" -c 'import hone_envs' 2>/dev/null; then
  exit 0
fi

log "building the hone_envs wheel (release)"
rm -f "$marker"
# Its own target folder, so that a workspace build and a wheel build do not keep rebuilding pyo3
# for each other (maturin configures it for the environment's interpreter).
target=${CARGO_TARGET_DIR:-$root/target}/python
wheels=$target/wheels
rm -rf "$wheels"
# With the MuJoCo tasks: scripts/setup.sh has installed the mujoco wheel and written the paths of
# its library, headers and gymnasium's model files into .cargo/config.toml. The module finds the
# library there through an rpath (envs/python/build.rs), so the wheel is for this environment:
# maturin's manylinux repair, which would copy the library in, is skipped.
"$venv/bin/maturin" build --quiet --release -m envs/python/Cargo.toml -i "$python" \
  --features mujoco --auditwheel skip --target-dir "$target" --out "$wheels" \
  || die "maturin could not build the wheel"
wheel=$(find "$wheels" -name 'hone_envs-*.whl' | head -n 1)
[ -n "$wheel" ] || die "maturin built no wheel in $wheels"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel" \
  || die "pip could not install $wheel"
"$python" -c 'import hone_envs' || die "hone_envs does not import after installing $wheel"
printf '%s' "$fingerprint" >"$marker"
log "installed $(basename "$wheel")"
