#!/usr/bin/env bash
# tests/gpu/rehearsal.sh BUILD_DIR — the GPU check rehearsed on a machine without a
# GPU: tools/gpu_bundle.sh bundles BUILD_DIR's binaries (no build; xz -1, kept while
# the binaries do not change), then tools/gpu_check.sh --rehearse runs end to end
# with the CPU backend standing in for the GPU and a fake $OUT. Checks:
#   1. the bundle plus the files that travel (tracked and untracked-not-ignored) stay
#      under the device tool's 64 MiB;
#   2. a full rehearsal passes (exit 0) with every step's row, in order, and its
#      output in steps.log; the NCCL row (test_gpu_allreduce, carried by the bundle)
#      ran its CPU part and reads n/a (only a GPU has NCCL);
#   3. rows are written as steps end: the summary holds the 'parity: ops' row while
#      the check still runs, and after a SIGKILL (no trap can run) the rows written
#      so far are all there;
#   4. a SIGTERM mid-run: the interrupted step is reported CUT, the rest NOT RUN;
#   6. (not a rehearsal) nvidia-smi lists a GPU the binaries cannot use: every exit
#      77 reads FAIL (the NCCL row's included) and the check exits 1;
#   5. a scaled-down deadline (3 s): the steps it leaves no time for are NOT RUN and
#      the exit code says incomplete (3), not pass; in the same run a broken xz
#      (the Python tarfile fallback extracts) and cuDNN in an `nvidia` wheel package
#      (its folder joins LD_LIBRARY_PATH).
set -uo pipefail
build=$(cd "${1:?usage: rehearsal.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$build/gpu_rehearsal
bundle=$work/bundle
mkdir -p "$work"
# gpu_check's own work folders (~100 MB of extracted libraries each; a SIGKILL leaves
# one behind) go here and are removed at the end
export TMPDIR=$work/tmp
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

t=$(date +%s)
if ! "$root/tools/gpu_bundle.sh" --from-build "$build" --out "$bundle" --cpu-ok --fast; then
    echo "FAIL: tools/gpu_bundle.sh"
    exit 1
fi
echo "bundle: $(($(date +%s) - t)) s"

# 1. what would travel
tree=$(cd "$root" && git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
bsize=$(du -sb "$bundle" | cut -f1)
total=$((tree + bsize))
limit=$((64 * 1024 * 1024))
if [ "$total" -lt "$limit" ]; then
    pass "tree $((tree >> 20)) MiB + bundle $((bsize >> 20)) MiB = $((total >> 20)) MiB < 64 MiB"
else
    fail "tree $((tree >> 20)) MiB + bundle $((bsize >> 20)) MiB = $((total >> 20)) MiB >= 64 MiB"
fi

check() { # OUT_DIR ARGS...: runs the rehearsal, sets $rc
    local out=$1
    shift
    rm -rf "$out"
    OUT=$out WN_GPU_BUNDLE=$bundle "$root/tools/gpu_check.sh" --rehearse "$@" >"$out.stdout" 2>&1
    rc=$?
}
rows() { grep -v '^#' "$1/summary.txt" | cut -c1-28 | sed 's/ *$//'; }

# 2. a full rehearsal
check "$work/full" --deadline 90
expected="libraries
environment
selftest
parity: ops
parity: model fp32
parity: model tf32
nccl: all-reduce (1 rank)
bench wastenet ft=500
memcheck: ops (quick)
racecheck: ops (quick)
bench torch
parity: own depthwise
memcheck: model (quick)"
if [ "$rc" = 0 ] && [ "$(rows "$work/full")" = "$expected" ] && grep -q '^# done .*PASS' "$work/full/summary.txt"; then
    pass "full rehearsal: exit 0, $(rows "$work/full" | wc -l) rows in order"
else
    fail "full rehearsal: exit $rc, rows:"
    cat "$work/full/summary.txt" "$work/full.stdout"
fi
if grep -qE '^nccl: all-reduce \(1 rank\) +n/a +rehearsal: the CPU backend' "$work/full/summary.txt" &&
    grep -q '^ok   cpu: allreduce_sum' "$work/full/steps.log"; then
    pass "nccl row: test_gpu_allreduce ran from the bundle, its CPU part passed, n/a without a GPU"
else
    fail "nccl row: not n/a after test_gpu_allreduce's CPU part (its row, its output):"
    grep 'nccl' "$work/full/summary.txt"
    grep -A5 '^===== nccl: all-reduce' "$work/full/steps.log"
fi
n_logs=$(grep -c '^===== .*: exit ' "$work/full/steps.log")
[ "$n_logs" -ge 9 ] && pass "steps.log holds $n_logs steps' output" || fail "steps.log holds $n_logs steps' output"

# 3. + 4. killed mid-run
killed_run() { # SIGNAL OUT_DIR PATTERN: starts a rehearsal in its own process group,
    # waits for a summary line matching PATTERN (after the 'parity: ops' row), checks
    # that the check still runs, then signals the group
    local sig=$1 out=$2 pattern=$3
    rm -rf "$out"
    OUT=$out WN_GPU_BUNDLE=$bundle setsid "$root/tools/gpu_check.sh" --rehearse --deadline 90 \
        >"$out.stdout" 2>&1 &
    local pid=$! i
    for i in $(seq 1 600); do
        grep -q '^parity: ops ' "$out/summary.txt" 2>/dev/null &&
            grep -qE "$pattern" "$out/summary.txt" && break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null && ! grep -q '^# done' "$out/summary.txt"; then
        pass "$sig: the 'parity: ops' row was in summary.txt while the check still ran"
    else
        fail "$sig: no 'parity: ops' row before the check ended"
    fi
    kill "-$sig" -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
}
killed_run KILL "$work/killed" '^parity: ops ' 
if rows "$work/killed" | grep -qx 'parity: ops' && rows "$work/killed" | head -1 | grep -qx libraries &&
    ! grep -q '^# done' "$work/killed/summary.txt"; then
    pass "SIGKILL: the summary keeps the $(rows "$work/killed" | wc -l) rows written before the kill"
else
    fail "SIGKILL: summary after the kill:"
    cat "$work/killed/summary.txt"
fi
# (waits for the bench to start: it runs for a second or more, so the signal lands
# inside a step)
killed_run TERM "$work/termed" '^# running: bench wastenet' 
if [ "$rc" = 3 ] && grep -qE '^[^#].* CUT ' "$work/termed/summary.txt" &&
    grep -qE '^\(the rest\) +NOT RUN' "$work/termed/summary.txt"; then
    pass "SIGTERM: exit 3, the interrupted step CUT, the rest NOT RUN"
else
    fail "SIGTERM: exit $rc, summary:"
    cat "$work/termed/summary.txt"
fi

# 5. a deadline too short for all steps, on a machine whose xz is broken (tar -xJf
# fails: the Python tarfile fallback must extract the libraries) and whose cuDNN
# comes from an `nvidia` wheel namespace package (its folder must join the path)
fake=$work/fake_env
rm -rf "$fake"
mkdir -p "$fake/bin" "$fake/site/nvidia/cudnn/lib"
printf '#!/bin/sh\necho "xz: broken on purpose" >&2\nexit 1\n' >"$fake/bin/xz"
chmod +x "$fake/bin/xz"
# (a file gpu_check recognises as a cuDNN wheel's, under a name no binary asks for:
# an empty libcudnn.so.9 there would be loaded before the real one, and every step
# that starts before the deadline would die with "file too short")
: >"$fake/site/nvidia/cudnn/lib/libcudnn_wheel_marker.so.9"
PATH=$fake/bin:$PATH PYTHONPATH=$fake/site${PYTHONPATH:+:$PYTHONPATH} check "$work/deadline" --deadline 3
if [ "$rc" = 3 ] && grep -qE '^[^#].* NOT RUN +deadline' "$work/deadline/summary.txt" &&
    grep -q '^# done .*INCOMPLETE' "$work/deadline/summary.txt"; then
    pass "deadline 3 s: exit 3, $(grep -c ' NOT RUN ' "$work/deadline/summary.txt") steps NOT RUN"
else
    fail "deadline 3 s: exit $rc, summary:"
    cat "$work/deadline/summary.txt"
fi
if grep -q 'trying python3 tarfile' "$work/deadline/steps.log" &&
    grep -qE '^libraries +ok ' "$work/deadline/summary.txt"; then
    pass "broken xz: the libraries came out through Python's tarfile"
else
    fail "broken xz: no tarfile fallback, or the libraries row is not ok"
fi
if grep -q "LD_LIBRARY_PATH=.*$fake/site/nvidia/cudnn/lib" "$work/deadline/steps.log"; then
    pass "the nvidia wheel's library folder (from nvidia.__path__) is on the path"
else
    fail "the nvidia wheel's library folder is not on LD_LIBRARY_PATH"
fi

# 6. not a rehearsal, on a machine whose nvidia-smi lists a GPU that the binaries
# cannot use (here: there is none; a driver/runtime mismatch looks the same): every
# exit 77 must read FAIL, and the check must exit 1, never pass or skip
printf '#!/bin/sh\necho "NVIDIA H200 (fake), 143771 MiB, 580.00"\n' >"$fake/bin/nvidia-smi"
chmod +x "$fake/bin/nvidia-smi"
rm -f "$fake/bin/xz"
rm -rf "$work/listed"
PATH=$fake/bin:$PATH OUT=$work/listed WN_GPU_BUNDLE=$bundle "$root/tools/gpu_check.sh" --quick \
    --deadline 120 >"$work/listed.stdout" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -qE '^selftest +FAIL +exit 77' "$work/listed/summary.txt" &&
    grep -qE '^nccl: all-reduce \(1 rank\) +FAIL +exit 77' "$work/listed/summary.txt" &&
    ! grep -qE '^[^#]\S*( \S+)* +SKIP ' "$work/listed/summary.txt"; then
    pass "GPU listed but unusable: exit 1, every exit 77 a FAIL, no SKIP"
else
    fail "GPU listed but unusable: exit $rc, summary:"
    cat "$work/listed/summary.txt"
fi

echo "rehearsal: $failures failed, $(($(date +%s) - t)) s"
[ $failures = 0 ]
