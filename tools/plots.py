#!/usr/bin/env python3
"""tools/plots.py — the notebook's pictures for a wastenet run folder.

usage: plots.py RUN_DIR [--grid-class NAME] [--grid-count N]

Reads the files `wastenet run` / `wastenet train` leave in RUN_DIR (see
engine/train/run_report.h) and writes PNG files beside them:

  curves.png                  training vs validation loss (top) and accuracy (bottom)
                              over every phase (the notebook's show_plots), and
  <phase>_curves.png          the same for each phase alone
  <phase>_per_class.png       per-class accuracy bars, with the mean over classes
  <phase>_confusion.png       the confusion matrix (counts, rows normalised colour)
  <phase>_grid_<class>.png    for one class: true positives, false negatives (titled
                              with the predicted class) and false positives, up to
                              N each (the notebook's trash grid); the class is
                              --grid-class, else "trash" when it exists, else the
                              weakest class
  augment_preview.png         one training image and four augmented versions
                              (from augment_preview.npy)

Needs numpy and matplotlib (Debian: python3-matplotlib; run with /usr/bin/python3).
Exit status: 0 done, 3 matplotlib or numpy missing (the caller warns and goes on),
1 another error, 2 bad usage.
"""
import argparse
import csv
import glob
import json
import math
import os
import sys

try:
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
except ImportError as e:  # the run goes on without pictures
    print(f"plots.py: {e}; install python3-matplotlib (Debian) to get the pictures",
          file=sys.stderr)
    sys.exit(3)


