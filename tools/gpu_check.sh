#!/usr/bin/env bash
# tools/gpu_check.sh — every GPU check in one command, for a lent GPU machine:
#   1. the card, driver and toolkit;
#   2. binaries: the prebuilt .gpu_bundle/ when carried (tools/gpu_bundle.sh, for
#      machines without wastenet's Debian libraries), else configure and build here
#      for this card (CMAKE_CUDA_ARCHITECTURES=native);
#   3. the GPU parity suite (tests/gpu: every backend op, CPU vs CUDA, TF32 and FP32),
#      and the whole-model parity test when it is built;
#   4. compute-sanitizer memcheck (every buffer its own allocation, a sync after each
#      op) and racecheck on the quick parity set and the model test's training step;
#   5. benchmarks: `wastenet bench` (fine-tune-at none, 500, all; IRV2 320x320,
#      batch 64) when this build has it, and tools/bench_torch.py (timm, same config);
#   6. a short table, printed last.
# Full logs are written to /tmp/wn_gpu_check; when $OUT is set (the device tool's
# folder, which returns at most 8 files) they are packed into $OUT/gpu_check_logs.tar.gz
# beside $OUT/summary.txt. Every step has its own time limit so that the whole run
# stays well inside 10 minutes.
# Usage: tools/gpu_check.sh [--quick]   (--quick: parity + sanitizers only)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
log=/tmp/wn_gpu_check
rm -rf "$log"
mkdir -p "$log"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
t0=$(date +%s)
rows=()
row() { rows+=("$(printf '%-30s %-6s %s' "$1" "$2" "$3")"); }
elapsed() { echo $(($(date +%s) - t0)); }

# ---------------------------------------------------------------- 1. the machine
{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    nvcc --version 2>&1 | tail -2
    echo "commit $(git rev-parse HEAD 2>/dev/null) $(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo dirty)"
} >"$log/device.txt"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
row "device" "info" "${card:-no nvidia-smi}"

# ---------------------------------------------------------------- 2. binaries
bin=""
if [ -x .gpu_bundle/bin/test_gpu_ops ]; then
    mkdir -p /tmp/wn_bundle
    tar -xJf .gpu_bundle/libs.tar.xz -C /tmp/wn_bundle
    bundle_lib=/tmp/wn_bundle/lib # for our binaries only (wn_run): python3 keeps its own
    bin=$root/.gpu_bundle/bin
    row "build" "info" "prebuilt bundle from $(head -c 12 .gpu_bundle/commit) (sm_90)"
else
    if timeout 300 bash -c "cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CUDA_ARCHITECTURES=native && cmake --build build-gpu -j $(nproc)" \
            >"$log/build.log" 2>&1; then
        bin=$root/build-gpu
        row "build" "ok" "native architecture, $(grep -c 'warning' "$log/build.log") warnings"
    else
        row "build" "FAIL" "see build.log (wastenet's Debian libraries missing? use tools/gpu_bundle.sh)"
    fi
fi
find_bin() { find "$bin" -type f -name "$1" -perm -u+x 2>/dev/null | head -1; }
bundle_lib=${bundle_lib:-}
# Runs one of our binaries (or a tool wrapping one) with the bundle's libraries.
wn_run() {
    if [ -n "$bundle_lib" ]; then
        LD_LIBRARY_PATH="$bundle_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
    else
        "$@"
    fi
}

# cuDNN/cuBLAS from the Python wheels when the system has none
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn.so.9'; then
    for d in $(python3 - <<'EOF' 2>/dev/null
import glob, os, site
for base in site.getsitepackages():
    for lib in glob.glob(os.path.join(base, "nvidia", "*", "lib")):
        print(lib)
EOF
    ); do LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
    export LD_LIBRARY_PATH
fi

