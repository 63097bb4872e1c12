#!/usr/bin/env python3
"""tests/train/test_cv.py — `wastenet cv` on the synthetic shapes (tiny_cnn, 32x32,
two epochs per fold), on the CPU.

1. folds: every image of train/ + validation/ is in folds.csv exactly once, test/ in
   none; each fold's data tree links its validation fold and, as training images,
   all the others (disjoint, together every image once); per class the folds differ
   by at most one image, and so do the fold sizes;
2. numbers: each fold's accuracy is its correct / images (float32) and equals the
   validation accuracy the fold's own training recorded (history.csv, one epoch);
   the mean and sample standard deviation in cv.json are those of the per-fold
   figures; the out-of-fold confusion matrix counts every image once;
3. the split depends on --fold-seed alone: another training --seed keeps folds.csv,
   another --fold-seed changes it; `cv ... run` (transfer + fine-tuning) works too;
4. tools/cv_compare.py on those folders: per-fold figures, means, standard deviations
   and paired differences equal to the cv.json values, the adoption rule applied, the
   base replicates' mean and seed spread; refused (exit 2, the folder named) for other
   folds, an unfinished folder and a folder without cv.json;
5. usage errors: --folds 1, no train|run, --resume (exit 2).

usage: test_cv.py WASTENET MAKE_SHAPES
"""
import csv
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile

WASTENET, MAKE_SHAPES = sys.argv[1:3]
CV_COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                          "cv_compare.py")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args):
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    return subprocess.run([WASTENET] + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=300)


def recipe(data, runs, name, command="train", extra=()):
    args = [command, "--data", data, "--model", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--batch", "16", "--epochs", "2", "--runs", runs,
            "--name", name, "--progress", "none"]
    if command == "train":
        args += ["--fine-tune-at", "all"]
    else:
        args += ["--fine-tune-at", "4"]
    return args + list(extra)


def cv_dir(runs, name):
    dirs = [d for d in os.listdir(runs) if d.endswith("-cv-" + name)]
    assert len(dirs) == 1, dirs
    return os.path.join(runs, dirs[0])


def read_folds(d):
    with open(os.path.join(d, "folds.csv"), newline="") as f:
        return list(csv.DictReader(f))


