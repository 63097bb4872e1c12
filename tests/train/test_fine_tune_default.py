#!/usr/bin/env python3
"""tests/train/test_fine_tune_default.py — `wastenet run` without --fine-tune-at
fine-tunes from the model's own boundary (engine/model/zoo/registry.c), not from the
notebook's 500 that only InceptionResNetV2 has layers for.

  1. `run --help` lists every backbone with its default; `summary --model M` names
     the same default and the Keras layer index it resolves to, which is the index
     Keras users compute for that boundary (the first layer whose name starts with the
     block name: Keras's layer lists are checked against Keras in tests/keras and
     tests/fixtures), and `summary --expand` shows that layer at that index;
  2. `run --model M` with no --fine-tune-at passes the option checks for every
     backbone (it stops at the missing data folder, not at --fine-tune-at);
  3. a real tiny_cnn run fine-tunes from its default (layer 7); --fine-tune-at given
     overrides it, and --recipe notebook followed by --model takes that model's
     default;
  4. bench without --fine-tune-at takes the model's default too.
Needs only python3.

usage: test_fine_tune_default.py WASTENET MAKE_SHAPES
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

WASTENET, MAKE_SHAPES = sys.argv[1:3]
failures = []

# model -> (default, Keras index of the first layer whose name starts with it, the
# image size used here); the indices are those of docs (README, registry.c)
EXPECTED = {
    "irv2": ("500", 500, 75),
    "efficientnet_lite0": ("block5a", 69, 32),
    "efficientnet_lite1": ("block5a", 96, 32),
    "efficientnet_lite2": ("block5a", 96, 32),
    "xception": ("block14", 126, 71),
    "resnet50": ("conv5_block1", 143, 32),
    "mobilenet_v2": ("100", 100, 32),
    "densenet121": ("conv5_block1", 313, 32),
    "tiny_cnn": ("7", 7, 8),
}


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args):
    return subprocess.run([WASTENET, *args], capture_output=True, text=True, timeout=300)


def main():
    # 1. --help's table and summary's line
    helptext = run(["run", "--help"]).stdout
    table = {}
    if "backbones (--model;" in helptext:
        for line in helptext.split("backbones (--model;", 1)[1].splitlines()[1:]:
            if not line.strip():
                break
            parts = line.split()
            table[parts[0]] = parts[2]
    check(set(table) == set(EXPECTED), f"run --help lists every backbone: {sorted(table)}")
    for model, (default, index, size) in EXPECTED.items():
        check(table.get(model) == default,
              f"run --help: {model}'s default --fine-tune-at {table.get(model)} (want {default})")
        r = run(["summary", "--model", model, "--image-size", str(size), "--expand"])
        m = re.search(r"wastenet run's default --fine-tune-at: (\S+) = layer (\d+) \((\S+)\)",
                      r.stdout)
        listed = re.search(rf"^ {index}\s+\| (\S+) ", r.stdout, re.M)
        ok = (r.returncode == 0 and m is not None and m.group(1) == default
              and int(m.group(2)) == index and listed is not None
              and listed.group(1) == m.group(3)
              and (default.isdigit() or m.group(3).startswith(default + "_")))
        check(ok, f"summary --model {model}: default {default} = layer {index} "
                  f"({m.group(0) if m else r.stderr.strip()[-200:]})")

    tmp = tempfile.mkdtemp(prefix="wn_ft_default_")
    try:
        # 2. every backbone passes the option checks without --fine-tune-at
        missing = os.path.join(tmp, "no_such_data")
        for model, (_, _, size) in EXPECTED.items():
            r = run(["run", "--data", missing, "--model", model, "--weights", "none",
                     "--image-size", str(size), "--runs", os.path.join(tmp, "runs0")])
            check(r.returncode != 0 and "no_such_data" in r.stderr
                  and "--fine-tune-at" not in r.stderr,
                  f"run --model {model}, no --fine-tune-at: stops at the data, not the "
                  f"boundary: exit {r.returncode} {r.stderr.strip()[-160:]}")

        # 3. a real run (tiny_cnn) and the overrides
        data = os.path.join(tmp, "shapes")
        subprocess.run([MAKE_SHAPES, data, "8", "4", "4", "3"], check=True,
                       capture_output=True)
        common = ["--data", data, "--weights", "none", "--image-size", "32", "--batch", "8",
                  "--epochs", "1", "--progress", "lines", "--no-plots"]
        cases = [([], 7, "default"), (["--fine-tune-at", "4"], 4, "--fine-tune-at 4"),
                 (["--fine-tune-at", "4", "--recipe", "notebook", "--model", "tiny_cnn",
                   *common], 7, "--recipe notebook --model tiny_cnn")]
        for i, (extra, want, what) in enumerate(cases):
            r = run(["run", "--model", "tiny_cnn", *common, "--runs", os.path.join(tmp, "runs"),
                     "--name", f"c{i}", *extra])
            m = re.search(r"finetune: fine-tuning from backbone layer (\d+)", r.stdout)
            check(r.returncode == 0 and m is not None and int(m.group(1)) == want,
                  f"run tiny_cnn ({what}): fine-tunes from layer {m.group(1) if m else '?'} "
                  f"(want {want}; exit {r.returncode} {r.stderr.strip()[-160:]})")

        # 4. bench
        r = run(["bench", "--model", "tiny_cnn", "--image-size", "16", "--batch", "2",
                 "--steps", "1", "--warmup", "0", "--backend", "cpu"])
        check(r.returncode == 0 and "fine-tune-at 7" in r.stdout,
              f"bench --model tiny_cnn: its default boundary: "
              f"{(r.stdout.splitlines() or [r.stderr])[0][:160]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("FAILED" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
