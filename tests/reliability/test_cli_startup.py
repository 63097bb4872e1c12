"""tests/reliability/test_cli_startup.py — `wastenet train/run` before and between the
epochs: the loader options, checks that need the model, the run folder of a run that
cannot start, and what Ctrl-C/SIGTERM does during set-up and inside a validation or
test pass.

1. options: --max-pixels, --cache auto|ram|stream and --cache-budget on train/run
   (--max-pixels on predict), in --help; bad values exit 2 naming the option; the
   pixel limit refuses (or with --skip-bad skips) an image over it, at the exact
   boundary; every cache mode trains to the same checkpoint, bit for bit; auto mode
   shares one budget between the splits;
2. values the chosen model cannot take (--fine-tune-at beyond its layers, an image
   size below its minimum, an unknown model) exit 2 naming the option and the valid
   range, before any data is read (with a --data folder that does not exist, the
   message is about the option; also when resuming);
3. a run that fails during start-up (bad weight file, found before any image is
   decoded; one class; a pixel-limit refusal; a full disk while the run folder's
   first files are written) leaves no run folder; a resumed run whose set-up fails
   leaves its folder as it was;
4. a signal during set-up exits 130 at once with a message (nothing to resume): one
   raised at a fixed point (WN_TEST_SIGNAL_AT), a real SIGINT from outside while the
   training images are still being decoded, one while the run folder is being
   created (the folder removed), one during a resume's set-up (the folder unchanged);
5. a signal inside a validation pass takes effect after the current batch: exit 130
   with the resume command, the partial validation discarded, and --resume ends with
   the uninterrupted run's checkpoint bit for bit and the same history; the same in a
   test pass (nothing written; the resume evaluates again and writes the same
   predictions), for `train` and for `run`'s transfer phase.
Needs only python3 (no TensorFlow), so it also runs under tools/ci_sanitize.sh.

usage: test_cli_startup.py WASTENET MAKE_SHAPES MAKE_BAD_CORPUS
"""
import csv
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

WASTENET, MAKE_SHAPES, MAKE_BAD = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args, env=None, preexec=None, timeout=300):
    e = dict(os.environ)
    e.pop("WN_TEST_SIGNAL_AT", None)
    e.update(env or {})
    return subprocess.run([WASTENET, *args], capture_output=True, text=True, env=e,
                          preexec_fn=preexec, timeout=timeout)


def tail(text, n=240):
    text = text.strip()
    return text[-n:] if text else "(nothing)"


def train_args(data, runs, name, epochs=4, extra=()):
    return ["train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "16", "--epochs", str(epochs),
            "--no-early-stopping", "--fine-tune-at", "all", "--runs", runs, "--name", name,
            "--progress", "lines", "--no-plots", *extra]


def run_args(data, runs, name):
    return ["run", "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "16", "--epochs", "2", "--fine-tune-at", "4",
            "--fine-tune-lr", "1e-3", "--runs", runs, "--name", name, "--progress", "lines",
            "--no-plots"]


def run_dirs(runs, name):
    if not os.path.isdir(runs):
        return []
    return sorted(os.path.join(runs, d) for d in os.listdir(runs) if d.endswith("-" + name))


def one_dir(runs, name):
    d = run_dirs(runs, name)
    return d[0] if len(d) == 1 else None


def read(path):
    with open(path, "rb") as f:
        return f.read()


def snapshot(folder):
    """Every file of a folder with its bytes: to show it was left as it was."""
    return {n: read(os.path.join(folder, n)) for n in sorted(os.listdir(folder))}


