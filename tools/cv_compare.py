#!/usr/bin/env python3
"""tools/cv_compare.py — compare candidate recipes cross-validated by `wastenet cv`.

    tools/cv_compare.py --base runs/<t>-cv-base [--base runs/<t>-cv-base_seed1 ...] \
                        runs/<t>-cv-cand1 [runs/<t>-cv-cand2 ...] [--json]

Reads each folder's cv.json and folds.csv. Every folder must have finished all its
folds and hold the very same folds as the first base (same data, --folds and
--fold-seed: folds.csv equal), else the comparison is refused naming the folder.
Several --base folders are replicates of the base recipe (other --seed values): the
base's figure for a fold is their mean, and their spread is printed, since a training
seed alone moves a fold by about as much as many recipe changes do.

For each candidate: its per-fold validation accuracies, mean ± sample standard
deviation, mean validation loss, the paired differences from the base fold by fold
(points), their mean, and the rule docs/RESULTS.md chooses by: a candidate is adopted
only if its mean beats the base's by more than a base run's standard deviation over
the folds — or, given replicates, the seed's (pooled over the folds) when larger. Text (a Markdown table) by default, one JSON document with --json.
Exit 0, or 2 naming the folder or option at fault.
"""
import argparse
import json
import os
import statistics
import sys


class Refused(Exception):
    pass


def load(folder):
    path = os.path.join(folder, "cv.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise Refused(f"{folder}: no readable cv.json ({e.strerror}); give the folder "
                      "`wastenet cv` wrote (runs/<time>-cv-<name>)")
    except ValueError as e:
        raise Refused(f"{path}: not JSON ({e})")
    try:
        per_fold = doc["per_fold"]
        folds, done = int(doc["folds"]), int(doc["folds_done"])
        accs = [float(x["val_accuracy"]) for x in per_fold]
        losses = [float(x["val_loss"]) for x in per_fold]
    except (KeyError, TypeError, ValueError) as e:
        raise Refused(f"{path}: not a `wastenet cv` result (missing or bad {e})")
    if done != folds or len(accs) != folds:
        raise Refused(f"{folder}: {done} of {folds} folds done; finish it first "
                      "(rerun the same `wastenet cv` command)")
    try:
        with open(os.path.join(folder, "folds.csv"), "rb") as f:
            split = f.read()
    except OSError as e:
        raise Refused(f"{folder}: no readable folds.csv ({e.strerror})")
    name = os.path.basename(os.path.normpath(folder))
    name = name.split("-cv-", 1)[1] if "-cv-" in name else name
    return {"name": name, "dir": folder, "folds": folds, "per_fold": accs,
            "losses": losses, "split": split}


def std(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def compare(bases, candidates):
    ref = bases[0]
    for r in bases[1:] + candidates:
        if r["split"] != ref["split"]:
            raise Refused(f"{r['dir']}: not the same folds as {ref['dir']} (folds.csv "
                          "differs); compare only runs of one data set with the same "
                          "--folds and --fold-seed")
    k = ref["folds"]
    base_fold = [statistics.mean(b["per_fold"][i] for b in bases) for i in range(k)]
    base = {"names": [b["name"] for b in bases], "per_fold": base_fold,
            "mean": statistics.mean(base_fold), "std": std(base_fold),
            "loss_mean": statistics.mean(statistics.mean(b["losses"]) for b in bases)}
    # The bar a candidate's mean must clear: one base run's spread over the folds (the
    # mean of the replicates' own), or the seed's, whichever is larger. Averaging
    # replicates narrows the folds' spread, not the noise of a one-seed candidate.
    base["threshold"] = statistics.mean(std(b["per_fold"]) for b in bases)
    if len(bases) > 1:
        # how far the replicates of one recipe lie apart, fold by fold (points), and
        # the pooled within-fold standard deviation over the replicates
        base["replicate_spread"] = [100 * (max(b["per_fold"][i] for b in bases) -
                                           min(b["per_fold"][i] for b in bases))
                                    for i in range(k)]
        base["seed_std"] = statistics.mean(
            statistics.variance([b["per_fold"][i] for b in bases]) for i in range(k)) ** 0.5
        base["threshold"] = max(base["threshold"], base["seed_std"])
    out = []
    for c in candidates:
        diff = [100 * (c["per_fold"][i] - base_fold[i]) for i in range(k)]
        mean = statistics.mean(c["per_fold"])
        out.append({"name": c["name"], "dir": c["dir"], "per_fold": c["per_fold"],
                    "mean": mean, "std": std(c["per_fold"]),
                    "loss_mean": statistics.mean(c["losses"]), "diff": diff,
                    "diff_mean": statistics.mean(diff),
                    "adopt": mean - base["mean"] > base["threshold"]})
    return {"folds": k, "base": base, "candidates": out,
            "rule": "adopt only if the candidate's mean beats the base's by more than "
                    "a base run's standard deviation over the folds (or, with replicates, "
                    "the seed's standard deviation when that is larger)"}


def pct(x):
    return f"{100 * x:.2f}%"


def text(result):
    k, b = result["folds"], result["base"]
    head = ["candidate"] + [f"fold {i + 1}" for i in range(k)] + [
        "mean ± std", "val loss", "paired difference (points)", "mean diff", "verdict"]
    rows = [["base: " + " + ".join(b["names"])] + [pct(x) for x in b["per_fold"]] +
            [f"{pct(b['mean'])} ± {100 * b['std']:.2f}", f"{b['loss_mean']:.3f}", "", "", ""]]
    for c in result["candidates"]:
        rows.append([c["name"]] + [pct(x) for x in c["per_fold"]] +
                    [f"{pct(c['mean'])} ± {100 * c['std']:.2f}", f"{c['loss_mean']:.3f}",
                     ", ".join(f"{d:+.1f}" for d in c["diff"]), f"{c['diff_mean']:+.2f}",
                     "adopt" if c["adopt"] else "not adopted"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if "replicate_spread" in b:
        lines.append("")
        lines.append("base replicates lie " + ", ".join(f"{s:.1f}" for s in b["replicate_spread"]) +
                     " points apart per fold (the training seed's own effect; standard "
                     f"deviation {100 * b['seed_std']:.2f} points)")
    lines.append("")
    lines.append("rule: " + result["rule"] + f": {100 * b['threshold']:.2f} points here")
    return "\n".join(lines)


def main(argv):
    ap = argparse.ArgumentParser(prog="cv_compare.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", action="append", required=True, metavar="DIR",
                    help="a `wastenet cv` folder of the base recipe (repeat for replicates)")
    ap.add_argument("candidates", nargs="+", metavar="DIR",
                    help="`wastenet cv` folders of the candidate recipes")
    ap.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    args = ap.parse_args(argv)
    try:
        bases = [load(d) for d in args.base]
        candidates = [load(d) for d in args.candidates]
        result = compare(bases, candidates)
    except Refused as e:
        print(f"cv_compare: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
