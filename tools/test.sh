#!/usr/bin/env bash
# tools/test.sh — the README's test command: set up, build, and run every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
tools/build.sh build
cd build && ctest --output-on-failure -j "$(nproc)" "$@"
