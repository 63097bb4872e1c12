"""tests/mpi/test_mpi.py — data-parallel training: `mpirun -np 2 wastenet train` on the
CPU backend against one process at the same global batch, on a tiny synthetic data
set (tiny_cnn, 32x32, 33 images per split: batches of 16, 16 and 1, so the last
batch leaves rank 1 an empty slice in training, validation and test).

1. equivalence: per-step loss and accuracy of the whole batch, the history's
   validation figures, the test results and the final checkpoint (weights, Adam
   moments, best snapshot) of N=2 equal those of N=1 within float reduction-order
   tolerance: the ranks' gradients are summed in another order than one process sums
   its batch (per-step loss within 1e-5 relative; accuracy within one image of the
   batch; checkpoint arrays within 1e-4 of their largest magnitude + 1e-7 — Adam
   divides by sqrt(v), which magnifies the last bits of tiny gradients; measured
   here: 6e-8 and 1e-7);
2. determinism: two N=2 runs write byte-identical checkpoints, and so does N=2 with
   its gradients summed in buckets as backward writes them (WN_DIST_BUCKET_MB);
3. resume: N=2 stopped mid-epoch (WN_TEST_INTERRUPT_AFTER_STEPS), or by a signal
   that reaches rank 1 only (SIGTERM in training, SIGINT in validation: the ranks
   agree to stop after the same batch), and resumed with N=2 ends byte-identical to
   the uninterrupted N=2 run; checkpoints are
   interchangeable: N=2 stopped and resumed by one process, and one process stopped
   and resumed by N=2, end within tolerance of the uninterrupted runs;
4. faults: ranks started with different --seed or --batch are refused (exit 2, the
   option named, no run folder), and so is a WN_DIST_BUCKET_MB that is not a size; a rank killed with SIGKILL mid-run ends every rank
   within the test's timeout, with a message naming rank 1, nothing half-written:
   the run folder resumes with N=2 to the uninterrupted run's checkpoint; a rank that
   stops (SIGSTOP) makes rank 0 give up after WN_DIST_TIMEOUT seconds with a message,
   and no process is left behind.

usage: test_mpi.py WASTENET MAKE_SHAPES CKPT_COMPARE MPIEXEC MPI_BUILT(ON|OFF) PART
PART: "equivalence" (1-3) or "faults" (4), two ctest tests that each stay well under
a minute on 2 cores.
Exit 77 (skipped) when the build has no MPI or mpiexec is missing.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WASTENET, MAKE_SHAPES, CKPT_COMPARE, MPIEXEC, MPI_BUILT, PART = sys.argv[1:7]
failures = []
STEP_RTOL = 1e-5          # per-step loss, relative (measured: 6e-8)
CKPT_RTOL, CKPT_ATOL = 1e-4, 1e-7   # measured: 1e-7 relative
TIMEOUT = 120             # any single launch; a hang fails the test instead of CI


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive",
           # containers often forbid the cross-memory-attach single copy
           OMPI_MCA_btl_vader_single_copy_mechanism="none")
ENV.pop("WN_TEST_INTERRUPT_AFTER_STEPS", None)
# tools/ci_sanitize.sh: Open MPI's leaks are suppressed by library (tools/lsan.supp),
# which needs full stacks to see their frames, and full stacks double the run time:
# the first N=2 run of each part is checked for leaks that way, the others without
# LeakSanitizer (AddressSanitizer and UBSan stay on).
SANITIZED = "detect_leaks=1" in ENV.get("ASAN_OPTIONS", "")
LEAK_CHECKED = dict(LSAN_OPTIONS=ENV.get("LSAN_OPTIONS", "") + ":fast_unwind_on_malloc=0")
if SANITIZED:
    ENV["ASAN_OPTIONS"] = ENV["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
    LEAK_CHECKED["ASAN_OPTIONS"] = ENV["ASAN_OPTIONS"].replace("detect_leaks=0", "detect_leaks=1")


def args(data, runs, name, epochs=3, extra=()):
    return [WASTENET, "train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "16", "--epochs", str(epochs),
            "--fine-tune-at", "all", "--runs", runs, "--progress", "lines", "--no-plots",
            "--name", name, *extra]


def launch(cmd, np_=2, env=None, timeout=TIMEOUT):
    """Runs cmd under mpiexec -np np_ (np_=1: plainly), in its own process group so
    that nothing it started can outlive it. Returns (rc, out, seconds, leftovers)."""
    full = cmd if np_ == 1 else [MPIEXEC, "--oversubscribe", "-np", str(np_), *cmd]
    t0 = time.time()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(ENV, **(env or {})), start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out += "\n[test: TIMEOUT after %d s]" % timeout
    left = 0
    try:
        os.killpg(p.pid, signal.SIGKILL)
        left = 1
    except ProcessLookupError:
        pass
    return p.returncode, out, time.time() - t0, left


def run_dir(runs, name):
    dirs = [d for d in os.listdir(runs) if d.endswith("-" + name)] if os.path.isdir(runs) else []
    return os.path.join(runs, dirs[0]) if len(dirs) == 1 else None


def steps(path):
    with open(path) as f:
        return [tuple(float(x) for x in line.split()) for line in f if line.strip()]


def history(rd):
    with open(os.path.join(rd, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def ckpt(rd):
    with open(os.path.join(rd, "train.ckpt"), "rb") as f:
        return f.read()


def compare_ckpt(a, b, what):
    r = subprocess.run([CKPT_COMPARE, os.path.join(a, "train.ckpt"), os.path.join(b, "train.ckpt"),
                        str(CKPT_RTOL), str(CKPT_ATOL)], capture_output=True, text=True)
    print("     " + r.stdout.strip().replace("\n", "\n     "))
    check(r.returncode == 0, f"{what}: checkpoints within {CKPT_RTOL} relative + {CKPT_ATOL} "
                             f"{r.stderr.strip()}")


def faults(data, runs, two):
    """4: option mismatch, a killed rank, a stopped rank."""
    # 4. faults: options that differ between the ranks (two programs, one job)
    for opt, a, b in (("--seed", "1", "2"), ("--batch", "16", "8")):
        cmd_a = args(data, runs, "differ")
        cmd_b = list(cmd_a)
        if opt == "--seed":
            cmd_a += [opt, a]
            cmd_b += [opt, b]
        else:
            cmd_b[cmd_b.index("--batch") + 1] = b
        full = [MPIEXEC, "--oversubscribe", "-np", "1", *cmd_a, ":", "-np", "1", *cmd_b]
        rc, out, secs, _ = launch(full, np_=1)
        check(rc == 2 and f"{opt} {b}" in out and "same options" in out
              and run_dir(runs, "differ") is None,
              f"ranks with different {opt} refused: exit 2, option named, no run folder "
              f"(rc {rc}, {secs:.1f} s) {out[-600:] if rc != 2 else ''}")

    # a bucket size that is not one: refused before training, the variable named
    rc, out, secs, _ = launch(args(data, runs, "badbucket"), env={"WN_DIST_BUCKET_MB": "lots"})
    check(rc != 0 and "WN_DIST_BUCKET_MB=lots" in out and run_dir(runs, "badbucket") is None,
          f"WN_DIST_BUCKET_MB=lots refused, the variable named, no run folder (rc {rc}) "
          f"{out[-400:] if rc == 0 else ''}")

    # a rank killed mid-run (rank 1, epoch 2, after its step 2)
    rc, out, secs, left = launch(args(data, runs, "killed"),
                                 env={"WN_TEST_SIGNAL_AT": "train:2:2:KILL",
                                      "WN_TEST_SIGNAL_RANK": "1"}, timeout=60)
    killed = run_dir(runs, "killed")
    check(rc != 0 and "[test: TIMEOUT" not in out and secs < 60 and not left,
          f"a killed rank ends every rank ({secs:.1f} s, rc {rc}, leftovers {left})")
    check("rank 1" in out, "the message names rank 1: " +
          " / ".join(l for l in out.splitlines() if "rank 1" in l)[:300])
    if killed:
        tmpfiles = [f for f in os.listdir(killed) if ".tmp." in f]
        rows = len(history(killed))
        check(rows == 1, f"the killed run's history holds epoch 1 ({rows} rows)")
        rc, out, _, _ = launch([WASTENET, "train", "--resume", killed, "--progress", "lines",
                                "--no-plots"])
        check(rc == 0 and ckpt(killed) == ckpt(two),
              f"nothing half-written: the killed run resumes with N=2 to the uninterrupted "
              f"run's checkpoint (rc {rc}; temporaries before: {tmpfiles})")

    # a rank that hangs (SIGSTOP): rank 0 gives up after WN_DIST_TIMEOUT
    rc, out, secs, left = launch(args(data, runs, "stopped"),
                                 env={"WN_TEST_SIGNAL_AT": "train:2:1:STOP",
                                      "WN_TEST_SIGNAL_RANK": "1", "WN_DIST_TIMEOUT": "3"},
                                 timeout=60)
    check(rc != 0 and "[test: TIMEOUT" not in out and secs < 60 and not left,
          f"a stopped rank: the job ends ({secs:.1f} s, rc {rc}, leftovers {left})")
    check("rank 0 of 2 waited" in out, "rank 0 says it waited for the others: " +
          " / ".join(l for l in out.splitlines() if "waited" in l)[:300])
    return 0


def main():
    if MPI_BUILT != "ON" or not shutil.which(MPIEXEC):
        print("skipped: this build has no MPI (Debian: libopenmpi-dev openmpi-bin)")
        return 77
    tmp = tempfile.mkdtemp(prefix="wn_mpi_")
    try:
        data, runs = os.path.join(tmp, "shapes"), os.path.join(tmp, "runs")
        subprocess.run([MAKE_SHAPES, data, "11", "11", "11"], check=True,
                       stdout=subprocess.DEVNULL)
        log1, log2 = os.path.join(tmp, "one.steps"), os.path.join(tmp, "two.steps")

        # the uninterrupted N=2 run both parts compare with
        rc, out2, t2, _ = launch(args(data, runs, "two"),
                                 env=dict(LEAK_CHECKED if SANITIZED else {},
                                          WN_TEST_STEP_LOG=log2))
        check(rc == 0, f"mpirun -np 2 exits 0 (got {rc}) {out2[-1500:] if rc else ''}")
        two = run_dir(runs, "two")
        if not two:
            return 1
        if PART == "faults":
            return faults(data, runs, two)

        # 1. equivalence
        rc, out1, t1, _ = launch(args(data, runs, "one"), np_=1, env={"WN_TEST_STEP_LOG": log1})
        check(rc == 0, f"one process exits 0 (got {rc}) {out1[-800:] if rc else ''}")
        print(f"     N=1 {t1:.1f} s, N=2 {t2:.1f} s wall (start-up included)")
        one = run_dir(runs, "one")
        if not one:
            return 1
        s1, s2 = steps(log1), steps(log2)
        check(len(s1) == len(s2) == 9, f"9 steps logged by each ({len(s1)}, {len(s2)})")
        worst = max((abs(a[2] - b[2]) / max(1.0, abs(a[2])) for a, b in zip(s1, s2)), default=1)
        check(all(a[:2] == b[:2] for a, b in zip(s1, s2)) and worst <= STEP_RTOL,
              f"per-step losses equal within {STEP_RTOL} relative (worst {worst:.2g})")
        check(all(abs(a[3] - b[3]) <= 1 / 16 + 1e-9 for a, b in zip(s1, s2)),
              "per-step accuracies equal within one image of the batch")
        same = sum(a[3] == b[3] for a, b in zip(s1, s2))
        print(f"     {same} of {len(s1)} step accuracies identical")
        h1, h2 = history(one), history(two)
        check(len(h1) == len(h2) and all(
            abs(float(a[k]) - float(b[k])) <= 1e-4 * max(1, abs(float(a[k])))
            for a, b in zip(h1, h2) for k in ("loss", "val_loss"))
            and all(abs(float(a[k]) - float(b[k])) <= 1 / 33 + 1e-6
                    for a, b in zip(h1, h2) for k in ("accuracy", "val_accuracy")),
            "history (loss, accuracy, validation) equal within tolerance")
        with open(os.path.join(one, "train_test.json")) as f:
            j1 = json.load(f)
        with open(os.path.join(two, "train_test.json")) as f:
            j2 = json.load(f)
        check(j1["samples"] == j2["samples"] == 33 and abs(j1["accuracy"] - j2["accuracy"]) <= 1 / 33
              and abs(j1["loss"] - j2["loss"]) <= 1e-4 * max(1, abs(j1["loss"])),
              f"test results equal within tolerance ({j1} / {j2})")
        with open(os.path.join(two, "train_predictions.csv")) as f:
            preds = list(csv.DictReader(f))
        check(len(preds) == 33 and len({p["path"] for p in preds}) == 33,
              "N=2 predictions: every test file once (the ranks' slices gathered)")
        compare_ckpt(one, two, "N=1 vs N=2")
        check(out2.count("Epoch 1/3") == 1, "one progress line per epoch (rank 0 only)")

        # 2. determinism
        rc, _, _, _ = launch(args(data, runs, "two_again"))
        again = run_dir(runs, "two_again")
        check(rc == 0 and again and ckpt(again) == ckpt(two),
              "two N=2 runs: byte-identical checkpoints")
        # gradients summed in buckets during backward (the CPU backend sums each at
        # once) instead of once after it: with two ranks every sum is a + b either
        # way, so the checkpoint is byte-identical
        rc, out, _, _ = launch(args(data, runs, "buckets"), env={"WN_DIST_BUCKET_MB": "0.004"})
        rd = run_dir(runs, "buckets")
        check(rc == 0 and "buckets of 0.004 MiB" in out and "summed once" in out2
              and rd and ckpt(rd) == ckpt(two),
              f"N=2 in gradient buckets of 0.004 MiB: byte-identical to one sum after backward "
              f"(rc {rc}) {out[-600:] if rc else ''}")

        # 3. resume after an interrupt, N=2 -> N=2, and across N
        rc, out, _, _ = launch(args(data, runs, "cut2"), env={"WN_TEST_INTERRUPT_AFTER_STEPS": "4"})
        cut2 = run_dir(runs, "cut2")
        check(rc == 130 and cut2, f"N=2 interrupted after 4 steps exits 130 (got {rc})")
        if cut2:
            shutil.copytree(cut2, cut2 + "-copy")
            rc, out, _, _ = launch([WASTENET, "train", "--resume", cut2, "--progress", "lines",
                                    "--no-plots"])
            check(rc == 0 and "resumed from" in out and ckpt(cut2) == ckpt(two),
                  f"N=2 resumed by N=2: byte-identical to the uninterrupted N=2 run (rc {rc})")
            rc, out, _, _ = launch([WASTENET, "train", "--resume", cut2 + "-copy", "--progress",
                                    "lines", "--no-plots"], np_=1)
            check(rc == 0, f"N=2's checkpoint resumed by one process (rc {rc}) {out[-500:]}")
            compare_ckpt(cut2 + "-copy", two, "N=2 resumed by N=1 vs N=2")
        rc, out, _, _ = launch(args(data, runs, "cut1"), np_=1,
                               env={"WN_TEST_INTERRUPT_AFTER_STEPS": "4"})
        cut1 = run_dir(runs, "cut1")
        check(rc == 130 and cut1, f"N=1 interrupted exits 130 (got {rc})")
        if cut1:
            rc, out, _, _ = launch([WASTENET, "train", "--resume", cut1, "--progress", "lines",
                                    "--no-plots"])
            check(rc == 0, f"N=1's checkpoint resumed by N=2 (rc {rc}) {out[-800:] if rc else ''}")
            compare_ckpt(cut1, one, "N=1 resumed by N=2 vs N=1")

        # a signal that reaches one rank only (SIGTERM to rank 1 in training, SIGINT
        # to rank 1 in a validation pass): both stop after the same batch, rank 0
        # writes the checkpoint, the resume is byte-identical
        for where, sig in (("train:2:1", "TERM"), ("validation:2:1", "INT")):
            name = "sig-" + where.split(":")[0]
            rc, out, _, _ = launch(args(data, runs, name),
                                   env={"WN_TEST_SIGNAL_AT": f"{where}:{sig}",
                                        "WN_TEST_SIGNAL_RANK": "1"})
            rd = run_dir(runs, name)
            check(rc == 130 and rd, f"SIG{sig} to rank 1 at {where}: every rank stops, exit 130 "
                                    f"(rc {rc}) {out[-600:] if rc != 130 else ''}")
            if rd:
                rc, out, _, _ = launch([WASTENET, "train", "--resume", rd, "--progress", "lines",
                                        "--no-plots"])
                check(rc == 0 and ckpt(rd) == ckpt(two),
                      f"... and the resume ends byte-identical to the uninterrupted run (rc {rc})")

    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    rc = main()
    if rc == 0 and failures:
        print(f"{len(failures)} failure(s)")
        rc = 1
    elif rc == 0:
        print(f"all mpi checks passed ({PART})")
    sys.exit(rc)