def listing(folder):
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files]
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="wn_cv_")
    try:
        data, runs = os.path.join(tmp, "data"), os.path.join(tmp, "runs")
        subprocess.run([MAKE_SHAPES, data, "20", "8", "3", "3"], check=True)
        pooled = sorted(os.path.realpath(p) for s in ("train", "validation")
                        for p in listing(os.path.join(data, s)))
        tests = {os.path.realpath(p) for p in listing(os.path.join(data, "test"))}
        k = 3
        r = run(["cv", "--folds", k] + recipe(data, runs, "a"))
        check(r.returncode == 0, f"cv --folds {k} train: exit {r.returncode} {r.stderr[-400:]}")
        d = cv_dir(runs, "a")
        rows = read_folds(d)
        got = sorted(os.path.realpath(x["path"]) for x in rows)
        check(got == pooled, f"folds.csv lists every train + validation image once ({len(got)})")
        check(not (set(got) & tests), "no test image in any fold")
        fold_of = {os.path.realpath(x["path"]): int(x["fold"]) for x in rows}
        check(set(fold_of.values()) == set(range(1, k + 1)), "folds numbered 1..K")
        sizes = [sum(1 for v in fold_of.values() if v == f) for f in range(1, k + 1)]
        check(max(sizes) - min(sizes) <= 1, f"fold sizes differ by at most one: {sizes}")
        for c in ("circle", "square", "triangle"):
            per = [sum(1 for x in rows if x["class"] == c and int(x["fold"]) == f)
                   for f in range(1, k + 1)]
            check(max(per) - min(per) <= 1, f"stratified: {c} per fold {per}")
        doc = json.load(open(os.path.join(d, "cv.json")))
        check(doc["folds"] == k and doc["folds_done"] == k and len(doc["per_fold"]) == k,
              "cv.json has every fold")
        for f in range(1, k + 1):
            tree = os.path.join(d, f"fold{f}", "data")
            val = sorted(os.path.realpath(p) for p in listing(os.path.join(tree, "validation")))
            train = sorted(os.path.realpath(p) for p in listing(os.path.join(tree, "train")))
            want_val = sorted(p for p, v in fold_of.items() if v == f)
            check(val == want_val, f"fold {f}: validation/ is fold {f} ({len(val)} images)")
            check(sorted(train + val) == pooled and not (set(train) & set(val)),
                  f"fold {f}: train/ is every other image, disjoint from validation/")
            check(not os.path.exists(os.path.join(tree, "test")), f"fold {f}: no test/ folder")
            pf = doc["per_fold"][f - 1]
            acc32 = struct.unpack("f", struct.pack("f", pf["val_correct"] / pf["val_images"]))[0]
            check(pf["val_images"] == len(val) and pf["train_images"] == len(train) and
                  pf["val_accuracy"] == acc32,
                  f"fold {f}: accuracy {pf['val_accuracy']:.4f} = {pf['val_correct']}/{pf['val_images']}")
            with open(os.path.join(pf["run"], "history.csv"), newline="") as fh:
                hist = list(csv.DictReader(fh))
            # early stopping restores the best epoch's weights at the end (tf-keras 2.16+)
            best = max(hist, key=lambda h: float(h["val_accuracy"]))
            check(float(best["val_accuracy"]) == pf["val_accuracy"] and
                  abs(float(best["val_loss"]) - pf["val_loss"]) < 1e-6,
                  f"fold {f}: evaluated = the training's own validation figures of its best "
                  f"epoch ({best['val_accuracy']} vs {pf['val_accuracy']})")
        accs = [x["val_accuracy"] for x in doc["per_fold"]]
        check(len(set(accs)) > 1, f"the folds' accuracies differ (the std is not trivially 0): {accs}")
        losses = [x["val_loss"] for x in doc["per_fold"]]
        check(abs(doc["val_accuracy_mean"] - statistics.mean(accs)) < 1e-12 and
              abs(doc["val_accuracy_std"] - statistics.stdev(accs)) < 1e-12,
              f"mean {doc['val_accuracy_mean']:.4f} and std {doc['val_accuracy_std']:.4f} of {accs}")
        check(abs(doc["val_loss_mean"] - statistics.mean(losses)) < 1e-12 and
              abs(doc["val_loss_std"] - statistics.stdev(losses)) < 1e-12, "loss mean and std")
        with open(os.path.join(d, "cv_confusion.csv"), newline="") as fh:
            cm = list(csv.reader(fh))[1:]
        total = sum(int(v) for row in cm for v in row[1:])
        correct = sum(int(row[i + 1]) for i, row in enumerate(cm))
        check(total == len(pooled) and correct == sum(x["val_correct"] for x in doc["per_fold"]),
              f"out-of-fold confusion matrix: every image once ({total}), correct {correct}")
        check(os.path.exists(os.path.join(d, "cv_per_class.txt")) and
              "validation accuracy: mean" in r.stdout, "cv_per_class.txt and the summary")

        # 3. folds depend on --fold-seed only
        r = run(["cv", "--folds", k] + recipe(data, runs, "b", extra=["--seed", "7"]))
        check(r.returncode == 0 and read_folds(cv_dir(runs, "b")) == rows,
              "another training --seed: the same folds")
        r = run(["cv", "--folds", k, "--fold-seed", "1"] + recipe(data, runs, "c"))
        check(r.returncode == 0 and read_folds(cv_dir(runs, "c")) != rows,
              "another --fold-seed: other folds")
        r = run(["cv", "--folds", "2"] + recipe(data, runs, "r", command="run"))
        ok = r.returncode == 0
        if ok:
            doc = json.load(open(os.path.join(cv_dir(runs, "r"), "cv.json")))
            ok = doc["command"] == "run" and len(doc["per_fold"]) == 2 and all(
                os.path.exists(os.path.join(x["run"], "finetune.ckpt")) for x in doc["per_fold"])
        check(ok, f"cv --folds 2 run: both phases per fold {r.stderr[-300:]}")

        # 4. tools/cv_compare.py on real cv folders: a (base), b (another seed, same folds)
        da, db = cv_dir(runs, "a"), cv_dir(runs, "b")
        ja, jb = (json.load(open(os.path.join(x, "cv.json"))) for x in (da, db))
        fa = [x["val_accuracy"] for x in ja["per_fold"]]
        fb = [x["val_accuracy"] for x in jb["per_fold"]]

        def compare(*args):
            return subprocess.run([sys.executable, CV_COMPARE] + list(args),
                                  capture_output=True, text=True, timeout=60)

        r = compare("--base", da, db, "--json")
        ok = r.returncode == 0
        if ok:
            res = json.loads(r.stdout)
            c = res["candidates"][0]
            diff = [100 * (y - x) for x, y in zip(fa, fb)]
            ok = (res["base"]["per_fold"] == fa and c["per_fold"] == fb and
                  all(abs(u - v) < 1e-9 for u, v in zip(c["diff"], diff)) and
                  abs(c["mean"] - jb["val_accuracy_mean"]) < 1e-12 and
                  abs(c["std"] - jb["val_accuracy_std"]) < 1e-12 and
                  abs(res["base"]["threshold"] - ja["val_accuracy_std"]) < 1e-12 and
                  c["adopt"] == (jb["val_accuracy_mean"] - ja["val_accuracy_mean"] >
                                 ja["val_accuracy_std"]) and c["name"] == "b")
        check(ok, f"cv_compare: b against a, fold by fold {r.stderr[-300:]}")
        r = compare("--base", da, "--base", db, da)
        ok = r.returncode == 0
        if ok:
            res = json.loads(compare("--base", da, "--base", db, da, "--json").stdout)
            b = res["base"]
            seed = statistics.mean(statistics.variance([x, y]) for x, y in zip(fa, fb)) ** 0.5
            ok = (all(abs(m - (x + y) / 2) < 1e-12 for m, x, y in zip(b["per_fold"], fa, fb)) and
                  abs(b["seed_std"] - seed) < 1e-12 and
                  abs(b["threshold"] - max(seed, (ja["val_accuracy_std"] +
                                                  jb["val_accuracy_std"]) / 2)) < 1e-12 and
                  "| a |" in r.stdout and "base: a + b" in r.stdout and "rule:" in r.stdout)
        check(ok, f"cv_compare: two base replicates, their mean and seed spread {r.stderr[-300:]}")
        dc, dr = cv_dir(runs, "c"), cv_dir(runs, "r")
        r = compare("--base", da, dc)
        check(r.returncode == 2 and dc in r.stderr and "same folds" in r.stderr,
              f"cv_compare: another --fold-seed refused: {r.stderr.strip()[-200:]}")
        r = compare("--base", da, dr)
        check(r.returncode == 2 and dr in r.stderr, f"cv_compare: 2 folds against 3 refused: "
              f"{r.stderr.strip()[-200:]}")
        part = os.path.join(tmp, "unfinished-cv-p")
        shutil.copytree(db, part)
        doc = json.load(open(os.path.join(part, "cv.json")))
        doc["folds_done"], doc["per_fold"] = 1, doc["per_fold"][:1]
        json.dump(doc, open(os.path.join(part, "cv.json"), "w"))
        r = compare("--base", da, part)
        check(r.returncode == 2 and part in r.stderr and "1 of 3 folds" in r.stderr,
              f"cv_compare: an unfinished cv refused: {r.stderr.strip()[-200:]}")
        r = compare("--base", da, data)
        check(r.returncode == 2 and "cv.json" in r.stderr and data in r.stderr,
              f"cv_compare: a folder without cv.json refused: {r.stderr.strip()[-200:]}")

        # 5. usage errors
        for args, want in [(["cv", "--folds", "1"] + recipe(data, runs, "u"), "--folds 1"),
                           (["cv", "--folds", "2"], "expected train or run"),
                           (["cv", "--folds", "2", "--data", data], "come after train or run"),
                           (["cv"] + recipe(data, runs, "u", extra=["--resume", runs]), "continues one fold")]:
            r = run(args)
            check(r.returncode == 2 and want in r.stderr, f"{want}: exit {r.returncode} {r.stderr.strip()[-200:]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("FAILED: %d" % len(failures) if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
