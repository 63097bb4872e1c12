"""tests/reliability/test_cli_reliability.py — issue 9 through the `wastenet` command
line: every bad input and fault ends with the documented exit status and a message
that names the file, layer or option, and nothing that was written before is lost.

1. images (`wastenet data`): the committed corpus in one class folder: exit 1, each bad
   file named once with its problem, the accepted ones (16-bit, palette, CMYK,
   progressive, EXIF, 1x1, PNG named .jpg) not named; --skip-bad: exit 0, one warning
   each; a 20000x15000 PNG: refused at the default pixel limit, reported with its size
   within --max-pixels 300000000;
2. weight files (`wastenet train --weights`): truncated, empty, not HDF5, missing, wrong
   shape, wrong dtype, a missing layer, an extra layer, NaN and Inf weights: exit 1, the
   message names the file and the layer, no checkpoint or weights written; files that
   crash or hang the HDF5 library (found by fuzzing): exit 1 naming the file; the good
   files (whole model, notop, rewritten) load and train;
3. command lines: unknown options and commands, missing values, out-of-range values
   (batch 0, negative learning rate, --fine-tune-at beyond the layer count, an unknown
   model, ...): exit 2, the message names the option; a data folder with one class:
   exit 1 naming it;
4. faults: an unwritable --runs folder; a full disk (RLIMIT_FSIZE) while a checkpoint is
   written: exit 1, a message naming the file, the previous checkpoint byte-identical,
   no temporary file left, then --resume finishes; `wastenet export` over an existing
   file on a full disk / into an unwritable folder: the old file intact; kill -9 while a
   checkpoint is being written and at seeded random moments: --resume always continues
   and the final checkpoint equals an uninterrupted run's bit for bit.
Runs as `nobody` where a test needs permissions to bite (when run as root).

usage: test_cli_reliability.py WASTENET MAKE_BAD_CORPUS CORPUS_IMAGES UPSTREAM_H5
(UPSTREAM_H5: tests/fuzz/upstream/h5_keras, weight files on which Debian's HDF5 1.10.8
crashes or loops forever: wastenet must end with exit 1 and a message naming the file)
"""
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from nobody_exe import copy_for_nobody  # noqa: E402

WASTENET, MAKE, CORPUS, UPSTREAM = sys.argv[1:5]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def as_nobody():
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


def file_size_limit(n):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return limit


# `nobody` may not reach the build folder (a clone in a 0700 mkdtemp folder): main()
# copies the binary into the test's 0755 folder and runs it from there as nobody.
NOBODY_WASTENET = WASTENET


NOBODY_ENV = {}  # what the copy run as nobody needs (copy_for_nobody)


def run(args, preexec=None, env=None, timeout=300):
    exe = NOBODY_WASTENET if preexec is as_nobody else WASTENET
    if preexec is as_nobody:
        env = dict(os.environ if env is None else env, **NOBODY_ENV)
    return subprocess.run([exe, *args], capture_output=True, text=True, preexec_fn=preexec,
                          env=env, timeout=timeout)


