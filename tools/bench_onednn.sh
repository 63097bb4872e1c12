#!/usr/bin/env bash
# tools/bench_onednn.sh — the CPU backend with two oneDNN builds, side by side in one run:
# `wastenet bench-ops` (every distinct backbone convolution shape, forward and, from the
# boundary up, backward) and `wastenet bench` (the whole training step), alternating
# between the builds round by round so that a change of the machine's load falls on both.
#
#   tools/bench_onednn.sh [--rounds R] [--batch B] [--steps K] [--ops-batch B]
#                         [--out DIR] BUILD_A BUILD_B
#
# BUILD_A, BUILD_B: CMake build folders of this tree, e.g. one configured with the
# system's oneDNN 2.6.3 and one with -DWN_DNNL_ROOT=<PyPI oneDNN 3.x prefix>. Each
# build's oneDNN is read off its CMake cache and its binary's libdnnl (ldd).
# Writes every command's output under DIR (default runs/bench_onednn_<date>) and prints
# a Markdown table: per round, per build, the step's median wall seconds and the
# process's CPU seconds (from /usr/bin/time), and bench-ops's totals. A benchmark, not
# a test: numbers depend on the machine and its load; the load average is printed.
set -euo pipefail

rounds=2 batch=64 steps=3 ops_batch=64 size=320 fine_tune_at=500 out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --ops-batch) ops_batch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench_onednn.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -ne 2 ]]; then
  echo "bench_onednn.sh: expected two build folders (see --help)" >&2
  exit 2
fi
builds=("$1" "$2")
for b in "${builds[@]}"; do
  if [[ ! -x "$b/wastenet" ]]; then
    echo "bench_onednn.sh: $b/wastenet is missing: build it first (cmake --build $b)" >&2
    exit 2
  fi
done
out="${out:-runs/bench_onednn_$(date +%Y%m%d_%H%M%S)}"
mkdir -p "$out"
export OMP_WAIT_POLICY=passive

dnnl_of() { # "3.2.0 (/path/libdnnl.so.3)"
  local version lib
  version=$(sed -n 's/^WN_DNNL_VERSION:INTERNAL=//p' "$1/CMakeCache.txt" 2>/dev/null || true)
  lib=$(ldd "$1/wastenet" | awk '/libdnnl/ {print $3}')
  echo "${version:-?} ($lib)"
}

echo "# oneDNN side by side: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs," \
     "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ)"
for i in 0 1; do echo "build ${i}: ${builds[$i]}: oneDNN $(dnnl_of "${builds[$i]}")"; done
echo
echo "| round | build | oneDNN | step median s (min-max) | step median CPU s | bench-ops: conv fwd s | conv bwd s | total s | bench-ops process CPU s | load avg before |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for ((r = 1; r <= rounds; r++)); do
  for i in 0 1; do
    b="${builds[$i]}"
    tag="r${r}_b${i}"
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%U %S %e %M" -o "$out/$tag.ops.time" \
      "$b/wastenet" bench-ops --batch "$ops_batch" --image-size "$size" \
      --fine-tune-at "$fine_tune_at" --repeat 3 --verbose > "$out/$tag.ops.txt" 2>&1
    /usr/bin/time -f "%U %S %e %M" -o "$out/$tag.bench.time" \
      "$b/wastenet" bench --backend cpu --model irv2 --image-size "$size" --batch "$batch" \
      --fine-tune-at "$fine_tune_at" --steps "$steps" --warmup 1 > "$out/$tag.bench.txt" 2>&1
    med=$(sed -n 's/.*median step *\([0-9.]*\) s over .*(min \([0-9.]*\), max \([0-9.]*\)).*/\1 (\2-\3)/p' "$out/$tag.bench.txt")
    cpu=$(sed -n 's/.*median step CPU *\([0-9.]*\) s.*/\1/p' "$out/$tag.bench.txt")
    ops_cpu=$(awk '{printf "%.1f", $1 + $2}' "$out/$tag.ops.time")
    fwd=$(sed -n 's/.*conv forward *\([0-9.]*\) s.*/\1/p' "$out/$tag.ops.txt")
    bwd=$(sed -n 's/.*conv backward (d + f) *\([0-9.]*\) s.*/\1/p' "$out/$tag.ops.txt")
    tot=$(sed -n 's/.*total *\([0-9.]*\) s per step.*/\1/p' "$out/$tag.ops.txt")
    echo "| $r | $i | $(dnnl_of "$b" | cut -d' ' -f1) | $med | $cpu | $fwd | $bwd | $tot | $ops_cpu | $load |"
  done
done
echo
echo "(step median CPU s: the process's CPU time per step, all threads, which a shared"
echo " machine's load does not inflate the way it does the wall time; bench-ops process"
echo " CPU s: user+system CPU of the whole bench-ops run. Outputs: $out)"
