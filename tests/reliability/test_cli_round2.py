"""tests/reliability/test_cli_round2.py — issue 18 (reliability, round two) through the
`wastenet` command line, one section per class of the issue:

1. output paths: `export --out` a named pipe, a folder, a socket, a link to a pipe,
   /dev/stdout, /dev/null (its name is refused before anything is opened, so the case
   is safe as root too; /dev/null is checked to still be a character device), an
   empty name: exit 2 naming the path, nothing replaced; the same as `nobody`; a
   resumed run whose history.json has become a pipe: exit 1 naming it, the pipe kept;
   `--runs` a pipe; tools/plots.py with a pipe where a picture goes;
2. resume: `run --resume` of a `train` folder and the reverse, another --model,
   --image-size, --seed or --batch, renamed/added/removed class folders: exit 2 (or 1
   for the classes, found at the scan) naming what differs, the folder unchanged; a
   run folder in use (flock held) refused naming the holder's pid, a stale lock
   taken over with a note; a checksum mismatch: no "is intact" advice after it, and
   predict/export advice that fits them; a version 1 checkpoint (rebuilt from a
   version 2 one) still predicts and resumes;
3. bounds: --threads, --batch, --lr, --fine-tune-lr, --min-delta, --classes, --top,
   empty paths: exit 2 naming option, value (as given) and range, before anything is
   read or created (no run folder);
4. data scan: a linked sub-folder is counted (tf-keras), a dangling link, a pipe
   named .png, a folder linked twice, a path over PATH_MAX: refused naming the entry;
   with --skip-bad a per-class count at the end, and a training class left empty is
   refused;
5. JSON/CSV: predict --json and <phase>_predictions.csv stay valid UTF-8 JSON/CSV for
   a file name with bytes that are not UTF-8; a class folder with a newline is
   refused at the scan; an unknown option inside a short-option cluster is named;
6. SIGHUP during training: checkpoint, message, exit 129, --resume finishes; during
   set-up: exit 129 at once.
Needs only python3 (no TensorFlow), so it also runs under tools/ci_sanitize.sh.

usage: test_cli_round2.py WASTENET MAKE_BAD_CORPUS PLOTS_PY
"""
import csv
import fcntl
import io
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from nobody_exe import copy_for_nobody  # noqa: E402

WASTENET, MAKE, PLOTS = sys.argv[1:4]
failures = []
NOBODY_WASTENET = WASTENET


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def as_nobody():
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


NOBODY_ENV = {}  # what the copy run as nobody needs (copy_for_nobody)


def run(args, env=None, preexec=None, timeout=300):
    e = dict(os.environ)
    e.pop("WN_TEST_SIGNAL_AT", None)
    e.pop("WN_TEST_INTERRUPT_AFTER_STEPS", None)
    e.update(env or {})
    if preexec is as_nobody:
        e.update(NOBODY_ENV)
    exe = NOBODY_WASTENET if preexec is as_nobody else WASTENET
    return subprocess.run([exe, *args], capture_output=True, env=e, preexec_fn=preexec,
                          timeout=timeout)


def err(r):
    return r.stderr.decode("utf-8", "replace")


def out(r):
    return r.stdout.decode("utf-8", "replace")


def tail(text, n=260):
    text = text.strip()
    return text[-n:] if text else "(nothing)"


def train_args(data, runs, name, epochs=2, extra=()):
    return ["train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "8", "--epochs", str(epochs),
            "--no-early-stopping", "--runs", runs, "--name", name, "--progress", "none",
            "--no-plots", *extra]


def run_dirs(runs, name=""):
    if not os.path.isdir(runs):
        return []
    return sorted(os.path.join(runs, d) for d in os.listdir(runs) if d.endswith("-" + name)
                  or not name)


def snapshot(folder):
    res = {}
    for n in sorted(os.listdir(folder)):
        p = os.path.join(folder, n)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                res[n] = f.read()
        else:
            res[n] = stat.S_IFMT(st.st_mode)
    return res


def interrupted_run(tmp, data, name, steps="4"):
    """A train run stopped in its second epoch (3 steps per epoch): its folder."""
    runs = os.path.join(tmp, "runs_" + name)
    r = run(train_args(data, runs, name), env={"WN_TEST_INTERRUPT_AFTER_STEPS": steps})
    d = run_dirs(runs, name)
    ok = r.returncode == 130 and len(d) == 1
    check(ok, f"{name}: the interrupted run exits 130 with a folder: exit {r.returncode} "
              f"{tail(err(r))}")
    return d[0] if ok else None