def wait_stopped(pid, seconds=5.0):
    """Waits until process pid stands still (state T in /proc/<pid>/stat) after a SIGSTOP,
    so that what it has on disk no longer changes; returns at once if it is gone."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("T", "t", "Z", "X"):
            return
        time.sleep(0.0002)


def last_line(text, n=240):
    text = text.strip()
    return text[-n:] if text else "(nothing on stderr)"


def run_dirs(runs, name):
    return sorted(os.path.join(runs, d) for d in os.listdir(runs) if d.endswith("-" + name)) \
        if os.path.isdir(runs) else []


def temp_files(folder):
    return [f for f in os.listdir(folder) if ".tmp." in f]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def train_args(data, runs, name, weights="none", epochs=1, extra=()):
    return ["train", "--data", data, "--model", "tiny_cnn", "--weights", weights,
            "--image-size", "32", "--batch", "8", "--epochs", str(epochs), "--runs", runs,
            "--name", name, "--progress", "none", "--no-plots", *extra]


# ---------------------------------------------------------------------------- 1. images
REFUSED = {  # file -> what its message must say (host/image_decode.c)
    "empty.jpg": "empty file",
    "truncated.jpg": "truncated JPEG",
    "truncated_scan.jpg": "truncated JPEG",
    "random.jpg": "not an image",
    "huge_65500x65500.jpg": "over the limit",
    "huge_100000x100000.png": "over the limit",
    "image.gif": "GIF images are not supported",
    "image.bmp": "BMP images are not supported",
}
ACCEPTED = ["baseline.jpg", "cmyk.jpg", "exif_orientation6.jpg", "one_pixel.jpg", "one_pixel.png",
            "palette.png", "png_named.jpg", "progressive.jpg", "rgb16.png"]


def test_images(tmp):
    split = os.path.join(tmp, "images")
    os.makedirs(os.path.join(split, "bad"))
    os.makedirs(os.path.join(split, "good"))
    check(sorted(os.listdir(CORPUS)) == sorted(list(REFUSED) + ACCEPTED),
          "the test covers every file of the corpus")
    for name in os.listdir(CORPUS):
        shutil.copy(os.path.join(CORPUS, name), os.path.join(split, "bad", name))
    shutil.copy(os.path.join(CORPUS, "baseline.jpg"), os.path.join(split, "good", "a.jpg"))
    r = run(["data", split])
    check(r.returncode == 1, f"data: bad images: exit {r.returncode}, want 1")
    for name, problem in REFUSED.items():
        lines = [l for l in r.stderr.splitlines() if os.path.join(split, "bad", name) in l]
        check(len(lines) == 1 and problem in lines[0] and lines[0].startswith("error"),
              f"data: {name} reported once with '{problem}': {lines}")
    for name in ACCEPTED:
        check(name not in r.stderr, f"data: {name} is accepted (not named on stderr)")
    check(f"{len(REFUSED)} bad files" in r.stderr, "data: the count of bad files")
    r = run(["data", split, "--skip-bad"])
    warnings = [l for l in r.stderr.splitlines() if l.startswith("warning")]
    check(r.returncode == 0 and len(warnings) == len(REFUSED),
          f"data --skip-bad: exit {r.returncode}, {len(warnings)} warnings (want 0, {len(REFUSED)})")

    # the big image: 20000x15000 (300 Mpx) against the default 64 Mpx limit and within 300 Mpx
    big_split = os.path.join(tmp, "big")
    os.makedirs(os.path.join(big_split, "c"))
    big = os.path.join(big_split, "c", "big.png")
    subprocess.run([MAKE, "big", big, "20000", "15000"], check=True)
    r = run(["data", big_split])
    check(r.returncode == 1 and big in r.stderr and "20000x15000" in r.stderr
          and "--max-pixels" in r.stderr, f"data: 20000x15000 refused at the default limit, "
          f"saying how to raise it: {last_line(r.stderr)}")
    r = run(["data", big_split, "--max-pixels", "300000000", "--threads", "1"])
    check(r.returncode == 0 and "20000x15000 (1)" in r.stdout,
          f"data --max-pixels 300000000: 20000x15000 decoded: exit {r.returncode} {last_line(r.stdout + r.stderr)}")


# ---------------------------------------------------------------------------- 2. weights
WEIGHT_CASES = {  # file -> fragments its message must hold besides the file's path
    "truncated.h5": ["truncated"],
    "empty.h5": ["not an HDF5 file"],
    "not_hdf5.h5": ["not an HDF5 file"],
    "absent.h5": ["no such weight file", "weights/README.md"],
    "wrong_shape.h5": ["'conv2d_1'", "expected shape (3,3,16,32)", "found (3,3,16,33)"],
    "wrong_dtype.h5": ["'conv2d_1'", "expected float32", "found float64"],
    "missing_layer.h5": ["'batch_normalization_1'", "missing from the file"],
    "extra_layer.h5": ["'extra_conv'", "does not have"],
    "nan.h5": ["'batch_normalization_1'", "moving_variance", "NaN"],
    "inf.h5": ["'batch_normalization_1'", "moving_variance", "infinite"],
}


def test_weights(tmp, data):
    wdir = os.path.join(tmp, "weights")
    subprocess.run([MAKE, "weights", wdir], check=True)
    runs = os.path.join(tmp, "runs_w")
    for i, (name, want) in enumerate(sorted(WEIGHT_CASES.items())):
        path = os.path.join(wdir, name)
        r = run(train_args(data, runs, f"w{i}", weights=path))
        msg = r.stderr
        ok = r.returncode == 1 and path in msg and all(w in msg for w in want)
        check(ok, f"weights {name}: exit {r.returncode} (want 1), message names the file and "
                  f"{want}: {last_line(msg)}")
        for d in run_dirs(runs, f"w{i}"):
            left = [f for f in os.listdir(d) if f.endswith((".ckpt", ".h5"))]
            check(not left, f"weights {name}: nothing trained or saved ({left})")
    # files that crash or hang the HDF5 library itself: isolated in a child (host/isolate.h)
    env = dict(os.environ, WN_H5_READ_TIMEOUT="5")
    for i, name in enumerate(sorted(os.listdir(UPSTREAM))):
        path = os.path.join(UPSTREAM, name)
        r = run(train_args(data, runs, f"u{i}", weights=path), env=env, timeout=120)
        check(r.returncode == 1 and path in r.stderr,
              f"weights {name} (crashes/hangs HDF5 1.10.8): exit {r.returncode} (want 1), "
              f"the file named: {last_line(r.stderr)}")
    for i, name in enumerate(["good_whole.h5", "good_notop.h5", "rewritten_notop.h5"]):
        r = run(train_args(data, runs, f"g{i}", weights=os.path.join(wdir, name)))
        check(r.returncode == 0 and "weights: " + os.path.join(wdir, name) in r.stdout,
              f"weights {name}: loads and trains (exit {r.returncode}) {last_line(r.stderr)}")


# ---------------------------------------------------------------------------- 3. command lines
def test_command_lines(tmp, data):
    runs = os.path.join(tmp, "runs_c")
    cases = [  # (args after the base, exit status, fragments of the message)
        (["--frobnicate"], 2, ["unknown option", "--frobnicate"]),
        (["--batch"], 2, ["--batch", "needs a value"]),
        (["--batch", "0"], 2, ["--batch 0", "positive integer"]),
        (["--batch", "-4"], 2, ["--batch -4"]),
        (["--batch", "x"], 2, ["--batch x"]),
        (["--lr", "-0.001"], 2, ["--lr -0.001", "positive number"]),
        (["--lr", "0"], 2, ["--lr 0"]),
        (["--lr", "nan"], 2, ["--lr nan"]),
        (["--epochs", "0"], 2, ["--epochs 0"]),
        (["--image-size", "0"], 2, ["--image-size 0"]),
        (["--patience", "-1"], 2, ["--patience -1"]),
        (["--min-delta", "-1"], 2, ["--min-delta -1"]),
        (["--rotation", "2"], 2, ["--rotation 2"]),
        (["--seed", "-1"], 2, ["--seed -1"]),
        (["--restore", "sometimes"], 2, ["--restore sometimes"]),
        (["--backend", "tpu"], 2, ["--backend tpu"]),
        (["--fine-tune-at", "-3"], 2, ["--fine-tune-at -3"]),
        (["--fine-tune-lr", "1e-4"], 2, ["--fine-tune-lr", "wastenet run"]),
        (["stray"], 2, ["unexpected argument 'stray'"]),
        # the range depends on the model: checked before any data is read, still bad
        # usage (tests/reliability/test_cli_startup.py checks the "before")
        (["--fine-tune-at", "11"], 2, ["--fine-tune-at 11", "10 layers", "0..10"]),
        (["--model", "resnet9000"], 2, ["unknown model 'resnet9000'"]),
        (["--data", os.path.join(tmp, "nowhere")], 1, [os.path.join(tmp, "nowhere", "train"), "not found"]),
        (["--resume", os.path.join(tmp, "nowhere")], 2, ["cannot resume", os.path.join(tmp, "nowhere")]),
    ]
    for extra, status, want in cases:
        r = run(train_args(data, runs, "c", extra=extra))
        check(r.returncode == status and all(w in r.stderr for w in want),
              f"train {' '.join(extra)}: exit {r.returncode} (want {status}), message has {want}: "
              f"{last_line(r.stderr)}")
    # `run` checks its fine-tuning boundary before transfer learning starts
    r = run(["run", *train_args(data, runs, "c")[1:], "--fine-tune-at", "11"])
    check(r.returncode == 2 and "--fine-tune-at 11" in r.stderr and "Epoch" not in r.stdout,
          f"run --fine-tune-at 11: refused before training: exit {r.returncode} {last_line(r.stderr)}")
    for args, status, want in [
            (["frobnicate"], 2, ["unknown command 'frobnicate'"]),
            (["data", "--bogus"], 2, ["--bogus"]),
            (["data", data, "--max-pixels", "0"], 2, ["--max-pixels"]),
            (["export", "--bogus"], 2, ["--bogus"])]:
        r = run(args)
        check(r.returncode == status and all(w in r.stderr for w in want),
              f"{' '.join(args)}: exit {r.returncode} (want {status}), message has {want}: "
              f"{last_line(r.stderr, 120)}")
    # a data folder with one class
    one = os.path.join(tmp, "one_class")
    for split in ("train", "validation", "test"):
        shutil.copytree(os.path.join(data, split, "glass"), os.path.join(one, split, "glass"))
    r = run(train_args(one, runs, "one"))
    check(r.returncode == 1 and os.path.join(one, "train") in r.stderr and "at least 2" in r.stderr,
          f"one class: exit {r.returncode}, message names the folder: {last_line(r.stderr)}")


# ---------------------------------------------------------------------------- 4. faults
def test_unwritable(tmp, data):
    locked = os.path.join(tmp, "locked_runs")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    r = run(train_args(data, locked, "u"), preexec=as_nobody)
    check(r.returncode == 1 and locked in r.stderr and os.listdir(locked) == [],
          f"unwritable --runs: exit {r.returncode}, names the folder, creates nothing: "
          f"{last_line(r.stderr)}")
    os.chmod(locked, 0o755)


def test_full_disk(tmp, data):
    runs = os.path.join(tmp, "runs_full")
    env = dict(os.environ, WN_TEST_INTERRUPT_AFTER_STEPS="4")  # 3 steps per epoch: mid epoch 2
    r = run(train_args(data, runs, "full", epochs=4, extra=["--no-early-stopping"]), env=env)
    d = run_dirs(runs, "full")[0]
    ckpt = os.path.join(d, "train.ckpt")
    check(r.returncode == 130 and os.path.exists(ckpt), f"full disk: set-up interrupted run "
          f"(exit {r.returncode}) {last_line(r.stderr)}")
    before = read(ckpt)
    history_before = read(os.path.join(d, "history.csv"))
    # every file over 20 kB now fails to be written (the checkpoint is ~60 kB)
    r = run(["train", "--resume", d], preexec=file_size_limit(20000))
    check(r.returncode == 1 and "cannot write" in r.stderr and ckpt in r.stderr,
          f"full disk: exit {r.returncode} (want 1), 'cannot write {ckpt}': {last_line(r.stderr)}")
    check(read(ckpt) == before, "full disk: the previous checkpoint is byte-identical")
    check(read(os.path.join(d, "history.csv")).startswith(history_before.rstrip(b"\n")) or
          read(os.path.join(d, "history.csv")) == history_before,
          "full disk: history.csv still holds the finished epochs")
    check(temp_files(d) == [], f"full disk: no temporary file left ({temp_files(d)})")
    r = run(["train", "--resume", d])
    check(r.returncode == 0, f"full disk: --resume with space again finishes (exit {r.returncode}) "
                             f"{last_line(r.stderr)}")
    return d


def test_export_faults(tmp, ckpt):
    out_dir = os.path.join(tmp, "exports")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "model.h5")
    r = run(["export", "--format", "h5", "--weights", ckpt, "--out", out])
    check(r.returncode == 0 and os.path.exists(out), f"export: baseline export (exit {r.returncode}) "
                                                     f"{last_line(r.stderr)}")
    if not os.path.exists(out):
        return
    old = read(out)
    r = run(["export", "--format", "h5", "--weights", ckpt, "--out", out],
            preexec=file_size_limit(20000))
    check(r.returncode == 1 and out in r.stderr, f"export on a full disk: exit {r.returncode}, "
                                                 f"names the file: {last_line(r.stderr)}")
    check(read(out) == old and temp_files(out_dir) == [],
          f"export on a full disk: the old file intact, no temporary left ({temp_files(out_dir)})")
    os.chmod(out_dir, 0o555)
    r = run(["export", "--format", "h5", "--weights", ckpt, "--out", out], preexec=as_nobody)
    check(r.returncode == 1 and out in r.stderr and read(out) == old,
          f"export into an unwritable folder: exit {r.returncode}, old file intact: {last_line(r.stderr)}")
    os.chmod(out_dir, 0o755)


def run_killed(args, when):
    """Starts wastenet, kills it with SIGKILL when `when(proc)` says so; returns exit status."""
    p = subprocess.Popen([WASTENET, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None:
        if when(p):
            p.kill()
            break
        time.sleep(0.0005)
    return p.wait()


def valid_reports(d):
    """The run folder's finished files parse (no half-written file under its final name)."""
    ok = True
    for name in os.listdir(d):
        if name.endswith(".json") and ".tmp." not in name:
            try:
                json.loads(read(os.path.join(d, name)))
            except ValueError:
                ok = False
    return ok


