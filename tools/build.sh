#!/usr/bin/env bash
# tools/build.sh [build-dir] — configure and build wastenet (CPU-only when no CUDA toolkit).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DWN_PYTHON="$PWD/.venv/bin/python" >/dev/null
cmake --build "$dir" -j "$(nproc)"