# ---------------------------------------------------------------------- 1. output paths
def test_output_paths(tmp, data, ckpt):
    fifo = os.path.join(tmp, "out.fifo")
    os.mkfifo(fifo)
    folder = os.path.join(tmp, "out_folder")
    os.mkdir(folder)
    sock_path = os.path.join(tmp, "out.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(sock_path)
    link = os.path.join(tmp, "link_to_fifo.h5")
    os.symlink(fifo, link)
    cases = [(fifo, "named pipe"), (folder, "folder"), (sock_path, "socket"),
             (link, "named pipe"), ("/dev/stdout", "/dev"), ("/dev/null", "/dev"),
             ("", "empty")]
    for who in ("caller", "nobody"):
        pre = as_nobody if who == "nobody" else None
        for path, what in cases:
            kind = stat.S_IFMT(os.lstat(path).st_mode) if path else None
            r = run(["export", "--format", "h5", "--weights", ckpt, "--out", path], preexec=pre)
            check(r.returncode == 2 and what in err(r) and (path in err(r)),
                  f"export --out {path or repr('')} ({who}): exit {r.returncode} (want 2), "
                  f"names it: {tail(err(r))}")
            if path:
                check(stat.S_IFMT(os.lstat(path).st_mode) == kind,
                      f"export --out {path} ({who}): left as it was")
    check(stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is still a character device")
    check(sorted(os.listdir(folder)) == [], "nothing written into the folder")
    sock.close()
    # a good name still works
    good = os.path.join(tmp, "good.h5")
    r = run(["export", "--format", "h5", "--weights", ckpt, "--out", good])
    check(r.returncode == 0 and os.path.isfile(good), f"export to a new file: {tail(err(r))}")
    # a link to a regular file: the file is replaced, the link kept
    lk = os.path.join(tmp, "link_to_good.h5")
    os.symlink(good, lk)
    r = run(["export", "--format", "h5", "--weights", ckpt, "--out", lk])
    check(r.returncode == 0 and os.path.islink(lk), f"export through a link: {tail(err(r))}")

    # --runs a pipe
    r = run(train_args(data, fifo, "p"))
    check(r.returncode == 1 and fifo in err(r) and stat.S_ISFIFO(os.lstat(fifo).st_mode),
          f"--runs a pipe: exit {r.returncode}, named, kept: {tail(err(r))}")

    # --runs a system folder: refused before a folder is made there (root could)
    r = run(train_args(data, "/dev", "p"))
    check(r.returncode == 1 and "system folder" in err(r)
          and not [n for n in os.listdir("/dev") if n.endswith("-p")],
          f"--runs /dev: refused, nothing made in /dev: {tail(err(r))}")
    # readers: a pipe where wastenet reads is refused, never waited on
    r = run(["predict", "--weights", fifo, "--image-size", "32", fifo], timeout=60)
    check(r.returncode == 1 and "named pipe" in err(r) and fifo in err(r),
          f"predict --weights a pipe: refused at once naming it: {tail(err(r))}")
    r = run(["predict", "--weights", ckpt, "--image-size", "32", fifo], timeout=60)
    check(r.returncode == 1 and "named pipe" in err(r) and fifo in err(r),
          f"predict of an image that is a pipe: refused at once naming it: {tail(err(r))}")
    dh = interrupted_run(tmp, data, "histcsv")
    if dh:
        hist = os.path.join(dh, "history.csv")
        os.unlink(hist)
        os.mkfifo(hist)
        r = run(["train", "--resume", dh], timeout=60)
        check(r.returncode == 1 and hist in err(r) and "named pipe" in err(r),
              f"resume with history.csv a pipe: refused at once, named: {tail(err(r))}")
    # the phase checkpoint replaced by a folder: not taken for "no checkpoint yet"
    dc = interrupted_run(tmp, data, "ckdir")
    if dc:
        ck_path = os.path.join(dc, "train.ckpt")
        os.unlink(ck_path)
        os.mkdir(ck_path)
        r = run(["train", "--resume", dc])
        check(r.returncode == 2 and ck_path in err(r) and "not a regular file" in err(r)
              and os.path.isdir(ck_path) and "Epoch" not in out(r),
              f"resume with train.ckpt a folder: refused before training: {tail(err(r))}")
    # a run writer: history.json replaced by a pipe before a resume
    d = interrupted_run(tmp, data, "histfifo")
    if d:
        hist = os.path.join(d, "history.json")
        os.unlink(hist)
        os.mkfifo(hist)
        r = run(["train", "--resume", d], timeout=120)
        check(r.returncode == 1 and hist in err(r) and "named pipe" in err(r)
              and stat.S_ISFIFO(os.lstat(hist).st_mode),
              f"resume with history.json a pipe: exit {r.returncode}, named, kept: {tail(err(r))}")

    # tools/plots.py: a pipe where a picture goes (skipped without matplotlib)
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    probe = subprocess.run([py, "-c", "import matplotlib, numpy"], capture_output=True)
    if probe.returncode != 0:
        print("skip plots.py case: no matplotlib for", py)
        return
    runs = os.path.join(tmp, "runs_plots")
    r = run(train_args(data, runs, "plots", epochs=1))
    d = run_dirs(runs, "plots")
    if r.returncode == 0 and d:
        pic = os.path.join(d[0], "curves.png")
        os.mkfifo(pic)
        p = subprocess.run([py, PLOTS, d[0]], capture_output=True, text=True, timeout=120)
        check(p.returncode == 1 and pic in p.stderr and stat.S_ISFIFO(os.lstat(pic).st_mode),
              f"plots.py with curves.png a pipe: exit {p.returncode}, named, kept: "
              f"{tail(p.stderr)}")


# ---------------------------------------------------------------------- 2. resume
def ckpt_hash(data, chunks):
    """engine/checkpoint.c's checksum: FNV-1a over 8-byte words, then the tail bytes,
    of each chunk the writer hands to put() in turn."""
    h, off = 0xCBF29CE484222325, 0
    for size in chunks:
        c = data[off:off + size]
        off += size
        n = len(c) // 8 * 8
        for (w,) in struct.iter_unpack("<Q", c[:n]):
            h = ((h ^ w) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        for b in c[n:]:
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    assert off == len(data)
    return h


# put() calls of the version 1 layout: magic, version, endian, then write_header
V1_HEADER_CHUNKS = [8, 4, 4, 32, 32] + [4] * 8 + [8, 8] + [8] * 4 + \
    [8, 4, 4, 4, 8, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 4]


def to_version1(v2):
    """The same checkpoint in the version 1 layout (no run identity block)."""
    hdr_end = sum(V1_HEADER_CHUNKS)
    off = hdr_end + 32 + 4
    (n,) = struct.unpack_from("<i", v2, off)
    off += 4
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", v2, off)
        off += 4 + ln
    body = bytearray(v2[:hdr_end] + v2[off:-8])
    struct.pack_into("<I", body, 8, 1)
    n_params, n_stats, first = struct.unpack_from("<3Q", body, hdr_end - 28)
    (has_best,) = struct.unpack_from("<i", body, hdr_end - 4)
    n_train = n_params - first
    arrays = [n_params * 4, n_stats * 4, n_train * 4, n_train * 4] + ([n_train * 4] if has_best else [])
    chunks = V1_HEADER_CHUNKS + [a for a in arrays if a]
    return bytes(body) + struct.pack("<Q", ckpt_hash(bytes(body), chunks))


def test_resume(tmp, data):
    d = interrupted_run(tmp, data, "res")
    if not d:
        return
    before = snapshot(d)
    cases = [
        (["run", "--resume", d], 2, ["'wastenet train'", "train.ckpt", "wastenet train --resume"]),
        (["train", "--resume", d, "--model", "efficientnet_lite0", "--image-size", "32"], 2,
         ["--model tiny_cnn", "--model efficientnet_lite0"]),
        (["train", "--resume", d, "--image-size", "40"], 2, ["--image-size 32", "--image-size 40"]),
        (["train", "--resume", d, "--seed", "7"], 2, ["--seed 42", "--seed 7"]),
        (["train", "--resume", d, "--batch", "4"], 2, ["--batch 8", "--batch 4"]),
    ]
    for args, status, want in cases:
        r = run(args)
        check(r.returncode == status and all(w in err(r) for w in want) and snapshot(d) == before,
              f"{' '.join(a for a in args if a != d)}: exit {r.returncode} (want {status}), "
              f"says {want}, folder unchanged: {tail(err(r))}")
    # the reverse: `train --resume` of a `run` folder
    runs = os.path.join(tmp, "runs_runcmd")
    r = run(["run", "--data", data, "--model", "tiny_cnn", "--weights", "none", "--image-size",
             "32", "--batch", "8", "--epochs", "2", "--fine-tune-at", "4", "--runs", runs,
             "--name", "rc", "--progress", "none", "--no-plots"],
            env={"WN_TEST_INTERRUPT_AFTER_STEPS": "2"})
    rd = run_dirs(runs, "rc")
    if r.returncode == 130 and rd:
        snap = snapshot(rd[0])
        r = run(["train", "--resume", rd[0]])
        check(r.returncode == 2 and "'wastenet run'" in err(r) and "transfer.ckpt" in err(r)
              and snapshot(rd[0]) == snap,
              f"train --resume of a run folder: refused naming 'wastenet run': {tail(err(r))}")
    else:
        check(False, f"an interrupted `run` folder: exit {r.returncode} {tail(err(r))}")
    # class folders renamed / added / removed
    for change in ("rename", "add", "remove"):
        alt = os.path.join(tmp, "data_" + change)
        shutil.copytree(data, alt, symlinks=True)
        for split in ("train", "validation", "test"):
            base = os.path.join(alt, split)
            if change == "rename":
                os.rename(os.path.join(base, "paper"), os.path.join(base, "cardboard"))
            elif change == "add":
                shutil.copytree(os.path.join(base, "paper"), os.path.join(base, "trash"))
            else:
                shutil.rmtree(os.path.join(base, "paper"))
        r = run(["train", "--resume", d, "--data", alt])
        check(r.returncode == 1 and "classes" in err(r) and "'paper'" in err(r)
              and "relabel" in err(r) and snapshot(d) == before,
              f"resume with class folders {change}d: refused naming them, folder unchanged: "
              f"{tail(err(r))}")

    # the run-folder lock: held -> refused naming the pid; stale -> taken over
    lock = os.path.join(d, "lock")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl,os,sys,time\n"
                               "fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "open(sys.argv[2],'w').write(str(os.getpid()))\n"
                               "print('locked', flush=True); time.sleep(60)", d, lock],
                              stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    r = run(["train", "--resume", d])
    check(r.returncode == 1 and "in use" in err(r) and f"pid {holder.pid}" in err(r),
          f"resume while another process holds the folder: refused naming pid {holder.pid}: "
          f"{tail(err(r))}")
    holder.kill()
    holder.wait()
    r = run(["train", "--resume", d])
    check(r.returncode == 0 and f"process {holder.pid}" in out(r) and "taken over" in out(r),
          f"resume after the holder was killed: stale lock taken over with a note: exit "
          f"{r.returncode} {tail(out(r))} {tail(err(r))}")
    check(not os.path.exists(lock), "the lock file is removed at a normal exit")
    # two processes at once, for real: the second is refused
    d2 = interrupted_run(tmp, data, "twice")
    if d2:
        env = dict(os.environ, WN_TEST_SIGNAL_AT="")
        first = subprocess.Popen([WASTENET, "train", "--resume", d2, "--epochs", "40"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(200):  # until the first one holds the lock
            time.sleep(0.05)
            try:
                with open(os.path.join(d2, "lock")) as f:
                    if f.read().strip() == str(first.pid):
                        break
            except OSError:
                pass
        r = run(["train", "--resume", d2, "--epochs", "40"])
        first.kill()
        first.wait()
        check(r.returncode == 1 and "in use" in err(r),
              f"a second process on a folder in use is refused: {tail(err(r))}")

    # checksum mismatch: no contradictory advice; predict/export advice of their own
    d3 = interrupted_run(tmp, data, "corrupt")
    if d3:
        ck = os.path.join(d3, "train.ckpt")
        with open(ck, "rb") as f:
            good = f.read()
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF
        with open(ck, "wb") as f:
            f.write(bad)
        r = run(["train", "--resume", d3])
        e = err(r)
        check(r.returncode == 1 and "checksum mismatch" in e and "delete it" in e
              and "intact:" not in e,
              f"resume of a corrupt checkpoint: one consistent advice: {tail(e, 400)}")
        for cmd in (["predict", "--weights", ck, "--image-size", "32",
                     os.path.join(data, "test", "glass", "img00.png")],
                    ["export", "--format", "h5", "--weights", ck, "--out",
                     os.path.join(tmp, "from_corrupt.h5")]):
            r = run(cmd)
            e = err(r)
            check(r.returncode == 1 and "checksum mismatch" in e and "_weights.h5" in e
                  and "start the phase over" not in e,
                  f"{cmd[0]} of a corrupt checkpoint: advice for {cmd[0]}: {tail(e)}")
        # version 1: the same state without the identity block still loads and resumes
        with open(ck, "wb") as f:
            f.write(to_version1(good))
        r = run(["predict", "--weights", ck, "--image-size", "32",
                 os.path.join(data, "test", "glass", "img00.png")])
        check(r.returncode == 0, f"predict reads a version 1 checkpoint: {tail(err(r))}")
        r = run(["train", "--resume", d3])
        check(r.returncode == 0, f"--resume continues from a version 1 checkpoint: {tail(err(r))}")


# ---------------------------------------------------------------------- 3. bounds
def test_bounds(tmp, data):
    runs = os.path.join(tmp, "runs_bounds")
    cases = [
        (["data", "--threads", "100000", data], ["--threads 100000", "1..1024"]),
        (["data", "--threads", "40000", data], ["--threads 40000", "1..1024"]),
        (["data", "--threads", "0", data], ["--threads 0", "1..1024"]),
        (["data", "--threads", "1025", data], ["--threads 1025"]),
        (["data", ""], ["''", "empty"]),
        (["bench-loader", "--threads", "5000", data], ["--threads 5000", "1..1024"]),
        (train_args(data, runs, "b", extra=["--batch", "100000"]), ["--batch 100000", "1..65536"]),
        (train_args(data, runs, "b", extra=["--lr", "1e39"]), ["--lr 1e39", "[1e-10, 1e+06]"]),
        (train_args(data, runs, "b", extra=["--lr", "1e-50"]), ["--lr 1e-50", "[1e-10, 1e+06]"]),
        (train_args(data, runs, "b", extra=["--lr", "inf"]), ["--lr inf"]),
        (train_args(data, runs, "b", extra=["--min-delta", "5"]), ["--min-delta 5"]),
        (train_args(data, runs, "b", extra=["--epochs", "1000000"]), ["--epochs 1000000"]),
        (["run", "--fine-tune-lr", "1e39", "--data", data, "--runs", runs], ["--fine-tune-lr 1e39"]),
        (train_args("", runs, "b"), ["--data ''", "empty"]),
        (train_args(data, "", "b"), ["--runs ''", "empty"]),
        (train_args(data, runs, "b", extra=["--weights", ""]), ["--weights ''"]),
        (["train", "--resume", ""], ["--resume ''"]),
        (["predict", "--weights", "x.ckpt", "--batch", "5000", "a.png"], ["--batch 5000", "1..4096"]),
        (["predict", "--weights", "x.ckpt", "--top", "0", "a.png"], ["--top 0"]),
        (["predict", "--weights", "", "a.png"], ["--weights ''"]),
        (["export", "--format", "h5", "--weights", "x", "--out", "y", "--classes", "1"],
         ["--classes 1", "2.."]),
        (["summary", "--image-size", "0"], ["--image-size 0", "1..8192"]),
        (["summary", "--classes", "x"], ["--classes x"]),
        (["bench-ops", "--repeat", "99"], ["--repeat 99", "1..50"]),
        (["bench", "--batch", "-1"], ["--batch -1"]),
        (["imagenet", "--top", "5000", "--weights", "x", "a.png"], ["--top 5000"]),
    ]
    for args, want in cases:
        r = run(args)
        check(r.returncode == 2 and all(w in err(r) for w in want),
              f"{' '.join(args[:1] + args[-3:])}: exit {r.returncode} (want 2), says {want}: "
              f"{tail(err(r))}")
    check(not os.path.exists(runs), "no run folder (nor --runs) created by a refused option")
    # the real limit of --batch on the CPU: activations that cannot fit in the RAM
    r = run(train_args(data, runs, "big", extra=["--image-size", "2048", "--batch", "65536"]))
    check(r.returncode == 1 and "out of memory (RAM)" in err(r) and "batch 65536" in err(r)
          and "the largest batch that fits is" in err(r) and not run_dirs(runs, "big"),
          f"--batch beyond the RAM: refused before any image is decoded, with the batch that "
          f"fits: {tail(err(r))}")


# ---------------------------------------------------------------------- 4. data scan
def fresh_data(tmp, name):
    d = os.path.join(tmp, name)
    subprocess.run([MAKE, "dataset", d], check=True, capture_output=True)
    return d


def test_scan(tmp):
    # a linked sub-folder inside a class: descended, like tf-keras
    d = fresh_data(tmp, "scan_link")
    extra = os.path.join(tmp, "extra_glass")
    shutil.copytree(os.path.join(d, "train", "glass"), extra)
    os.symlink(extra, os.path.join(d, "train", "glass", "more"))
    r = run(["data", os.path.join(d, "train")])
    check(r.returncode == 0 and "Found 32 files" in out(r),
          f"a linked sub-folder is counted (tf-keras): {tail(out(r))} {tail(err(r))}")
    # the same folder linked twice: refused naming the second link
    os.symlink(extra, os.path.join(d, "train", "glass", "again"))
    r = run(["data", os.path.join(d, "train")])
    check(r.returncode == 1 and "already scanned" in err(r) and "glass/" in err(r),
          f"a folder linked twice is refused, named: {tail(err(r))}")
    # a link loop
    d = fresh_data(tmp, "scan_loop")
    os.symlink("..", os.path.join(d, "train", "glass", "up"))
    r = run(["data", os.path.join(d, "train")])
    check(r.returncode == 1 and "already scanned" in err(r),
          f"a link loop is refused: {tail(err(r))}")

    bad_entries = [
        ("dangling", lambda p: os.symlink("/nonexistent/x.png", p), "dangling.png",
         ["dangling.png", "/nonexistent/x.png", "does not exist"]),
        ("fifo", lambda p: os.mkfifo(p), "pipe.png", ["pipe.png", "named pipe"]),
    ]
    for name, make, fname, want in bad_entries:
        d = fresh_data(tmp, "scan_" + name)
        make(os.path.join(d, "train", "metal", fname))
        r = run(["data", os.path.join(d, "train")], timeout=60)
        check(r.returncode == 1 and all(w in err(r) for w in want),
              f"{name} named like an image: refused naming it: {tail(err(r))}")
        r = run(["data", "--skip-bad", os.path.join(d, "train")], timeout=60)
        check(r.returncode == 0 and "warning: skipping" in err(r) and fname in err(r),
              f"{name} with --skip-bad: one warning naming it: {tail(err(r))}")
    # a path longer than PATH_MAX inside a class folder
    d = fresh_data(tmp, "scan_long")
    deep = os.path.join(d, "train", "paper")
    fd = os.open(deep, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 x 250 bytes: over 4096
            os.mkdir("d" * 250, dir_fd=fd)
            nfd = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        img = os.open("x.png", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(img, b"\x89PNG")
        os.close(img)
    finally:
        os.close(fd)
    r = run(["data", os.path.join(d, "train")])
    check(r.returncode == 1 and "longer than the system allows" in err(r),
          f"a path over the system limit is reported: {tail(err(r), 160)}")
    # control characters in a class folder name: refused, even with --skip-bad
    d = fresh_data(tmp, "scan_newline")
    for split in ("train", "validation", "test"):
        os.rename(os.path.join(d, split, "paper"), os.path.join(d, split, "pa\nper"))
    for extra in ([], ["--skip-bad"]):
        r = run(["data", *extra, d])
        check(r.returncode == 1 and "control character" in err(r) and "pa\\x0aper" in err(r),
              f"class folder with a newline {extra}: refused at the scan: {tail(err(r))}")
    runs = os.path.join(tmp, "runs_newline")
    r = run(train_args(d, runs, "nl"))
    check(r.returncode == 1 and "control character" in err(r) and not run_dirs(runs),
          f"train on it: refused, no run folder: {tail(err(r))}")

    # --skip-bad: per-class counts at the end; an empty training class is refused
    d = fresh_data(tmp, "scan_skip")
    open(os.path.join(d, "train", "glass", "img00.png"), "wb").close()
    os.symlink("/nonexistent.png", os.path.join(d, "train", "paper", "zz.png"))
    runs = os.path.join(tmp, "runs_skip")
    r = run(train_args(d, runs, "skip", epochs=1, extra=["--skip-bad"]))
    check(r.returncode == 0 and "skipped (--skip-bad) in train: 2 (glass 1 of 8, metal 0 of 8, "
          "paper 1 of 9)" in out(r) and "skipped (--skip-bad) in validation: 0" in out(r),
          f"--skip-bad: per-class counts at the end: {tail(out(r), 400)} {tail(err(r))}")
    for f in os.listdir(os.path.join(d, "train", "glass")):
        open(os.path.join(d, "train", "glass", f), "wb").close()
    r = run(train_args(d, runs, "empty", extra=["--skip-bad"]))
    check(r.returncode == 1 and "class 'glass' has no usable image" in err(r)
          and not run_dirs(runs, "empty"),
          f"--skip-bad leaving a training class empty: refused, no run folder: {tail(err(r))}")


# ---------------------------------------------------------------------- 5. machine-read text
def test_text(tmp, data, ckpt):
    weird = os.path.join(tmp, b"img\xff\xfe\x01name.png".decode("utf-8", "surrogateescape"))
    shutil.copy(os.path.join(data, "test", "glass", "img00.png"), weird)
    r = run(["predict", "--json", "--weights", ckpt, "--image-size", "32", weird])
    try:
        doc = json.loads(r.stdout.decode("utf-8"))  # strict: the bytes must be UTF-8
        ok = len(doc["predictions"]) == 1 and "\ufffd" in doc["predictions"][0]["path"]
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        ok = False
        print("   ", e, r.stdout[:200])
    check(r.returncode == 0 and ok, f"predict --json with a non-UTF-8 file name: valid JSON")
    # a test image with such a name: the predictions CSV reads as UTF-8
    d = os.path.join(tmp, "data_weird")
    shutil.copytree(data, d)
    shutil.copy(os.path.join(d, "test", "glass", "img00.png"),
                os.path.join(d, "test", "glass",
                             b"a\xffb,\"c\".png".decode("utf-8", "surrogateescape")))
    runs = os.path.join(tmp, "runs_weird")
    r = run(train_args(d, runs, "weird", epochs=1))
    dirs = run_dirs(runs, "weird")
    ok = False
    if r.returncode == 0 and dirs:
        with open(os.path.join(dirs[0], "train_predictions.csv"), "rb") as f:
            try:
                rows = list(csv.DictReader(io.StringIO(f.read().decode("utf-8"))))
                ok = any(row["path"].endswith("a\ufffdb,\"c\".png") for row in rows)
            except UnicodeDecodeError as e:
                print("   ", e)
        for name in ("history.json", "train_test.json"):
            with open(os.path.join(dirs[0], name), "rb") as f:
                json.loads(f.read().decode("utf-8"))
    check(ok, f"train_predictions.csv is UTF-8 CSV with the odd name quoted: {tail(err(r))}")
    # a class folder whose name is not UTF-8: the reports and predict --json stay valid
    d = os.path.join(tmp, "data_weird_class")
    shutil.copytree(data, d)
    odd = b"pa\xffper".decode("utf-8", "surrogateescape")
    for split in ("train", "validation", "test"):
        os.rename(os.path.join(d, split, "paper"), os.path.join(d, split, odd))
    runs = os.path.join(tmp, "runs_weird_class")
    r = run(train_args(d, runs, "wc", epochs=1))
    dirs = run_dirs(runs, "wc")
    ok = r.returncode == 0 and bool(dirs)
    if ok:
        try:
            for name in ("train_per_class.csv", "train_confusion.csv", "train_predictions.csv"):
                with open(os.path.join(dirs[0], name), "rb") as f:
                    text = f.read().decode("utf-8")
                ok = ok and "pa\ufffdper" in text
            p = run(["predict", "--json", "--weights", os.path.join(dirs[0], "train.ckpt"),
                     "--image-size", "32", os.path.join(data, "test", "glass", "img00.png")])
            doc = json.loads(p.stdout.decode("utf-8"))
            ok = ok and "pa\ufffdper" in doc["classes"]
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            print("   ", e)
            ok = False
    check(ok, f"a class folder named with a non-UTF-8 byte: CSV reports and predict --json "
              f"are valid UTF-8: {tail(err(r))}")
    # unknown option inside a short-option cluster: that argument is named
    for args, want in [(["train", "--data", data, "-xh"], ["'-x'", "'-xh'"]),
                       (["train", "-hx"], None),  # -h first: help
                       (["data", "-qz", data], ["'-q'", "'-qz'"]),
                       (["predict", "--weights", ckpt, "-zj", "a.png"], ["'-z'", "'-zj'"]),
                       (["export", "-k"], ["'-k'"])]:
        r = run(args)
        if want is None:
            check(r.returncode == 0 and "usage" in out(r), "train -hx: -h comes first: help")
            continue
        check(r.returncode == 2 and all(w in err(r) for w in want) and "--data'" not in err(r),
              f"{' '.join(args)}: names the cluster: {tail(err(r))}")


# ---------------------------------------------------------------------- 6. SIGHUP
def test_sighup(tmp, data):
    runs = os.path.join(tmp, "runs_hup")
    r = run(train_args(data, runs, "hup", epochs=3), env={"WN_TEST_SIGNAL_AT": "train:2:1:HUP"})
    d = run_dirs(runs, "hup")
    check(r.returncode == 129 and len(d) == 1 and os.path.exists(os.path.join(d[0], "train.ckpt"))
          and "Resume with" in err(r),
          f"SIGHUP in training: checkpoint, resume message, exit 129: exit {r.returncode} "
          f"{tail(err(r))}")
    if d:
        r = run(["train", "--resume", d[0]])
        check(r.returncode == 0 and "resumed from" in out(r), f"--resume after SIGHUP: {tail(err(r))}")
    # the session gone: stdout a pipe whose reader has died (`| tee log` killed by the
    # same hang-up), then SIGHUP: no SIGPIPE death, the checkpoint is written
    env = dict(os.environ, WN_TEST_SIGNAL_AT="train:2:1:HUP")
    rd, wr = os.pipe()
    os.close(rd)
    p = subprocess.run([WASTENET, *train_args(data, runs, "hup_pipe", epochs=3)], stdout=wr,
                       stderr=subprocess.PIPE, env=env, timeout=300)
    os.close(wr)
    d = run_dirs(runs, "hup_pipe")
    check(p.returncode == 129 and len(d) == 1
          and os.path.exists(os.path.join(d[0], "train.ckpt")),
          f"SIGHUP with stdout a broken pipe: exit {p.returncode} (want 129, not killed by "
          f"SIGPIPE), checkpoint written")
    r = run(train_args(data, runs, "hup_setup"), env={"WN_TEST_SIGNAL_AT": "setup:0:0:HUP"})
    check(r.returncode == 129 and "interrupted during set-up" in err(r)
          and not run_dirs(runs, "hup_setup"),
          f"SIGHUP during set-up: exit 129 at once, no folder: exit {r.returncode} {tail(err(r))}")
    r = run(["train", "--help"])
    check("SIGHUP" in out(r) and "129" in out(r), "train --help documents SIGHUP and 129")


def main():
    global NOBODY_WASTENET
    tmp = tempfile.mkdtemp(prefix="wn_round2_")
    os.chmod(tmp, 0o755)
    NOBODY_WASTENET, env = copy_for_nobody(WASTENET, tmp)
    NOBODY_ENV.update(env)
    try:
        data = fresh_data(tmp, "data")
        runs = os.path.join(tmp, "runs_base")
        r = run(train_args(data, runs, "base", epochs=1))
        base = run_dirs(runs, "base")
        check(r.returncode == 0 and len(base) == 1, f"a base run trains: {tail(err(r))}")
        if not base:
            return 1
        ckpt = os.path.join(base[0], "train.ckpt")
        test_output_paths(tmp, data, ckpt)
        test_resume(tmp, data)
        test_bounds(tmp, data)
        test_scan(tmp)
        test_text(tmp, data, ckpt)
        test_sighup(tmp, data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"test_cli_round2: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
