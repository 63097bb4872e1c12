#!/usr/bin/env bash
# tools/test.sh — the README's test command: set up, build, run every test (ctest),
# then the sanitizer suite and the fuzzers. Extra arguments go to the first ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
tools/build.sh build
# Test programs link OpenMP directly (no re-exec as in `wastenet`): make them wait
# passively too, or parallel tests spinning against each other run 10-70x slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# 1. every test (CPU, Keras parity, GPU parity skipped without a GPU)
(cd build && ctest --output-on-failure -j "$(nproc)" "$@")
# 2. the CPU suite again under AddressSanitizer + UBSan + LeakSanitizer
tools/ci_sanitize.sh build-sanitize
# 3. the fuzzers, a bounded time each (WN_FUZZ_SECONDS, default 60)
tests/fuzz/run_fuzzers.sh
