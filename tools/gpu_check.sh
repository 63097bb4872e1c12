#!/usr/bin/env bash
# tools/gpu_check.sh — every GPU check in ONE command of a lent GPU machine (at most
# 10 minutes a command there), most valuable first, with partial results that survive
# a kill:
#   libraries    every binary's shared libraries resolve (`ldd ... | grep 'not found'`)
#   environment  card, driver, toolkit, commit
#   selftest                `wastenet selftest --backend cuda`: every op, quick shapes,
#                           from the binary itself (seconds)
#   parity: ops             tests/gpu/test_gpu_ops (every backend op, TF32 and FP32)
#   parity: model fp32/tf32 tests/gpu/test_gpu_model (forward, one training step)
#                           (the ops step and the selftest include the bf16 ops and a
#                           small bf16 model; the whole-model bf16 step runs last)
#   nccl: all-reduce (1 rank) tests/gpu/test_gpu_allreduce: a communicator of one rank
#                           (no MPI, no launcher), 136 MB summed in place; the time
#                           it prints goes in the row
#   bench wastenet ft=500   `wastenet bench` IRV2 320x320 batch 64, --fine-tune-at 500
#   memcheck/racecheck      compute-sanitizer on the quick op set, cuDNN/cuBLAS's own
#                           kernels excluded (ours are what is checked, our depthwise
#                           kernels included: WN_CUDA_DEPTHWISE=own)
#   bench torch             tools/bench_torch.py (timm, the same step)
#   (full run only, if time is left: the convolution cases through our depthwise
#   fallback (WN_CUDA_DEPTHWISE=own), the model's staging sequence under memcheck,
#   the whole model's bf16 plan: test_gpu_model --precision bf16)
#
# Time: one global deadline (--deadline S, default 480 s; --quick: 180 s). Each step
# runs under `timeout` with min(its own limit, time left); a step that would start
# with too little time left is reported NOT RUN, one stopped by the deadline CUT.
# Results: each row is appended to $OUT/summary.txt (./gpu_check_out/ when $OUT is
# unset) the moment its step ends, a '# running: STEP' line before it starts (so a
# kill names the step it interrupted), and every step's output is appended to
# $OUT/steps.log while it is written. Three files in all (the device tool returns 8).
#
# Statuses: ok / info pass; FAIL; SKIP (a test exited 77, "no usable GPU") is a FAIL
# whenever nvidia-smi lists a GPU (a driver/runtime mismatch must not read as a pass);
# n/a (a tool is missing) is a FAIL too on a GPU machine, except in --rehearse (there
# n/a marks what only a GPU can run: bench torch, the NCCL row).
# Exit: 0 every row passed; 1 some FAIL; 77 no GPU listed (nothing was tested); 3 no
# FAIL but steps NOT RUN / CUT.
#
# Binaries: WN_GPU_BUNDLE (default .gpu_bundle/, from tools/gpu_bundle.sh: the lent
# machines lack wastenet's Debian libraries), else a native build here (slow).
# cuDNN/cuBLAS/NCCL come from the system or from python3's `nvidia` wheel packages
# (their __path__) or torch's lib folder.
#
# --rehearse: the same script end to end on a machine without a GPU: the CPU backend
# stands in for the GPU (the harnesses' --self-test), the sanitizer steps run the same
# binaries without compute-sanitizer, sizes are small, default deadline 90 s.
# tests/gpu/rehearsal.sh drives it in CI.
#
# Usage: tools/gpu_check.sh [--quick] [--deadline S] [--rehearse]
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; } # the header
quick=0 rehearse=0 deadline=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --rehearse) rehearse=1 ;;
    --deadline)
        deadline=${2:-}
        shift
        [[ "$deadline" =~ ^[0-9]+$ ]] || { echo "gpu_check: --deadline needs seconds, got '$deadline'" >&2; exit 2; }
        ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu_check: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$deadline" ]; then
    if [ $rehearse = 1 ]; then deadline=90; elif [ $quick = 1 ]; then deadline=180; else deadline=480; fi
fi

