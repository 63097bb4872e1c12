"""tests/train/test_e2e.py — `wastenet train` and `wastenet run` end to end on a
synthetic data set, on the CPU.

1. learning: the tiny CNN reaches >= 95% validation accuracy within one minute of
   CPU time, and the run folder holds every report (history, test, per-class,
   confusion, predictions, weights, checkpoint, pictures);
2. determinism: the same command twice gives byte-identical final checkpoints;
3. resume: a run killed with SIGKILL after a checkpoint, a run stopped mid-epoch
   (the test hook WN_TEST_INTERRUPT_AFTER_STEPS), a run stopped by a real SIGINT and
   a run stopped by two SIGINTs all end, after --resume, with the same final
   checkpoint (weights, Adam state, early stopping, RNG) as the uninterrupted run
   (the mid-epoch case also with --zoom, --translate and --contrast on);
4. faults: a diverging learning rate stops with a message and status 1 keeping the
   starting weights; a missing matplotlib is a warning, not a failure; bad options
   and a one-class data set fail with a clear message;
5. `wastenet run`: transfer learning then fine-tuning, both phases' reports.

usage: test_e2e.py WASTENET MAKE_SHAPES PLOTS_PY
"""
import csv
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

WASTENET, MAKE_SHAPES, PLOTS = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def base_args(data, runs, name, epochs=12):
    return [WASTENET, "train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "16", "--epochs", str(epochs),
            "--fine-tune-at", "all", "--runs", runs, "--name", name, "--progress", "lines"]


def env_with(**kw):
    env = dict(os.environ, WN_PLOTS_SCRIPT=PLOTS)
    env.update(kw)
    return env


def run(args, env=None, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, env=env or env_with(),
                          timeout=timeout)


def run_dir(runs, name):
    dirs = [d for d in os.listdir(runs) if d.endswith("-" + name)]
    assert len(dirs) == 1, f"expected one run folder named {name}: {dirs}"
    return os.path.join(runs, dirs[0])