def save_figure(fig, path, dpi):
    """Writes a picture as wastenet writes every file (host/base/atomic_file.h): only over
    a regular file or a new name (a device, pipe, socket or folder, or a link to one,
    is refused, naming it), through a temporary beside it, fsync, then rename."""
    import stat
    target = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            try:
                st = os.stat(target)
            except FileNotFoundError:
                raise OSError(f"{path} is a symbolic link to nothing: not replaced")
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file (a device, pipe, socket or "
                          f"folder): not replaced; remove it to get the picture")
    tmp = f"{target}.tmp.{os.getpid()}"
    if os.path.lexists(tmp) and not os.path.isdir(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def read_history(run_dir):
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["epoch"] = int(r["epoch"])
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
            r[k] = float(r[k])
    return rows


def plot_curves(rows, path, title):
    """The notebook's show_plots: loss on top, accuracy below, blue training and red
    validation; phases separated by a dashed line."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    x = np.arange(1, len(rows) + 1)
    ax1.plot(x, [r["loss"] for r in rows], "b-o", ms=3, label="Training loss")
    ax1.plot(x, [r["val_loss"] for r in rows], "r-o", ms=3, label="Validation loss")
    ax2.plot(x, [r["accuracy"] for r in rows], "b-o", ms=3, label="Training accuracy")
    ax2.plot(x, [r["val_accuracy"] for r in rows], "r-o", ms=3, label="Validation accuracy")
    for i in range(1, len(rows)):
        if rows[i]["phase"] != rows[i - 1]["phase"]:
            for ax in (ax1, ax2):
                ax.axvline(i + 0.5, color="gray", ls="--", lw=1)
            ax2.text(i + 0.6, ax2.get_ylim()[0], rows[i]["phase"], color="gray", va="bottom")
    ax1.set_ylabel("loss")
    ax2.set_ylabel("accuracy")
    ax2.set_xlabel("epoch")
    ax1.legend(loc="best")
    ax2.legend(loc="best")
    ax1.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, 100)
    plt.close(fig)


def read_per_class(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return ([r["class"] for r in rows], [int(r["correct"]) for r in rows],
            [int(r["total"]) for r in rows], [float(r["accuracy"]) for r in rows])


def plot_per_class(path_csv, path_png, phase):
    names, correct, total, acc = read_per_class(path_csv)
    present = [a for a, t in zip(acc, total) if t > 0]
    mean = sum(present) / len(present) if present else 0.0
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names)), 4))
    colors = ["tab:red" if a == min(present or [0]) else "tab:blue" for a in acc]
    bars = ax.bar(names, acc, color=colors)
    for b, c, t in zip(bars, correct, total):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.01, f"{c}/{t}",
                ha="center", va="bottom", fontsize=8)
    ax.axhline(mean, color="gray", ls="--", lw=1, label=f"mean over classes {mean * 100:.2f}%")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{phase}: per-class accuracy on the test set")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path_png, 100)
    plt.close(fig)


def plot_confusion(path_csv, path_png, phase):
    with open(path_csv, newline="") as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    m = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    sums = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, sums, out=np.zeros(m.shape, dtype=float), where=sums > 0)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 * k + 2.5, 1.0 * k + 1.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for t in range(k):
        for p in range(k):
            ax.text(p, t, str(m[t, p]), ha="center", va="center",
                    color="white" if norm[t, p] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticks(range(k))
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{phase}: confusion matrix (test set)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    save_figure(fig, path_png, 100)
    plt.close(fig)


def load_image(path):
    """An image as an array, or None when it cannot be read (moved, no Pillow)."""
    try:
        img = plt.imread(path)
    except Exception:  # noqa: BLE001 - any reader failure just leaves the cell empty
        return None
    if img.dtype != np.uint8:
        img = np.clip(img * (255 if img.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return img


def plot_grid(path_csv, path_png, phase, cls, count):
    """True positives, false negatives and false positives of class `cls`."""
    with open(path_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    groups = [
        ("true positives", [r for r in rows if r["true"] == cls and r["predicted"] == cls]),
        ("false negatives", [r for r in rows if r["true"] == cls and r["predicted"] != cls]),
        ("false positives", [r for r in rows if r["true"] != cls and r["predicted"] == cls]),
    ]
    fig = plt.figure(figsize=(2.0 * (count + 1), 6.5))
    for g, (label, items) in enumerate(groups):
        ax = fig.add_subplot(3, count + 1, g * (count + 1) + 1)
        ax.text(0.05, 0.5, f"{label}\n({len(items)})", fontsize=10, va="center")
        ax.axis("off")
        for i, r in enumerate(items[:count]):
            ax = fig.add_subplot(3, count + 1, g * (count + 1) + 2 + i)
            img = load_image(r["path"])
            if img is not None:
                ax.imshow(img)
            else:
                ax.text(0.5, 0.5, "(unreadable)", ha="center", va="center", fontsize=8)
            if g == 1:
                ax.set_title(f"pred: {r['predicted']}", fontsize=9)
            elif g == 2:
                ax.set_title(f"true: {r['true']}", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{phase}: class '{cls}' on the test set")
    fig.tight_layout()
    save_figure(fig, path_png, 80)
    plt.close(fig)


def plot_augment_preview(path_npy, path_png):
    imgs = np.load(path_npy)
    if imgs.ndim != 4 or imgs.shape[0] < 2 or imgs.shape[3] != 3:
        raise ValueError(f"{path_npy}: expected (n, H, W, 3) images, got {imgs.shape}")
    n_aug = imgs.shape[0] - 1
    cols = int(math.ceil(n_aug / 2))
    fig = plt.figure(figsize=(3 + 3 * cols, 6))
    grid = fig.add_gridspec(2, cols + 1)
    ax = fig.add_subplot(grid[:, 0])  # the original spans both rows, beside its versions
    ax.imshow(imgs[0])
    ax.set_title("original")
    ax.axis("off")
    for i in range(n_aug):
        ax = fig.add_subplot(grid[i // cols, 1 + i % cols])
        ax.imshow(imgs[1 + i])
        ax.set_title(f"augmented {i + 1}")
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path_png, 100)
    plt.close(fig)


def choose_grid_class(per_class_csv, wanted):
    names, _, total, acc = read_per_class(per_class_csv)
    if wanted:
        if wanted not in names:
            raise ValueError(f"--grid-class {wanted}: not a class of this run ({', '.join(names)})")
        return wanted
    if "trash" in names:
        return "trash"
    present = [(a, n) for a, n, t in zip(acc, names, total) if t > 0]
    return min(present)[1] if present else names[0]


def main():
    ap = argparse.ArgumentParser(description="Pictures for a wastenet run folder.")
    ap.add_argument("run_dir")
    ap.add_argument("--grid-class", default=None, help="class of the TP/FN/FP grid")
    ap.add_argument("--grid-count", type=int, default=6, help="images per grid row")
    args = ap.parse_args()
    run = args.run_dir
    if not os.path.isdir(run):
        print(f"plots.py: {run} is not a folder", file=sys.stderr)
        return 2
    written = []

    rows = read_history(run)
    if rows:
        plot_curves(rows, os.path.join(run, "curves.png"), "training vs validation")
        written.append("curves.png")
        for phase in dict.fromkeys(r["phase"] for r in rows):
            sub = [r for r in rows if r["phase"] == phase]
            name = f"{phase}_curves.png"
            plot_curves(sub, os.path.join(run, name), phase)
            written.append(name)

    for per_class in sorted(glob.glob(os.path.join(run, "*_per_class.csv"))):
        phase = os.path.basename(per_class)[: -len("_per_class.csv")]
        plot_per_class(per_class, os.path.join(run, f"{phase}_per_class.png"), phase)
        written.append(f"{phase}_per_class.png")
        conf = os.path.join(run, f"{phase}_confusion.csv")
        if os.path.exists(conf):
            plot_confusion(conf, os.path.join(run, f"{phase}_confusion.png"), phase)
            written.append(f"{phase}_confusion.png")
        preds = os.path.join(run, f"{phase}_predictions.csv")
        if os.path.exists(preds):
            cls = choose_grid_class(per_class, args.grid_class)
            name = f"{phase}_grid_{cls}.png"
            plot_grid(preds, os.path.join(run, name), phase, cls, args.grid_count)
            written.append(name)

    npy = os.path.join(run, "augment_preview.npy")
    if os.path.exists(npy):
        plot_augment_preview(npy, os.path.join(run, "augment_preview.png"))
        written.append("augment_preview.png")

    print(f"plots: {len(written)} pictures in {run}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, KeyError) as e:
        print(f"plots.py: {e}", file=sys.stderr)
        sys.exit(1)