out=${OUT:-$root/gpu_check_out}
mkdir -p "$out" || { echo "gpu_check: cannot create $out" >&2; exit 1; }
summary=$out/summary.txt
steps_log=$out/steps.log
work=$(mktemp -d "${TMPDIR:-/tmp}/wn_gpu_check.XXXXXX") # binaries, libraries, step logs
: >"$summary"
: >"$steps_log"
t0=$(date +%s)
t_end=$((t0 + deadline))
fails=0 not_run=0 skips=0 current=""

# A GPU is present when nvidia-smi lists one; then a skip is a failure.
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
gpu_listed=0
[ -n "$card" ] && gpu_listed=1

row() { # step status detail: appended at once, never held back
    local status=$2
    case $status in
    FAIL) fails=$((fails + 1)) ;;
    "NOT RUN" | CUT) not_run=$((not_run + 1)) ;;
    SKIP | n/a)
        # strict: a real GPU is listed (SKIP and n/a fail), or the rehearsal's
        # stand-in "GPU" is there (SKIP fails; n/a marks what only a GPU can run)
        if { [ $gpu_listed = 1 ] && [ $rehearse = 0 ]; } || { [ "$status" = SKIP ] && [ $rehearse = 1 ]; }; then
            status=FAIL
            fails=$((fails + 1))
        elif [ "$status" = SKIP ]; then
            skips=$((skips + 1))
        fi
        ;;
    esac
    printf '%-28s %-8s %s\n' "$1" "$status" "$3" >>"$summary"
    printf '%-28s %-8s %s\n' "$1" "$status" "$3"
}
left() { echo $((t_end - $(date +%s))); }

{
    echo "# wastenet GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), deadline ${deadline} s$([ $quick = 1 ] && echo ', quick')$([ $rehearse = 1 ] && echo ', REHEARSAL (CPU stands in for the GPU)')"
    printf '%-28s %-8s %s\n' "# step" "status" "detail"
} >>"$summary"

# A kill that can be trapped still leaves the rows of the steps it did not reach.
on_signal() {
    [ -n "$current" ] && row "$current" CUT "killed by a signal"
    row "(the rest)" "NOT RUN" "killed by a signal after $(($(date +%s) - t0)) s"
    rm -rf "$work"
    exit 3
}
trap on_signal TERM INT HUP

# run_step NAME LIMIT MIN CMD... : runs CMD under min(LIMIT, time left), its output
# appended to steps.log as written and kept in $work/last.log for the caller, which
# reads $step_rc (124: stopped) and $step_cut (1: by the deadline). Returns 1 when
# the step was not started.
run_step() {
    local name=$1 limit=$2 min=$3
    shift 3
    local remaining
    remaining=$(left)
    step_cut=0
    [ $rehearse = 1 ] && min=1 # a scaled-down deadline: every step may start
    if [ "$remaining" -lt "$min" ]; then
        row "$name" "NOT RUN" "deadline: ${remaining} s left, needs ${min} s"
        return 1
    fi
    local t=$limit
    if [ "$remaining" -lt "$limit" ]; then t=$remaining step_cut=1; fi
    current=$name
    echo "# running: $name (limit ${t} s, $(($(date +%s) - t0)) s in)" >>"$summary"
    printf '\n===== %s: %s (limit %s s)\n' "$name" "$*" "$t" >>"$steps_log"
    local start
    start=$(date +%s)
    timeout -k 5 "$t" "$@" </dev/null 2>&1 | tee "$work/last.log" >>"$steps_log"
    step_rc=${PIPESTATUS[0]}
    step_s=$(($(date +%s) - start))
    echo "===== $name: exit $step_rc after ${step_s} s" >>"$steps_log"
    current=""
    [ "$step_rc" = 124 ] || [ "$step_rc" = 137 ] || step_cut=0
    return 0
}

