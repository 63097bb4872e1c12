"""tests/host/test_cli_bad_inputs.py — issue 2 item 6 through the CLI (`wastenet data`):
bad input never crashes and never vanishes silently. By default the command fails
(exit 1) with a message naming each bad file or folder and its problem; with
--skip-bad it exits 0 with one warning per bad item and a count at the end.

Cases: zero-byte, truncated and random-byte files named .jpg, a PNG named .jpg
(decoded: content is sniffed), JPEG and PNG headers claiming 65000x65000 and
100000x100000 pixels, GIF/BMP (refused), an unreadable file and an unreadable
folder (checked as `nobody` when run as root), an empty class folder, a missing
split folder, validation classes that differ from training's.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from nobody_exe import copy_for_nobody  # noqa: E402

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def as_nobody():
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


NOBODY_ENV = {}  # what the copy run as nobody needs (copy_for_nobody)


def run(wastenet, *args, nobody=False):
    r = subprocess.run([wastenet, "data", *args], capture_output=True, text=True,
                       preexec_fn=as_nobody if nobody else None,
                       env=dict(os.environ, **NOBODY_ENV) if nobody else None, timeout=60)
    return r.returncode, r.stdout, r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wastenet", required=True)
    ap.add_argument("--tool", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wn_cli_bad_")
    os.chmod(tmp, 0o755)
    try:
        subprocess.run([a.tool, "fixtures", tmp], check=True)
        good = open(os.path.join(tmp, "formats", "rgb8.png"), "rb").read()
        bad_dir = os.path.join(tmp, "bad")
        root = os.path.join(tmp, "data")
        for split in ["train", "validation", "test"]:
            for cls in ["glass", "paper"]:
                os.makedirs(os.path.join(root, split, cls))
                for i in range(3):
                    open(os.path.join(root, split, cls, f"img{i}.png"), "wb").write(good)
        # The bad files, in train/glass, with what the message must say.
        expect = {
            "empty.jpg": "empty file",
            "truncated.jpg": "truncated JPEG",
            "random.jpg": "not an image",
            "huge.jpg": "over the limit",
            "huge.png": "over the limit",
            "image.gif": "GIF images are not supported",
            "image.bmp": "BMP images are not supported",
        }
        for name in expect:
            shutil.copy(os.path.join(bad_dir, name), os.path.join(root, "train", "glass", name))
        shutil.copy(os.path.join(tmp, "formats", "png_named.jpg"), os.path.join(root, "train", "paper", "png_named.jpg"))
        for dirpath, dirs, files in os.walk(tmp):
            for d in dirs:
                os.chmod(os.path.join(dirpath, d), 0o755)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o644)

        # 1. bad files: exit 1, each named with its problem; the PNG named .jpg is fine.
        rc, out, err = run(a.wastenet, root)
        check(rc == 1, f"bad files: exit {rc}, want 1")
        for name, problem in expect.items():
            line = [l for l in err.splitlines() if name in l]
            check(len(line) == 1 and problem in line[0] and line[0].startswith("error"),
                  f"bad files: {name} must be reported once with '{problem}': {line}")
        check("png_named.jpg" not in err, "a PNG named .jpg must decode")
        check("Found 14 files belonging to 2 classes." in out, f"train Found line: {out}")
        check(f"{len(expect)} bad files" in err, f"bad files: count missing: {err}")
        # --skip-bad: exit 0, one warning each, and the count.
        rc, out, err = run(a.wastenet, root, "--skip-bad")
        check(rc == 0, f"--skip-bad: exit {rc}, want 0: {err}")
        check(sum(l.startswith("warning: skipping") for l in err.splitlines()) == len(expect),
              f"--skip-bad: want {len(expect)} warnings: {err}")
        check(f"{len(expect)} bad files skipped" in err, f"--skip-bad: count missing: {err}")
        # A pixel limit raised past the huge headers: the files are still refused, as
        # too small for what they claim, before any pixel buffer is allocated.
        rc, out, err = run(a.wastenet, os.path.join(root, "train"), "--max-pixels", "20000000000")
        for name in ["huge.jpg", "huge.png"]:
            line = [l for l in err.splitlines() if name in l]
            check(rc == 1 and len(line) == 1 and "cannot hold" in line[0],
                  f"--max-pixels 2e10: {name}: exit {rc}: {line}")

        # 2. an empty class folder
        os.makedirs(os.path.join(root, "test", "metal"))
        rc, out, err = run(a.wastenet, os.path.join(root, "test"))
        check(rc == 1 and os.path.join(root, "test", "metal") in err and "no images" in err,
              f"empty class: exit {rc}: {err}")
        rc, out, err = run(a.wastenet, os.path.join(root, "test"), "--skip-bad")
        check(rc == 0 and err.count("warning") == 1 and "Found 6 files belonging to 3 classes." in out,
              f"empty class --skip-bad: exit {rc}: {out}{err}")
        os.rmdir(os.path.join(root, "test", "metal"))

        # 3. validation classes that differ from training's: an error naming the split
        os.rename(os.path.join(root, "validation", "paper"), os.path.join(root, "validation", "cardboard"))
        rc, out, err = run(a.wastenet, root, "--skip-bad")
        check(rc == 1 and os.path.join(root, "validation") in err and "'cardboard'" in err and "'paper'" in err,
              f"class mismatch: exit {rc}: {err}")
        os.rename(os.path.join(root, "validation", "cardboard"), os.path.join(root, "validation", "paper"))

        # 4. a missing split folder
        shutil.rmtree(os.path.join(root, "test"))
        rc, out, err = run(a.wastenet, root, "--skip-bad")
        check(rc == 0 and "warning" in err and os.path.join(root, "test") in err and "missing" in err,
              f"missing split --skip-bad: exit {rc}: {err}")
        for name in expect:
            os.remove(os.path.join(root, "train", "glass", name))
        rc, out, err = run(a.wastenet, root)
        check(rc == 1 and os.path.join(root, "test") in err and "missing" in err,
              f"missing split: exit {rc}: {err}")
        rc, out, err = run(a.wastenet, os.path.join(root, "nowhere"))
        check(rc == 1 and "nowhere" in err and "not found" in err, f"missing folder: exit {rc}: {err}")

        # 5. an unreadable file and an unreadable folder (as nobody when root; the
        # binary is copied beside the data so that nobody can run it from anywhere)
        nobody_exe, env = copy_for_nobody(a.wastenet, tmp)
        NOBODY_ENV.update(env)
        split = os.path.join(root, "train")
        locked_file = os.path.join(split, "glass", "locked.png")
        open(locked_file, "wb").write(good)
        os.chmod(locked_file, 0)
        rc, out, err = run(nobody_exe, split, nobody=True)
        check(rc == 1 and locked_file in err and "cannot open" in err, f"unreadable file: exit {rc}: {err}")
        os.chmod(locked_file, 0o644)
        locked_dir = os.path.join(split, "paper", "private")
        os.makedirs(locked_dir)
        open(os.path.join(locked_dir, "x.png"), "wb").write(good)
        os.chmod(locked_dir, 0)
        rc, out, err = run(nobody_exe, split, nobody=True)
        check(rc == 1 and locked_dir in err and "cannot read" in err, f"unreadable folder: exit {rc}: {err}")
        rc, out, err = run(nobody_exe, split, "--skip-bad", nobody=True)
        check(rc == 0 and locked_dir in err and "warning" in err, f"unreadable folder --skip-bad: exit {rc}: {err}")
        os.chmod(locked_dir, 0o755)
    finally:
        for dirpath, dirs, files in os.walk(tmp):
            for d in dirs:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("every bad input ends as specified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