# ---------------------------------------------------------------- 3. parity
run_parity() { # name, log file, binary, args...
    local name=$1 file=$2 exe=$3
    shift 3
    if [ -z "$exe" ]; then
        row "$name" "n/a" "not built"
        return
    fi
    wn_run timeout "${LIMIT:-240}" "$exe" "$@" >"$log/$file" 2>&1
    local rc=$?
    local summary
    summary=$(grep -E 'comparisons|passed|failed' "$log/$file" | tail -1)
    case $rc in
    0) row "$name" "ok" "$summary" ;;
    77) row "$name" "SKIP" "$(tail -1 "$log/$file")" ;;
    124) row "$name" "FAIL" "timed out (${LIMIT:-240} s)" ;;
    *) row "$name" "FAIL" "rc $rc: $(grep -m1 FAIL "$log/$file" || tail -1 "$log/$file")" ;;
    esac
}
if [ -n "$bin" ]; then
    ops=$(find_bin test_gpu_ops)
    model=$(find_bin test_gpu_model)
    LIMIT=240 run_parity "parity: ops" parity_ops.log "$ops"
    LIMIT=180 run_parity "parity: model + train step" parity_model.log "$model"

    # ------------------------------------------------------------ 4. sanitizers
    [ -x /usr/local/cuda/bin/compute-sanitizer ] && PATH="$PATH:/usr/local/cuda/bin"
    if command -v compute-sanitizer >/dev/null; then
        san() { # name, file, tool, exe, args
            local name=$1 file=$2 tool=$3 exe=$4
            shift 4
            [ -n "$exe" ] || { row "$name" "n/a" "not built"; return; }
            wn_run env WN_CUDA_NO_ARENA=1 WN_CUDA_SYNC=1 timeout 240 compute-sanitizer --tool "$tool" \
                --error-exitcode 99 --print-limit 20 "$exe" "$@" >"$log/$file" 2>&1
            local rc=$?
            local errs
            errs=$(grep -Eo 'ERROR SUMMARY: [0-9]+ error' "$log/$file" | tail -1)
            case $rc in
            0) row "$name" "ok" "${errs:-no errors}" ;;
            77) row "$name" "SKIP" "no GPU" ;;
            124) row "$name" "FAIL" "timed out (240 s)" ;;
            *) row "$name" "FAIL" "rc $rc, ${errs:-see $file}" ;;
            esac
        }
        san "memcheck: ops (quick)" sanitizer_memcheck_ops.log memcheck "$ops" --quick
        san "racecheck: ops (quick)" sanitizer_racecheck_ops.log racecheck "$ops" --quick
        san "memcheck: model + step" sanitizer_memcheck_model.log memcheck "$model" --quick
    else
        row "sanitizers" "n/a" "compute-sanitizer not on PATH"
    fi

    # ------------------------------------------------------------ 5. benchmarks
    wn=$(find_bin wastenet)
    if [ "$quick" = 0 ] && [ -n "$wn" ]; then
        if wn_run "$wn" --help 2>&1 | grep -qE '^ +bench +'; then
            for ft in none 500 all; do
                wn_run timeout 180 "$wn" bench --backend cuda --model irv2 --image-size 320 --batch 64 \
                    --fine-tune-at "$ft" >"$log/bench_wastenet_$ft.log" 2>&1
                rc=$?
                line=$(grep -v '^\s*$' "$log/bench_wastenet_$ft.log" | tail -1)
                if [ $rc = 0 ]; then
                    row "bench wastenet ft=$ft" "ok" "$line"
                else
                    row "bench wastenet ft=$ft" "FAIL" "rc $rc: $line"
                fi
            done
        else
            row "bench wastenet" "n/a" "this build has no 'wastenet bench' command yet"
        fi
    fi
fi
if [ "$quick" = 0 ]; then
    if python3 -c 'import torch, timm' 2>/dev/null; then
        PYTHONUNBUFFERED=1 timeout 240 python3 tools/bench_torch.py --batch 64 --image-size 320 \
            --steps 30 --fine-tune-at 500 >"$log/bench_torch.log" 2>&1
        rc=$?
        while IFS= read -r l; do row "bench torch" "ok" "$l"; done < <(grep '^|' "$log/bench_torch.log" | tail -3)
        [ $rc = 0 ] || row "bench torch" "FAIL" "rc $rc: $(tail -1 "$log/bench_torch.log")"
    else
        row "bench torch" "n/a" "python3 has no torch/timm"
    fi
fi

# ---------------------------------------------------------------- 6. the table
{
    echo
    echo "wastenet GPU check — $(date -u +%Y-%m-%dT%H:%MZ), $(elapsed) s, logs in $log"
    printf '%-30s %-6s %s\n' "step" "status" "detail"
    for r in "${rows[@]}"; do echo "$r"; done
} | tee "$log/summary.txt"
if [ -n "${OUT:-}" ]; then
    tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$(dirname "$log")" "$(basename "$log")"
    cp "$log/summary.txt" "$OUT/summary.txt"
fi
grep -q ' FAIL ' "$log/summary.txt" && exit 1
exit 0