def history(d):
    if not os.path.exists(os.path.join(d, "history.csv")):
        return []
    with open(os.path.join(d, "history.csv"), newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def ckpt_header(data):
    """(phase, epoch, step, status) from a checkpoint (layout in engine/train/checkpoint.h)."""
    off = 8 + 4 + 4
    phase = data[off:off + 32].split(b"\0")[0].decode()
    h, w, k, ft, epoch, step, emax, status = struct.unpack_from("<8i", data, off + 64)
    return phase, epoch, step, status


# ---------------------------------------------------------------------------- 1. options
def test_options(tmp, data, runs, ref):
    for cmd in ("train", "run"):
        out = run([cmd, "--help"]).stdout
        check(all(o in out for o in ("--max-pixels N", "--cache MODE", "--cache-budget SIZE",
                                     "auto", "ram", "stream")),
              f"{cmd} --help describes --max-pixels, --cache and --cache-budget")
    out = run(["predict", "--help"]).stdout
    check("--max-pixels N" in out, "predict --help describes --max-pixels")
    for extra, want in [(["--max-pixels", "0"], "--max-pixels 0"),
                        (["--max-pixels", "many"], "--max-pixels many"),
                        (["--cache", "disk"], "--cache disk"),
                        (["--cache-budget", "0"], "--cache-budget 0"),
                        (["--cache-budget", "-1G"], "--cache-budget -1G"),
                        (["--cache-budget", "12X"], "--cache-budget 12X"),
                        (["--cache-budget", "1.5"], "--cache-budget 1.5")]:
        r = run(train_args(data, runs, "bad", extra=extra))
        check(r.returncode == 2 and want in r.stderr,
              f"train {' '.join(extra)}: exit {r.returncode} (want 2) naming the option: "
              f"{tail(r.stderr)}")
    r = run(["predict", "--weights", "x.ckpt", "--max-pixels", "0", "a.png"])
    check(r.returncode == 2 and "--max-pixels 0" in r.stderr,
          f"predict --max-pixels 0: exit {r.returncode} (want 2): {tail(r.stderr)}")

    # the pixel limit: one 3000x2000 image (6,000,000 pixels) among the training images
    big_data = os.path.join(tmp, "big_data")
    shutil.copytree(data, big_data)
    big = os.path.join(big_data, "train", "circle", "zz_big.png")
    subprocess.run([MAKE_BAD, "big", big, "3000", "2000"], check=True)
    r = run(train_args(big_data, runs, "px_low", extra=["--max-pixels", "5999999"]))
    check(r.returncode == 1 and big in r.stderr and "over the limit of 5999999 pixels" in r.stderr
          and "--max-pixels" in r.stderr,
          f"--max-pixels 5999999: the 3000x2000 image refused, naming it: {tail(r.stderr)}")
    check(run_dirs(runs, "px_low") == [], "a pixel-limit refusal at set-up leaves no run folder")
    r = run(train_args(big_data, runs, "px_skip", epochs=1,
                       extra=["--max-pixels", "5999999", "--skip-bad"]))
    check(r.returncode == 0 and f"warning: skipping {big}" in r.stderr,
          f"--max-pixels 5999999 --skip-bad: skipped with a warning, trains: {tail(r.stderr)}")
    r = run(train_args(big_data, runs, "px_ok", epochs=1, extra=["--max-pixels", "6000000"]))
    check(r.returncode == 0 and "Found 181 files" in r.stdout,
          f"--max-pixels 6000000: the 3000x2000 image is within the limit: {tail(r.stderr)}")
    # predict honours it too
    ckpt = os.path.join(ref, "train.ckpt")
    r = run(["predict", "--weights", ckpt, "--max-pixels", "5999999", big])
    check(r.returncode == 1 and big in r.stderr and "over the limit" in r.stderr,
          f"predict --max-pixels 5999999 refuses the image: {tail(r.stderr)}")
    r = run(["predict", "--weights", ckpt, big])
    check(r.returncode == 0 and big in r.stdout, f"predict: within the default limit: {tail(r.stderr)}")

    # every cache mode gives the same batches, hence the same checkpoint
    final = read(os.path.join(ref, "train.ckpt"))
    for name, extra, lines in [
            ("ram", ["--cache", "ram"], ["train: decoding into RAM", "validation: decoding into RAM"]),
            ("stream", ["--cache", "stream"], ["train: streamed", "validation: streamed",
                                               "test: streamed"]),
            # 180 + 60 + 60 images of 32x32x3 = 552,960 + 184,320 + 184,320 bytes: a
            # 700K budget holds the training split, not the validation split after it
            ("budget", ["--cache-budget", "700K"], ["train: decoding into RAM",
                                                    "validation: streamed from the files every "
                                                    "epoch (over the --cache-budget left)"]),
            ("budget_all", ["--cache", "auto", "--cache-budget", "1G"],
             ["train: decoding into RAM", "test: decoding into RAM"])]:
        r = run(train_args(data, runs, "cache_" + name, extra=extra))
        d = one_dir(runs, "cache_" + name)
        check(r.returncode == 0 and all(l in r.stdout for l in lines) and d
              and read(os.path.join(d, "train.ckpt")) == final,
              f"{' '.join(extra)}: {lines} and the uninterrupted run's checkpoint "
              f"(exit {r.returncode}) {tail(r.stderr)}")


# ---------------------------------------------------------------------------- 2. model checks
def test_model_checks(tmp, runs, ref):
    nowhere = os.path.join(tmp, "no_such_data")
    for cmd, extra, want in [
            ("train", ["--fine-tune-at", "11"], ["--fine-tune-at 11", "10 layers", "0..10"]),
            ("run", ["--fine-tune-at", "11"], ["--fine-tune-at 11", "10 layers", "0..10"]),
            ("train", ["--image-size", "4"], ["--image-size 4", "at least 8x8", "8..8192"]),
            ("train", ["--model", "efficientnet_lite0", "--image-size", "31"],
             ["--image-size 31", "at least 32x32", "32..8192"]),
            ("train", ["--model", "irv2", "--image-size", "75", "--fine-tune-at", "781"],
             ["--fine-tune-at 781", "780 layers", "0..780"]),
            ("train", ["--model", "resnet9000"], ["--model resnet9000", "unknown model",
                                                  "tiny_cnn"])]:
        args = [cmd, "--data", nowhere, "--model", "tiny_cnn", "--weights", "none",
                "--image-size", "32", "--runs", runs, "--name", "mc", *extra]
        t0 = time.monotonic()
        r = run(args)
        check(r.returncode == 2 and all(w in r.stderr for w in want) and "Found" not in r.stdout
              and nowhere not in r.stderr and run_dirs(runs, "mc") == [],
              f"{cmd} {' '.join(extra)}: exit {r.returncode} (want 2) before the data is read, "
              f"naming {want}: {tail(r.stderr)} ({time.monotonic() - t0:.2f} s)")
    before = snapshot(ref)
    r = run(["train", "--resume", ref, "--fine-tune-at", "11"])
    check(r.returncode == 2 and "--fine-tune-at 11" in r.stderr and snapshot(ref) == before,
          f"--resume with --fine-tune-at 11: exit {r.returncode} (want 2), the run folder "
          f"unchanged: {tail(r.stderr)}")


# ---------------------------------------------------------------------------- 3. run folders
def test_startup_failures(tmp, data, runs, ref):
    not_h5 = os.path.join(tmp, "not_weights.h5")
    with open(not_h5, "w") as f:
        f.write("these are not weights\n")
    r = run(train_args(data, runs, "sf_weights", extra=["--weights", not_h5]))
    check(r.returncode == 1 and not_h5 in r.stderr and run_dirs(runs, "sf_weights") == []
          and "decoding into RAM" not in r.stdout,
          f"a bad weight file: exit {r.returncode}, found before any image is decoded, no run "
          f"folder left: {tail(r.stderr)}")
    one = os.path.join(tmp, "one_class")
    for split in ("train", "validation", "test"):
        shutil.copytree(os.path.join(data, split, "circle"), os.path.join(one, split, "circle"))
    r = run(train_args(one, runs, "sf_one"))
    check(r.returncode == 1 and "at least 2" in r.stderr and run_dirs(runs, "sf_one") == [],
          f"one class: exit {r.returncode}, no run folder left: {tail(r.stderr)}")

    # a full disk while the new folder's first files are written: the augmentation
    # preview (~15 kB) fails after command.txt and classes.txt were written
    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    r = run(train_args(data, runs, "sf_full"), preexec=small_files)
    check(r.returncode == 1 and "augment_preview.npy" in r.stderr
          and run_dirs(runs, "sf_full") == [],
          f"a write failing while the run folder is made: exit {r.returncode}, the folder "
          f"removed: {tail(r.stderr)} {run_dirs(runs, 'sf_full')}")
    # a resumed run whose set-up fails: its folder (with its checkpoint) stays as it was
    before = snapshot(ref)
    r = run(["train", "--resume", ref, "--data", os.path.join(tmp, "gone")])
    check(r.returncode == 1 and "gone" in r.stderr and snapshot(ref) == before,
          f"--resume whose set-up fails: exit {r.returncode}, the folder unchanged: {tail(r.stderr)}")


# ---------------------------------------------------------------------------- 4. set-up signals
def test_setup_signals(tmp, data, runs, ref):
    for spec, name in [("setup", "sig_setup"), ("setup:0:0:TERM", "sig_setup_term")]:
        r = run(train_args(data, runs, name), env={"WN_TEST_SIGNAL_AT": spec})
        check(r.returncode == 130 and "interrupted during set-up" in r.stderr
              and "nothing to resume" in r.stderr and "stopping after" not in r.stderr
              and "Epoch" not in r.stdout and run_dirs(runs, name) == [],
              f"signal during set-up ({spec}): exit {r.returncode} (want 130) at once with a "
              f"message, no run folder: {tail(r.stderr)}")
    r = run(train_args(data, runs, "sig_folder"), env={"WN_TEST_SIGNAL_AT": "folder"})
    check(r.returncode == 130 and "interrupted during set-up" in r.stderr
          and run_dirs(runs, "sig_folder") == [] and "Epoch" not in r.stdout,
          f"signal while the run folder is made: exit {r.returncode}, the folder removed: "
          f"{tail(r.stderr)} {run_dirs(runs, 'sig_folder')}")

    # a real SIGINT from outside while the training images decode: 150 links to a
    # 6000x4000 PNG (24 Mpx each) take seconds to decode; the process must end long
    # before the validation split is even scanned
    slow = os.path.join(tmp, "slow_data")
    shutil.copytree(data, slow)
    big = os.path.join(tmp, "big6000.png")
    subprocess.run([MAKE_BAD, "big", big, "6000", "4000"], check=True)
    for i in range(150):
        os.link(big, os.path.join(slow, "train", "circle", f"big{i:03d}.png"))
    env = dict(os.environ)
    env.pop("WN_TEST_SIGNAL_AT", None)
    p = subprocess.Popen([WASTENET, *train_args(slow, runs, "sig_real", extra=["--cache", "ram"])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in p.stdout:
        seen.append(line)
        if line.startswith("train: decoding into RAM"):
            break
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    took = time.monotonic() - t0
    out = "".join(seen) + out
    check(p.returncode == 130 and "interrupted during set-up" in err and "validation" not in out
          and run_dirs(runs, "sig_real") == [] and took < 5,
          f"a real SIGINT while the training images decode: exit {p.returncode} after "
          f"{took:.2f} s, before the validation split: {tail(err)}")

    # --resume removes the temporaries of processes that are gone, not of live ones
    copy = os.path.join(runs, "20000101-000000-tmp_copy")
    shutil.copytree(ref, copy)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = os.path.join(copy, f"train.ckpt.tmp.{gone.pid}")
    live = os.path.join(copy, f"history.json.tmp.{os.getpid()}")
    for path in (dead, live):
        with open(path, "wb") as f:
            f.write(b"half a file")
    r = run(["train", "--resume", copy])
    check(r.returncode == 0 and not os.path.exists(dead) and os.path.exists(live)
          and f"removed {dead}" in r.stdout,
          f"--resume removes a dead process's temporary, keeps a live one's: {tail(r.stdout)}")
    shutil.rmtree(copy)

    # during a resume's set-up: the run folder is left exactly as it was
    before = snapshot(ref)
    r = run(["train", "--resume", ref], env={"WN_TEST_SIGNAL_AT": "setup"})
    check(r.returncode == 130 and "interrupted during set-up" in r.stderr
          and f"--resume {ref}" in r.stderr and snapshot(ref) == before,
          f"signal during a resume's set-up: exit {r.returncode}, the folder unchanged: "
          f"{tail(r.stderr)}")


# ---------------------------------------------------------------------------- 5. eval signals
def test_eval_signals(tmp, data, runs, ref):
    final = read(os.path.join(ref, "train.ckpt"))
    ref_history = history(ref)
    # 180 training images / batch 16 = 12 steps; 60 validation images = 4 batches. After
    # a middle batch the pass stops and is discarded (the checkpoint: the epoch's 12
    # steps done); after the last one the pass is complete and the epoch ends as usual.
    for spec, name, said, header, rows in [
            ("validation:2:2", "val_int", "interrupted during epoch 2's validation",
             ("train", 1, 12, 0), 1),
            ("validation:1:1:TERM", "val_term", "interrupted during epoch 1's validation",
             ("train", 0, 12, 0), 0),
            ("validation:3:4", "val_last", "interrupted after epoch 3", ("train", 3, 0, 0), 3)]:
        r = run(train_args(data, runs, name), env={"WN_TEST_SIGNAL_AT": spec})
        d = one_dir(runs, name)
        ok = r.returncode == 130 and d is not None
        check(ok and said in r.stderr and f"Resume with: wastenet train --resume {d}" in r.stderr,
              f"signal in validation ({spec}): exit {r.returncode} (want 130), '{said}' and the "
              f"resume command: {tail(r.stderr)}")
        if not ok:
            continue
        hdr = ckpt_header(read(os.path.join(d, "train.ckpt")))
        check(hdr == header and len(history(d)) == rows,
              f"{spec}: checkpoint (phase, epoch, step, status) {hdr}, want {header}; "
              f"{len(history(d))} history rows, want {rows}")
        check(not os.path.exists(os.path.join(d, "train_test.json")),
              f"{spec}: no test evaluation after the interruption")
        r = run(["train", "--resume", d])
        check(r.returncode == 0 and read(os.path.join(d, "train.ckpt")) == final
              and history(d) == ref_history,
              f"{spec} + --resume = the uninterrupted run (checkpoint bit for bit, history) "
              f"(exit {r.returncode}) {tail(r.stderr)}")

    # the test pass: 60 images = 4 batches; stop after the 2nd
    r = run(train_args(data, runs, "test_int"), env={"WN_TEST_SIGNAL_AT": "test:1:2"})
    d = one_dir(runs, "test_int")
    check(r.returncode == 130 and d and "interrupted during the test evaluation" in r.stderr
          and "evaluating" in r.stdout and "accuracy on test set" not in r.stdout
          and not os.path.exists(os.path.join(d, "train_test.json"))
          and not os.path.exists(os.path.join(d, "train_predictions.csv")),
          f"signal in the test pass: exit {r.returncode}, stopped there, nothing written: "
          f"{tail(r.stderr)}")
    if d:
        r = run(["train", "--resume", d])
        check(r.returncode == 0 and read(os.path.join(d, "train.ckpt")) == final
              and read(os.path.join(d, "train_predictions.csv")) ==
              read(os.path.join(ref, "train_predictions.csv"))
              and read(os.path.join(d, "train_test.json")) == read(os.path.join(ref, "train_test.json")),
              f"test pass interrupted + --resume: the same checkpoint, test results and "
              f"predictions as the uninterrupted run (exit {r.returncode}) {tail(r.stderr)}")

    # `run`: a signal in transfer learning's test pass stops before fine-tuning
    r = run(run_args(data, runs, "nb_ref"))
    nb_ref = one_dir(runs, "nb_ref")
    check(r.returncode == 0 and nb_ref, f"run: the uninterrupted run (exit {r.returncode})")
    r = run(run_args(data, runs, "nb_int"), env={"WN_TEST_SIGNAL_AT": "test:1:1"})
    d = one_dir(runs, "nb_int")
    check(r.returncode == 130 and d and "Resume with: wastenet run --resume" in r.stderr
          and not os.path.exists(os.path.join(d, "finetune.ckpt")),
          f"run: signal in transfer's test pass: exit {r.returncode}, fine-tuning not started: "
          f"{tail(r.stderr)}")
    if d and nb_ref:
        r = run(["run", "--resume", d])
        check(r.returncode == 0 and all(
            read(os.path.join(d, f)) == read(os.path.join(nb_ref, f))
            for f in ("transfer.ckpt", "finetune.ckpt", "transfer_predictions.csv",
                      "finetune_predictions.csv")),
              f"run: + --resume = the uninterrupted run, both phases (exit {r.returncode}) "
              f"{tail(r.stderr)}")


def main():
    tmp = tempfile.mkdtemp(prefix="wn_startup_")
    try:
        data = os.path.join(tmp, "shapes")
        runs = os.path.join(tmp, "runs")
        subprocess.run([MAKE_SHAPES, data], check=True, capture_output=True)
        r = run(train_args(data, runs, "ref"))
        ref = one_dir(runs, "ref")
        check(r.returncode == 0 and ref, f"the uninterrupted reference run (exit {r.returncode}) "
                                         f"{tail(r.stderr)}")
        if not ref:
            return 1
        test_options(tmp, data, runs, ref)
        test_model_checks(tmp, runs, ref)
        test_startup_failures(tmp, data, runs, ref)
        test_setup_signals(tmp, data, runs, ref)
        test_eval_signals(tmp, data, runs, ref)
    finally:
        if failures:
            print(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"test_cli_startup: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