def test_kill9(tmp, data):
    runs = os.path.join(tmp, "runs_kill")
    args = lambda name: train_args(data, runs, name, epochs=5, extra=["--no-early-stopping"])
    r = run(args("ref"))
    ref = run_dirs(runs, "ref")[0]
    check(r.returncode == 0, f"kill -9: the uninterrupted run (exit {r.returncode}) {last_line(r.stderr)}")
    final = read(os.path.join(ref, "train.ckpt"))

    # (a) killed while the checkpoint is being written, with its temporary file on disk:
    # stopped (SIGSTOP) when "train.ckpt.tmp.<pid>" appears; if the file is still there
    # once the process stands still it is killed, else it goes on to the next write.
    # docs/TRAINING.md: --resume removes the temporary and ends bit-identical.
    d, left = None, []
    for attempt in range(5):
        name = f"w{attempt}"
        p = subprocess.Popen([WASTENET, *args(name)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        while p.poll() is None:
            dirs = run_dirs(runs, name)
            if dirs and any(f.startswith("train.ckpt.tmp.") for f in os.listdir(dirs[0])):
                p.send_signal(signal.SIGSTOP)
                wait_stopped(p.pid)  # a signal is delivered asynchronously: look only then
                left = [f for f in os.listdir(dirs[0]) if f.startswith("train.ckpt.tmp.")]
                if left:
                    p.kill()
                else:
                    p.send_signal(signal.SIGCONT)
            if left:
                break
            time.sleep(0.0002)
        status = p.wait()
        if left:
            d = run_dirs(runs, name)[0]
            break
    check(d is not None and status == -signal.SIGKILL and left == [f"train.ckpt.tmp.{p.pid}"],
          f"kill -9 while train.ckpt.tmp.<pid> exists (caught at attempt {attempt + 1}: {left})")
    if d:
        check(valid_reports(d), "kill -9 during a checkpoint write: every report parses")
        r = run(["train", "--resume", d])
        check(r.returncode == 0 and read(os.path.join(d, "train.ckpt")) == final,
              f"kill -9 during a checkpoint write + --resume = uninterrupted run "
              f"(exit {r.returncode}) {last_line(r.stderr)}")
        check(temp_files(d) == [] and f"removed {os.path.join(d, left[0])}" in r.stdout,
              f"--resume removed the killed write's temporary ({temp_files(d)} left)")

    # (b) killed at seeded random moments, each resume killed again, until one finishes
    rng = random.Random(9)
    d = None
    finished = False
    for attempt in range(12):
        delay = rng.uniform(0.05, 2.0)
        t0 = time.monotonic()
        a = args("k") if d is None else ["train", "--resume", d]
        status = run_killed(a, lambda p: time.monotonic() - t0 > delay)
        if d is None:
            dirs = run_dirs(runs, "k")
            d = dirs[0] if dirs else None
            if d and not os.path.exists(os.path.join(d, "command.txt")):
                shutil.rmtree(d)  # killed before the run folder was complete: start again
                d = None
        if status == 0:
            finished = True
            break
        if d:
            check(valid_reports(d), f"kill -9 after {delay:.2f} s: every report parses")
    if d and not finished:
        r = run(["train", "--resume", d])
        finished = r.returncode == 0
    check(finished and d and read(os.path.join(d, "train.ckpt")) == final,
          f"kill -9 at {attempt + 1} random moments + --resume = uninterrupted run (bit-equal checkpoint)")


def main():
    global NOBODY_WASTENET
    tmp = tempfile.mkdtemp(prefix="wn_reliability_")
    os.chmod(tmp, 0o755)
    NOBODY_WASTENET, env = copy_for_nobody(WASTENET, tmp)
    NOBODY_ENV.update(env)
    try:
        data = os.path.join(tmp, "data")
        subprocess.run([MAKE, "dataset", data], check=True)
        test_images(tmp)
        test_weights(tmp, data)
        test_command_lines(tmp, data)
        test_unwritable(tmp, data)
        d = test_full_disk(tmp, data)
        test_export_faults(tmp, os.path.join(d, "train.ckpt"))
        test_kill9(tmp, data)
    finally:
        for dirpath, dirs, _ in os.walk(tmp):
            for x in dirs:
                os.chmod(os.path.join(dirpath, x), 0o755)
        if failures:
            print(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"test_cli_reliability: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
