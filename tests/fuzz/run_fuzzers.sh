#!/usr/bin/env bash
# tests/fuzz/run_fuzzers.sh [seconds] — build the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) in their own build folder and run each for a
# bounded time.
#
#   tests/fuzz/run_fuzzers.sh            60 s per target (WN_FUZZ_SECONDS overrides)
#   tests/fuzz/run_fuzzers.sh 600        a longer session
#
# Targets (tests/fuzz/fuzz_<name>.c), each with its seed corpus tests/fuzz/corpus/<name>/:
#   image_decode  host/image_decode.c (+ resize): JPEG/PNG/anything -> RGB
#   h5_keras      host/h5_keras.c: any file -> the Keras weight index and float32 reads
# The committed corpus is copied to <build>/corpus/<name>/ and the fuzzer grows that
# copy, so a run never edits the repository. An input that crashes, leaks, hits
# undefined behaviour or times out is saved as <build>/artifacts/<name>/crash-*
# (leak-*, timeout-*, oom-*) and the script exits 1: fix the bug, then commit the input
# to tests/fuzz/corpus/<name>/ so ctest replays it forever (tests/fuzz/CMakeLists.txt).
#
# Environment:
#   WN_FUZZ_SECONDS   time per target (default 60)
#   WN_FUZZ_BUILD     build folder (default build-fuzz)
#   WN_FUZZ_PARALLEL  1 (default when there are >= 2 cores): targets run side by side
#   WN_FUZZ_TARGETS   which targets (default: "image_decode h5_keras")
#   CC                the compiler (default clang); libFuzzer ships with Debian's clang
#                     packages: apt-get install clang libclang-rt-dev
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-${WN_FUZZ_SECONDS:-60}}
build=${WN_FUZZ_BUILD:-build-fuzz}
targets=${WN_FUZZ_TARGETS:-image_decode h5_keras}
parallel=${WN_FUZZ_PARALLEL:-$([ "$(nproc)" -ge 2 ] && echo 1 || echo 0)}
cc=${CC:-clang}

if ! command -v "$cc" >/dev/null; then
  echo "run_fuzzers: $cc not found; install it with: sudo apt-get install clang libclang-rt-dev" >&2
  exit 1
fi
for pc in libturbojpeg libpng hdf5; do
  pkg-config --exists "$pc" || {
    echo "run_fuzzers: pkg-config cannot find $pc (tools/setup.sh installs the -dev packages)" >&2
    exit 1
  }
done

mkdir -p "$build"
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I. $(pkg-config --cflags libturbojpeg libpng hdf5))
libs=($(pkg-config --libs libturbojpeg libpng hdf5) -lm -lpthread)

sources_image_decode=(host/image_decode.c host/regular_file.c host/resize.c host/base/error.c)
sources_h5_keras=(host/h5_keras.c host/base/atomic_file.c host/regular_file.c host/isolate.c host/base/error.c)

build_start=$(date +%s)
for t in $targets; do
  src_var="sources_${t}[@]"
  # A smoke test of the toolchain first gives a clear message when libFuzzer is missing.
  if ! "$cc" "${flags[@]}" -o "$build/fuzz_$t" "tests/fuzz/fuzz_$t.c" "${!src_var}" "${libs[@]}" \
       2>"$build/build_$t.log"; then
    cat "$build/build_$t.log" >&2
    if grep -q "libclang_rt.fuzzer" "$build/build_$t.log"; then
      echo "run_fuzzers: libFuzzer is missing: sudo apt-get install libclang-rt-dev" >&2
    fi
    echo "run_fuzzers: building fuzz_$t failed" >&2
    exit 1
  fi
done
build_end=$(date +%s)

# Sanitizer settings of a target (the fuzz runs and the triage replays use the same):
# allocations over 2 GB fail like a real allocator would (libraries must cope with
# NULL) instead of being reported; leak suppressions per target (tests/fuzz/<t>.supp,
# leaks inside a system library on corrupt input) need whole stacks, hence the slow
# unwinder where a suppression file exists.
san_env() {
  local t=$1 asan="detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=2048"
  local lsan=""
  if [ -f "tests/fuzz/$t.supp" ]; then
    asan="$asan:fast_unwind_on_malloc=0"
    lsan="suppressions=$PWD/tests/fuzz/$t.supp"
  fi
  echo "ASAN_OPTIONS=$asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "LSAN_OPTIONS=$lsan" \
       "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
}