# ---------------------------------------------------------------- binaries
bundle=${WN_GPU_BUNDLE:-$root/.gpu_bundle}
bin="" bundle_lib="" lib_note=""
extract() { # archive dest: tar+xz, else Python's tarfile (no xz binary needed)
    if tar -xJf "$1" -C "$2" 2>>"$steps_log"; then return 0; fi
    echo "gpu_check: tar -xJf failed; trying python3 tarfile" >>"$steps_log"
    python3 - "$1" "$2" <<'EOF' 2>>"$steps_log"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    t.extractall(sys.argv[2], filter="data") if hasattr(tarfile, "data_filter") else t.extractall(sys.argv[2])
EOF
}
if [ -d "$bundle/bin" ]; then
    # Copies with execute bits: permissions may not survive the transfer.
    mkdir -p "$work/bin" "$work/libs"
    cp "$bundle"/bin/* "$work/bin/" && chmod +x "$work"/bin/*
    bin=$work/bin
    if [ -f "$bundle/libs.tar.xz" ]; then
        if extract "$bundle/libs.tar.xz" "$work/libs"; then
            bundle_lib=$work/libs/lib
        else
            lib_note="the bundle's libs.tar.xz could not be extracted (tar and python3 tarfile failed)"
        fi
    else
        lib_note="the bundle has no libs.tar.xz"
    fi
    build_note="bundle $(head -c 12 "$bundle/commit" 2>/dev/null)$(grep -q dirty "$bundle/commit" 2>/dev/null && echo ' (dirty)')"
elif [ $rehearse = 1 ]; then
    echo "gpu_check: --rehearse needs a bundle ($bundle): run tools/gpu_bundle.sh first" >&2
    exit 2
else
    if run_step "build" 300 60 bash -c "cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CUDA_ARCHITECTURES=native && cmake --build build-gpu -j $(nproc) \
            --target wastenet test_gpu_ops test_gpu_model test_gpu_allreduce" && [ "$step_rc" = 0 ]; then
        bin=$root/build-gpu
        build_note="native build, $(grep -c warning "$work/last.log") warnings"
    else
        row "build" FAIL "rc ${step_rc:-?}: see steps.log (no bundle carried; Debian libraries missing? use tools/gpu_bundle.sh)"
    fi
fi
find_bin() { [ -n "$bin" ] && find "$bin" -type f -name "$1" -perm -u+x 2>/dev/null | head -1; }
ops=$(find_bin test_gpu_ops) model=$(find_bin test_gpu_model) wn=$(find_bin wastenet)
allreduce=$(find_bin test_gpu_allreduce)

# cuDNN/cuBLAS/NCCL: the system's, else the folders of python3's nvidia wheels (the
# namespace package's __path__, whatever the site layout) and torch's lib folder.
wheel_dirs=$(python3 - <<'EOF' 2>/dev/null
import os
dirs = []
try:
    import nvidia
    for base in nvidia.__path__:
        for top, _, files in os.walk(base):
            if any(f.startswith(("libcudnn", "libcublas", "libnccl", "libcudart", "libnvJitLink", "libnvrtc")) and ".so" in f for f in files):
                dirs.append(top)
except Exception:
    pass
try:
    import importlib.util
    spec = importlib.util.find_spec("torch")
    if spec and spec.origin:
        lib = os.path.join(os.path.dirname(spec.origin), "lib")
        if os.path.isdir(lib):
            dirs.append(lib)
except Exception:
    pass
print(":".join(dict.fromkeys(dirs)))
EOF
)
libpath=$bundle_lib
if [ -n "$wheel_dirs" ]; then libpath=${libpath:+$libpath:}$wheel_dirs; fi
# Our binaries run with this path; python3 keeps its own.
wn_env=(env "LD_LIBRARY_PATH=${libpath}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_WAIT_POLICY=passive)

# ---------------------------------------------------------------- libraries (first row)
if [ -z "$bin" ]; then
    row "libraries" FAIL "no binaries (see the build row)"
else
    missing=""
    for b in "$bin"/*; do
        [ -f "$b" ] && [ -x "$b" ] || continue
        m=$("${wn_env[@]}" ldd "$b" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
        [ -n "$m" ] && missing="$missing$(basename "$b"): $m; "
    done
    {
        echo "===== libraries: LD_LIBRARY_PATH=$libpath"
        for b in "$bin"/*; do echo "--- ldd $b"; "${wn_env[@]}" ldd "$b" 2>&1; done
    } >>"$steps_log"
    if [ -n "$missing" ] || [ -n "$lib_note" ]; then
        row "libraries" FAIL "${lib_note:+$lib_note; }${missing:+not found: $missing}"
    else
        cudnn=$("${wn_env[@]}" ldd "${ops:-$wn}" 2>/dev/null | awk '/libcudnn\.so/ {print $3; exit}')
        row "libraries" ok "all resolve; ${build_note}${cudnn:+; cuDNN from $cudnn}"
    fi
fi

# ---------------------------------------------------------------- environment
{
    echo "===== environment"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    nvcc --version 2>&1 | tail -2
    echo "commit $(git rev-parse HEAD 2>/dev/null)$(git status --porcelain --untracked-files=no 2>/dev/null | grep . >/dev/null && echo ' dirty')"
    uname -a
} >>"$steps_log" 2>&1
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
if [ $rehearse = 1 ]; then
    row "environment" info "rehearsal on $(uname -m), no GPU used; commit $(git rev-parse --short HEAD 2>/dev/null)"
elif [ $gpu_listed = 1 ]; then
    row "environment" info "$card, driver $driver, commit $(git rev-parse --short HEAD 2>/dev/null)"
else
    row "environment" SKIP "nvidia-smi lists no GPU"
fi

# ---------------------------------------------------------------- steps
# The rehearsal runs the GPU tests in self-test mode (a second CPU backend is the
# "GPU") at small sizes; everything else about each step is the same.
st=() model_size=()
[ $rehearse = 1 ] && st=(--self-test) && model_size=(--arch efficientnet_lite0)

# Result of a test binary's step: 0 ok, 77 skip, 124/137 timeout, else failure.
test_row() { # name
    local name=$1 result # (not "summary": row() writes to the global $summary)
    result=$(grep -E 'comparisons|passed|failed' "$work/last.log" | tail -1)
    case $step_rc in
    0) row "$name" ok "${result:-passed} (${step_s} s)" ;;
    77) row "$name" SKIP "exit 77: $(tail -1 "$work/last.log")" ;;
    124 | 137)
        if [ $step_cut = 1 ]; then row "$name" CUT "stopped at the deadline after ${step_s} s"
        else row "$name" FAIL "timed out (${step_s} s)"; fi
        ;;
    *) row "$name" FAIL "rc $step_rc: $(grep -m1 FAIL "$work/last.log" || tail -1 "$work/last.log")" ;;
    esac
}
need() { # name exe: a row and 1 when the binary is missing
    [ -n "$2" ] && return 0
    row "$1" n/a "not built"
    return 1
}

name="selftest"
if need "$name" "$wn"; then
    sb=cuda
    [ $rehearse = 1 ] && sb=cpu
    run_step "$name" 60 10 "${wn_env[@]}" "$wn" selftest --backend "$sb" && test_row "$name"
fi

ops_args=()
[ $quick = 1 ] && ops_args=(--quick)
[ $rehearse = 1 ] && ops_args=(--quick)
if need "parity: ops" "$ops"; then
    run_step "parity: ops" 150 20 "${wn_env[@]}" "$ops" "${st[@]}" "${ops_args[@]}" && test_row "parity: ops"
fi

for prec in fp32 tf32; do
    name="parity: model $prec"
    margs=(--precision "$prec" "${model_size[@]}")
    [ $quick = 1 ] && margs+=(--quick)
    [ $rehearse = 1 ] && margs+=(--quick)
    if need "$name" "$model"; then
        run_step "$name" 150 30 "${wn_env[@]}" "$model" "${st[@]}" "${margs[@]}" && test_row "$name"
    fi
done

# The CUDA backend's group entries over one rank: the test builds its group itself
# (no MPI_Init, so no launcher), NCCL from the wheel folders on LD_LIBRARY_PATH. Its
# CPU part runs everywhere; without a usable GPU it exits 77 (the rehearsal's CPU
# stand-in has no NCCL: n/a there once the CPU part passed; on a GPU machine a FAIL).
name="nccl: all-reduce (1 rank)"
if need "$name" "$allreduce" && run_step "$name" 60 15 "${wn_env[@]}" "$allreduce"; then
    # a build without NCCL would pass through its host path and say "NCCL" wrongly
    if [ "$step_rc" = 0 ] && ! "${wn_env[@]}" ldd "$allreduce" 2>/dev/null | grep libnccl >/dev/null; then
        row "$name" FAIL "the binary does not link libnccl (built without NCCL): NCCL not tested"
    elif [ "$step_rc" = 0 ]; then
        res=$(grep -m1 '^ok   cuda:' "$work/last.log" | sed 's/^ok   cuda: allreduce_sum over one rank //')
        row "$name" ok "${res:-passed} (${step_s} s)"
    elif [ "$step_rc" = 77 ] && [ $rehearse = 1 ] && grep -q '^ok   cpu:' "$work/last.log"; then
        row "$name" n/a "rehearsal: the CPU backend's group sum passed; NCCL needs a CUDA GPU"
    else
        test_row "$name"
    fi
fi

if [ $quick = 0 ]; then
    name="bench wastenet ft=500"
    if [ $rehearse = 1 ]; then
        bargs=(--backend cpu --model irv2 --image-size 75 --batch 2 --steps 1 --warmup 0)
    else
        bargs=(--backend cuda --model irv2 --image-size 320 --batch 64 --steps 20 --warmup 3)
    fi
    if need "$name" "$wn" && run_step "$name" 120 30 "${wn_env[@]}" "$wn" bench "${bargs[@]}" --fine-tune-at 500; then
        line=$(grep -E 'median step' "$work/last.log" | head -1 | tr -s ' ' | sed 's/^ //')
        ips=$(grep -E 'images/s' "$work/last.log" | head -1 | awk '{print $2}')
        if [ "$step_rc" = 0 ]; then row "$name" ok "${line:-?}, ${ips:-?} images/s"
        elif [ $step_cut = 1 ]; then row "$name" CUT "stopped at the deadline after ${step_s} s"
        else row "$name" FAIL "rc $step_rc: $(grep -v '^\s*$' "$work/last.log" | tail -1)"; fi
    fi
fi

# compute-sanitizer: our kernels only (cuDNN's and cuBLAS's are excluded by name:
# they are not ours to fix and instrumenting them costs most of the time), every
# buffer its own allocation and a sync after each op so a report names its layer.
san_exe=""
if [ $rehearse = 0 ]; then
    [ -x /usr/local/cuda/bin/compute-sanitizer ] && PATH="$PATH:/usr/local/cuda/bin"
    san_exe=$(command -v compute-sanitizer || true)
fi
san_filter=()
for k in cudnn cublas xmma cutlass gemm gemv sm80_ sm86_ sm89_ sm90_ implicit_convolve winograd fft nchwToNhwc nhwcToNchw scalePackedTensor; do
    san_filter+=(--kernel-name-exclude "kns=$k")
done
san() { # name tool exe args...
    local name=$1 tool=$2 exe=$3
    shift 3
    need "$name" "$exe" || return
    local cmd=()
    if [ $rehearse = 1 ]; then
        cmd=("$exe" "$@") # the same binary and arguments, no sanitizer on a CPU machine
    elif [ -n "$san_exe" ]; then
        cmd=("$san_exe" --tool "$tool" --error-exitcode 99 --print-limit 20 "${san_filter[@]}" "$exe" "$@")
    else
        row "$name" n/a "compute-sanitizer not on PATH"
        return
    fi
    run_step "$name" 90 20 "${wn_env[@]}" WN_CUDA_NO_ARENA=1 WN_CUDA_SYNC=1 WN_CUDA_DEPTHWISE=own \
        "${cmd[@]}" || return
    if [ $rehearse = 0 ] && grep -qiE 'unrecognized option|unknown option|invalid option' "$work/last.log"; then
        # an older compute-sanitizer without name filters: once more, every kernel
        san_filter=()
        run_step "$name (all kernels)" 90 20 "${wn_env[@]}" WN_CUDA_NO_ARENA=1 WN_CUDA_SYNC=1 \
            WN_CUDA_DEPTHWISE=own "$san_exe" --tool "$tool" --error-exitcode 99 --print-limit 20 "$exe" "$@" || return
        name="$name (all kernels)"
    fi
    local errs
    errs=$(grep -Eo 'ERROR SUMMARY: [0-9]+ error' "$work/last.log" | tail -1)
    case $step_rc in
    0) row "$name" ok "${errs:-no errors}$([ $rehearse = 1 ] && echo ' (rehearsal: no sanitizer)') (${step_s} s)" ;;
    77) row "$name" SKIP "exit 77: no usable GPU" ;;
    124 | 137)
        if [ $step_cut = 1 ]; then row "$name" CUT "stopped at the deadline after ${step_s} s"
        else row "$name" FAIL "timed out (${step_s} s)"; fi
        ;;
    *) row "$name" FAIL "rc $step_rc, ${errs:-see steps.log}" ;;
    esac
}
san "memcheck: ops (quick)" memcheck "$ops" "${st[@]}" --quick
san "racecheck: ops (quick)" racecheck "$ops" "${st[@]}" --quick

if [ $quick = 0 ]; then
    name="bench torch"
    if [ $rehearse = 1 ]; then
        row "$name" n/a "rehearsal: the PyTorch bench needs a CUDA GPU"
    elif ! python3 -c 'import torch, timm' 2>/dev/null; then
        row "$name" n/a "python3 has no torch/timm"
    elif run_step "$name" 150 40 env PYTHONUNBUFFERED=1 python3 tools/bench_torch.py --batch 64 \
            --image-size 320 --steps 20 --fine-tune-at 500 --modes tf32,bf16-amp; then
        n=0
        while IFS= read -r l; do row "$name" ok "$l"; n=$((n + 1)); done < <(grep '^|' "$work/last.log" | tail -2)
        if [ "$step_rc" != 0 ]; then
            if [ $step_cut = 1 ]; then row "$name" CUT "stopped at the deadline after ${step_s} s"
            else row "$name" FAIL "rc $step_rc: $(tail -1 "$work/last.log")"; fi
        elif [ $n = 0 ]; then row "$name" FAIL "no result table in its output"; fi
    fi
    # Only if time is left: the convolution cases with the depthwise ones through our
    # own kernels (the fallback where cuDNN has no algorithm), then the whole model's
    # staging sequence under memcheck.
    name="parity: own depthwise"
    if need "$name" "$ops"; then
        run_step "$name" 60 15 "${wn_env[@]}" WN_CUDA_DEPTHWISE=own "$ops" "${st[@]}" "${ops_args[@]}" conv2d &&
            test_row "$name"
    fi
    san "memcheck: model (quick)" memcheck "$model" "${st[@]}" --quick --precision fp32 "${model_size[@]}"
    # The whole model's bf16 plan against the CPU's bf16 plan (its ops already ran in
    # "parity: ops" and the selftest's lite0 bf16 row). Not in --rehearse: there the CPU
    # stands in and the extra minute would push the rehearsal past its deadline.
    name="parity: model bf16"
    if [ $rehearse = 0 ] && need "$name" "$model"; then
        run_step "$name" 150 30 "${wn_env[@]}" "$model" "${st[@]}" --precision bf16 "${model_size[@]}" &&
            test_row "$name"
    fi
fi

# ---------------------------------------------------------------- the table
elapsed=$(($(date +%s) - t0))
if [ $fails -gt 0 ]; then verdict="FAIL ($fails failed)" rc=1
elif [ $gpu_listed = 0 ] && [ $rehearse = 0 ]; then verdict="NO GPU (nothing tested)" rc=77
elif [ $not_run -gt 0 ]; then verdict="INCOMPLETE ($not_run not run)" rc=3
else verdict="PASS" rc=0; fi
echo "# done in ${elapsed} s: $verdict" >>"$summary"
echo
grep -v '^# running:' "$summary"
rm -rf "$work"
exit $rc
