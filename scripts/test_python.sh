#!/usr/bin/env bash
# The pytest suite of the Python module hone_envs (envs/python/tests), in hone's Python
# environment, after building and installing the module if its sources changed. Arguments go to
# pytest, e.g. `bash scripts/test_python.sh -k async -x`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${HONE_CACHE:-$HOME/.cache/hone}

bash "$root/scripts/setup_python.sh"
cd "$root/envs/python"
# Run from the package folder: the tests import the installed hone_envs (there is no hone_envs in
# this folder's path, only python/hone_envs), and pytest's rootdir is envs/python.
exec "$cache/python-torch-2.11.0/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