# Run one target for $seconds: corpus copy, fork mode so that one finding does not end
# the session (every crash, leak, timeout and out-of-memory is saved and fuzzing goes
# on), the log in <build>/fuzz_<t>.log.
run_one() {
  local t=$1
  local corpus="$build/corpus/$t" artifacts="$build/artifacts/$t/"
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  local dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -timeout: one input taking 3 s is a bug (valid inputs take < 0.1 s; what exceeds
  # it is a loop that never ends, and a longer limit only burns the time budget);
  # -rss_limit_mb: the decoder is limited to 4 Mpx (12 MB), the reader to 4 MB reads.
  env $(san_env "$t") \
    "$build/fuzz_$t" "$corpus" tests/fuzz/corpus/"$t" "${dict[@]}" \
      -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -max_total_time="$seconds" -timeout=3 -rss_limit_mb=2048 -malloc_limit_mb=4096 \
      -max_len=32768 -artifact_prefix="$artifacts" >"$build/fuzz_$t.log" 2>&1
}

# Where a saved input fails: replays it alone and prints "<kind>|<site>", the site
# being the first stack frame that is neither the sanitizer/libFuzzer runtime nor
# libc: "wastenet <function> <file:line>" for our code, "<library> <function>" else.
triage() {
  local t=$1 input=$2 out
  out=$(env $(san_env "$t") timeout -s INT 60 "$build/fuzz_$t" -timeout=3 -rss_limit_mb=2048 \
        -malloc_limit_mb=4096 "$input" 2>&1 || true)
  local kind
  kind=$(echo "$out" | grep -m1 -oE "ERROR: (AddressSanitizer|LeakSanitizer): [A-Za-z-]+|runtime error: [a-z -]+|libFuzzer: (timeout|out-of-memory)[a-z -]*|contract violated: [^(]*" || true)
  [ -n "$kind" ] || kind="does not reproduce alone"
  local site
  site=$(echo "$out" | grep -E "^ +#[0-9]+ 0x" |
         grep -vE " in (__sanitizer|__asan|__lsan|__ubsan|__interceptor|fuzzer::|malloc|calloc|realloc|free|memcpy|memmove|memset|strlen|strdup|operator)|libc\.so|/libFuzzer|^ +#[0-9]+ 0x[0-9a-f]+ +\(" |
         head -1 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //; s/ \(BuildId.*//' || true)
  if echo "$site" | grep -q "$PWD/"; then
    site="wastenet ${site/$PWD\//}"
  elif [ -n "$site" ]; then
    site=$(echo "$site" | sed -E 's#^([^ ]+) \(.*/([^/+]+)\+0x[0-9a-f]+\)#\2 \1#')
  else
    site="unknown"
  fi
  echo "$kind|$site"
}

declare -A status
if [ "$parallel" = 1 ]; then
  declare -A pids
  for t in $targets; do run_one "$t" & pids[$t]=$!; done
  for t in $targets; do
    if wait "${pids[$t]}"; then status[$t]=0; else status[$t]=$?; fi
  done
else
  for t in $targets; do
    if run_one "$t"; then status[$t]=0; else status[$t]=$?; fi
  done
fi
end=$(date +%s)

# Findings: each saved input triaged; those whose site is wastenet's code fail the run.
# Those inside a system library (HDF5, libpng, libjpeg-turbo) are upstream bugs that
# wastenet cannot fix: listed, counted per site, not failing (docs/RELIABILITY.md).
failed=0
printf '%-14s %8s %12s %8s %8s  %s\n' target seconds executions exec/s corpus findings
declare -A report
for t in $targets; do
  log="$build/fuzz_$t.log"
  last=$(grep -E "^#[0-9]+: cov:" "$log" | tail -1)
  execs=$(echo "$last" | sed -nE 's/^#([0-9]+):.*/\1/p')
  speed=$(( ${execs:-0} / seconds ))
  corpus=$(ls "$build/corpus/$t" | wc -l)
  ours=0 upstream=0 lines=""
  for a in "$build/artifacts/$t"/*; do
    [ -e "$a" ] || continue
    r=$(triage "$t" "$a")
    if [[ "${r#*|}" == wastenet* ]]; then ours=$((ours + 1)); else upstream=$((upstream + 1)); fi
    lines+="$(basename "$a")  ${r%%|*}  at ${r#*|}"$'\n'
  done
  if [ "${status[$t]}" != 0 ] && ! grep -q "INFO: exiting: 0\|fuzzed for" "$log"; then
    result="FAILED: fuzzer status ${status[$t]} (see $log)"
    failed=1
  elif [ "$ours" -gt 0 ]; then
    result="FAILED: $ours in wastenet's code, $upstream upstream"
    failed=1
  else
    result="none in wastenet's code; $upstream upstream"
  fi
  report[$t]=$lines
  printf '%-14s %8s %12s %8s %8s  %s\n' "$t" "$seconds" "${execs:-?}" "${speed:-?}" "$corpus" "$result"
done
for t in $targets; do
  [ -n "${report[$t]}" ] || continue
  echo "---- $t findings (input, kind, site); inputs in $build/artifacts/$t/"
  printf '%s' "${report[$t]}" | sort -k2 | awk '{site=$0; sub(/^[^ ]+  /, "", site); n[site]++; if (!(site in first)) first[site]=$1} END {for (s in n) printf "  %3d x %s   (e.g. %s)\n", n[s], s, first[s]}' | sort -rn
done
echo "run_fuzzers: build $((build_end - build_start)) s, fuzzing $((end - build_end)) s" \
     "($([ "$parallel" = 1 ] && echo "targets in parallel" || echo "one target at a time"))"
exit $failed