def history(rd):
    with open(os.path.join(rd, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def ckpt_bytes(rd, phase="train"):
    with open(os.path.join(rd, phase + ".ckpt"), "rb") as f:
        return f.read()


def ckpt_header(data):
    """(phase, epoch, step, status) from a checkpoint (layout in engine/train/checkpoint.h)."""
    off = 8 + 4 + 4
    phase = data[off:off + 32].split(b"\0")[0].decode()
    off += 64
    h, w, k, ft, epoch, step, emax, status = struct.unpack_from("<8i", data, off)
    return phase, epoch, step, status


def wait_rows(rd_parent, name, rows, proc, timeout=120):
    """Waits until the run's history.csv has `rows` data rows (or the process ends)."""
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try:
            rd = run_dir(rd_parent, name)
            if len(history(rd)) >= rows:
                return True
        except (AssertionError, FileNotFoundError, OSError):
            pass
        time.sleep(0.01)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="wn_e2e_")
    try:
        data = os.path.join(tmp, "shapes")
        runs = os.path.join(tmp, "runs")
        subprocess.run([MAKE_SHAPES, data], check=True)

        # 1. learning, reports, pictures
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        r = run(base_args(data, runs, "a") + ["--no-plots"])
        wall = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        check(r.returncode == 0, f"train exits 0 (got {r.returncode}) {r.stderr[-500:]}")
        a = run_dir(runs, "a")
        rows = history(a)
        best = max(float(x["val_accuracy"]) for x in rows)
        print(f"     {len(rows)} epochs, best val_accuracy {best:.4f}, "
              f"{cpu:.1f} s CPU, {wall:.1f} s wall")
        check(best >= 0.95, f"validation accuracy >= 0.95 (got {best:.4f})")
        check(cpu < 60, f"trained within a minute of CPU time ({cpu:.1f} s)")
        check("Epoch 1/12" in r.stdout and "val_categorical_accuracy" in r.stdout,
              "Keras-like epoch lines")
        check("accuracy on test set = " in r.stdout, "test accuracy printed")
        for f in ("history.json", "history.csv", "train_test.json", "train_per_class.txt",
                  "train_per_class.csv", "train_confusion.csv", "train_predictions.csv",
                  "train_weights.h5", "train.ckpt", "classes.txt", "command.txt",
                  "augment_preview.npy"):
            check(os.path.exists(os.path.join(a, f)), f"run folder has {f}")
        with open(os.path.join(a, "history.json")) as f:
            hj = json.load(f)
        check(len(hj["epochs"]) == len(rows), "history.json matches history.csv")
        with open(os.path.join(a, "train_test.json")) as f:
            tj = json.load(f)
        check(tj["samples"] == 60 and tj["accuracy"] >= 0.9, f"test results {tj}")
        with open(os.path.join(a, "train_predictions.csv"), newline="") as f:
            preds = list(csv.DictReader(f))
        check(len(preds) == 60 and all(os.path.exists(p["path"]) for p in preds),
              "one prediction per test file")
        # predict: the saved .h5 (Keras layout) and the checkpoint give the run's own
        # test probabilities back
        sample = preds[::12]
        for weights, extra in ((os.path.join(a, "train_weights.h5"),
                                ["--model", "tiny_cnn", "--image-size", "32"]),
                               (os.path.join(a, "train.ckpt"), [])):
            r = run([WASTENET, "predict", "--weights", weights, "--json", "--top", "2"] + extra +
                    [x["path"] for x in sample])
            ok = r.returncode == 0
            if ok:
                doc = json.loads(r.stdout)
                ok = doc["classes"] == ["circle", "square", "triangle"] and len(doc["predictions"]) == len(sample)
                for want, got in zip(sample, doc["predictions"] if ok else []):
                    ok = ok and got["path"] == want["path"] and got["top"][0]["class"] == want["predicted"]
                    ok = ok and len(got["top"]) == 2
                    for c in ("circle", "square", "triangle"):
                        ok = ok and abs(got["probabilities"][c] - float(want["p_" + c])) < 1e-6
            check(ok, f"predict --weights {os.path.basename(weights)} reproduces the run's "
                      f"test probabilities {r.stderr[-300:]}")
        r = run([WASTENET, "predict", "--weights", os.path.join(a, "train.ckpt"),
                 sample[0]["path"], os.path.join(tmp, "missing.png")])
        check(r.returncode == 1 and sample[0]["path"] in r.stdout and "missing.png" in r.stderr,
              "predict: a missing image is reported, the others still predicted")

        final = ckpt_bytes(a)
        phase, epoch, step, status = ckpt_header(final)
        check(phase == "train" and epoch == len(rows) and step == 0 and status in (1, 2),
              f"final checkpoint header {phase, epoch, step, status}")

        # pictures (plots.py run by the command) and a missing matplotlib
        r = run(base_args(data, runs, "p", epochs=2))
        p = run_dir(runs, "p")
        have_mpl = subprocess.run(["/usr/bin/python3", "-c", "import matplotlib"],
                                  capture_output=True).returncode == 0
        if have_mpl:
            check(r.returncode == 0 and os.path.exists(os.path.join(p, "curves.png")) and
                  os.path.exists(os.path.join(p, "augment_preview.png")),
                  f"pictures made {r.stderr[-300:]}")
        r = run(base_args(data, runs, "q", epochs=2),
                env=env_with(WN_PLOT_PYTHON="/nonexistent/python3"))
        check(r.returncode == 0 and "warning" in r.stderr and "no pictures" in r.stderr,
              f"no plotting Python: a warning, exit 0 ({r.returncode}, {r.stderr[-200:]})")

        # 2. determinism
        r = run(base_args(data, runs, "b") + ["--no-plots"])
        check(r.returncode == 0 and ckpt_bytes(run_dir(runs, "b")) == final,
              "same command, byte-identical final checkpoint")

        # 3a. SIGKILL after the 2nd epoch's checkpoint, then --resume
        proc = subprocess.Popen(base_args(data, runs, "k") + ["--no-plots"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env_with())
        reached = wait_rows(runs, "k", 2, proc)
        proc.kill()
        proc.wait()
        k = run_dir(runs, "k")
        check(reached, "killed after 2 epochs")
        _, epoch_k, _, _ = ckpt_header(ckpt_bytes(k))
        r = run([WASTENET, "train", "--resume", k])
        check(r.returncode == 0 and f"resumed from {os.path.join(k, 'train.ckpt')}" in r.stdout,
              f"resume after kill -9 at epoch {epoch_k} {r.stderr[-300:]}")
        check(ckpt_bytes(k) == final, "killed + resumed = uninterrupted (final checkpoint)")
        check(len(history(k)) == len(rows), "resumed history has every epoch once")

        # 3b. stopped mid-epoch by the interrupt path (after 17 steps: epoch 2, step 5)
        r = run(base_args(data, runs, "m") + ["--no-plots"],
                env=env_with(WN_TEST_INTERRUPT_AFTER_STEPS="17"))
        m = run_dir(runs, "m")
        hdr = ckpt_header(ckpt_bytes(m))
        check(r.returncode == 130 and "--resume" in r.stderr,
              f"interrupted: status 130 and a resume hint ({r.returncode}, {r.stderr[-300:]})")
        check(hdr[1:3] == (1, 5), f"mid-epoch checkpoint at epoch 2 step 5 (got {hdr})")
        r = run([WASTENET, "train", "--resume", m])
        check(r.returncode == 0 and ckpt_bytes(m) == final,
              "interrupted mid-epoch + resumed = uninterrupted")

        # 3b'. the same with the zoom, translation and contrast layers on: their draws
        # replay from the checkpoint's RNG state too
        layers = ["--no-plots", "--zoom", "0.2", "--translate", "0.15", "--contrast", "0.3"]
        r = run(base_args(data, runs, "lf") + layers)
        lf = run_dir(runs, "lf")
        r2 = run(base_args(data, runs, "lm") + layers, env=env_with(WN_TEST_INTERRUPT_AFTER_STEPS="17"))
        lm = run_dir(runs, "lm")
        r3 = run([WASTENET, "train", "--resume", lm])
        check(r.returncode == 0 and r2.returncode == 130 and r3.returncode == 0 and
              ckpt_bytes(lm) == ckpt_bytes(lf) and ckpt_bytes(lf) != final,
              "--zoom/--translate/--contrast: interrupted mid-epoch + resumed = uninterrupted "
              "(and differs from the run without them)")

        # 3c. a real SIGINT during the 2nd epoch
        proc = subprocess.Popen(base_args(data, runs, "s") + ["--no-plots"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env_with())
        wait_rows(runs, "s", 1, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        s = run_dir(runs, "s")
        check(proc.returncode == 130 and "Resume with: wastenet train --resume" in err,
              f"SIGINT: status 130 and the resume command ({proc.returncode}, {err[-300:]})")
        r = run([WASTENET, "train", "--resume", s])
        check(r.returncode == 0 and ckpt_bytes(s) == final, "SIGINT + resumed = uninterrupted")

        # 3d. a second signal: out at once, the last checkpoint intact. Two SIGINTs sent
        # back to back may merge into one pending signal (standard signals do not
        # queue), so the second is a SIGTERM: the handler treats any second signal the
        # same way, and Linux delivers pending SIGINT (2) before SIGTERM (15).
        proc = subprocess.Popen(base_args(data, runs, "d") + ["--no-plots"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env_with())
        wait_rows(runs, "d", 1, proc)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        d = run_dir(runs, "d")
        check(proc.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
              and "stopped at once" in err,
              f"a second signal exits at once ({proc.returncode}, {err[-200:]})")
        r = run([WASTENET, "train", "--resume", d])
        check(r.returncode == 0 and ckpt_bytes(d) == final,
              f"double SIGINT + resumed = uninterrupted {r.stderr[-300:]}")

        # 4. faults and bad input
        r = run(base_args(data, runs, "nan", epochs=3) + ["--lr", "1e6", "--no-plots"])
        n = run_dir(runs, "nan")
        check(r.returncode == 1 and ("NaN" in r.stderr or "infinite" in r.stderr)
              and "lower --lr" in r.stderr, f"divergence stops with a message ({r.returncode})")
        check(ckpt_header(ckpt_bytes(n))[3] == 3, "diverged phase recorded in the checkpoint")
        for args, want, what in (
                (["--batch", "0"], 2, "--batch 0"),
                (["--lr", "-1"], 2, "negative --lr"),
                (["--rotation", "2"], 2, "--rotation 2"),
                (["--fine-tune-at", "11"], 2, "--fine-tune-at beyond the layers"),
                (["--frobnicate"], 2, "unknown option")):
            r = run(base_args(data, runs, "bad", epochs=1) + args)
            check(r.returncode == want and r.stderr.strip() != "",
                  f"{what}: status {want} with a message (got {r.returncode}: "
                  f"{r.stderr.strip()[-160:]})")
        one = os.path.join(tmp, "one")
        for split in ("train", "validation"):
            shutil.copytree(os.path.join(data, split, "circle"), os.path.join(one, split, "circle"))
        r = run(base_args(one, runs, "one", epochs=1))
        check(r.returncode == 1 and "at least 2" in r.stderr, f"one class refused: {r.stderr[-200:]}")

        # 5. the notebook's two phases (random frozen backbone, then fine-tuning from layer 4)
        r = run([WASTENET, "run", "--data", data, "--model", "tiny_cnn", "--weights", "none",
                 "--image-size", "32", "--batch", "16", "--epochs", "3", "--lr", "1e-3",
                 "--fine-tune-lr", "1e-3", "--fine-tune-at", "4", "--runs", runs, "--name", "nb",
                 "--progress", "lines"])
        nb = run_dir(runs, "nb")
        check(r.returncode == 0, f"run exits 0 {r.stderr[-300:]}")
        phases = [x["phase"] for x in history(nb)]
        check(phases and phases[0] == "transfer" and phases[-1] == "finetune",
              f"history has both phases {phases}")
        for f in ("transfer.ckpt", "finetune.ckpt", "transfer_test.json", "finetune_test.json",
                  "transfer_weights.h5", "finetune_weights.h5", "finetune_predictions.csv"):
            check(os.path.exists(os.path.join(nb, f)), f"run folder has {f}")
        check("fine-tuning from backbone layer 4" in r.stdout, "fine-tuning phase announced")
        # resuming a finished run redoes nothing
        r = run([WASTENET, "run", "--resume", nb])
        check(r.returncode == 0 and r.stdout.count("finished before this resume") == 2,
              f"resuming a finished run skips both phases {r.stdout[-300:]}")
    finally:
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"files kept in {tmp}")
    print(f"test_e2e: {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
