#!/usr/bin/env bash
# tools/ci_sanitize.sh [build-dir] [ctest args...] — the CPU test suite under
# AddressSanitizer + UndefinedBehaviorSanitizer with LeakSanitizer on.
#
# A separate build folder (default build-sanitize) configured with -DWN_SANITIZE=ON
# (CMakeLists.txt: -fsanitize=address,undefined, UB is fatal) and -DWN_WITH_CUDA=OFF,
# then ctest with ASAN_OPTIONS=detect_leaks=1. Every error report makes the test
# fail: ASan, UBSan (-fno-sanitize-recover) and LSan all exit non-zero.
#
# Excluded, by label only (WN_SANITIZE_EXCLUDE overrides the regular expression):
#   keras   TensorFlow/tf-keras parity tests: they spend minutes inside TensorFlow,
#           which is not instrumented, to check numbers the C tests already check;
#   e2e     whole training runs (minutes under ASan; the reliability suite runs the
#           same binary through every fault and bad input quickly);
#   long    whole-backbone runs (InceptionResNetV2 forward/backward: 10x slower);
#   gpu     needs a GPU (skips anyway; excluded so the log says so once).
# Everything else runs, including Python scripts that drive the instrumented binaries
# (the Python interpreter itself is not instrumented, the programs it starts are).
#
# Environment: WN_SANITIZE_JOBS (default: nproc) build and test parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-sanitize}
shift || true
jobs=${WN_SANITIZE_JOBS:-$(nproc)}
exclude=${WN_SANITIZE_EXCLUDE:-keras|e2e|long|gpu}

start=$(date +%s)
python=${WN_PYTHON:-$PWD/.venv/bin/python}
[ -x "$python" ] || python=$(command -v python3)
# RelWithDebInfo: -O2 keeps the suite fast, -g gives reports with file:line.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWN_SANITIZE=ON -DWN_WITH_CUDA=OFF \
      -DWN_PYTHON="$python" >/dev/null
cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1 || {
  tail -40 "$dir/build.log"
  echo "ci_sanitize: build failed (full log: $dir/build.log)" >&2
  exit 1
}
built=$(date +%s)

# detect_leaks: LeakSanitizer at exit. abort_on_error=0 + exitcode: a report is a
# failure with a normal exit status (no core dumps). The suppression file lists leaks
# inside third-party libraries we cannot fix (each with its reason).
supp="$PWD/tools/lsan.supp"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# oneDNN's JIT and OpenMP threads are fine under ASan; one OpenMP thread per test keeps
# the parallel ctest from oversubscribing the machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

status=0
(cd "$dir" && ctest --output-on-failure -j "$jobs" -LE "$exclude" "$@") || status=$?
end=$(date +%s)
echo "ci_sanitize: build $((built - start)) s, tests $((end - built)) s" \
     "(ASan+UBSan+LSan, labels excluded: $exclude)"
exit $status
