"""tests/train/test_plots.py — tools/plots.py on a fake run folder.

Writes a complete fake run (two phases) with `test_run_report --fake-run`, runs
plots.py on it and checks every picture exists, is a PNG of a sensible size and is
not blank; then checks that a missing matplotlib gives exit status 3 (the status the
training commands turn into a warning).

usage: test_plots.py PLOTS_PY TEST_RUN_REPORT_BINARY   (run with /usr/bin/python3)
"""
import os
import subprocess
import sys
import tempfile

try:
    import matplotlib  # noqa: F401
    import numpy as np
except ImportError:
    print("matplotlib/numpy not available to this Python: skipped")
    sys.exit(77)
import matplotlib.pyplot as plt


def main():
    plots, fake = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as run:
        subprocess.run([fake, "--fake-run", run], check=True)
        r = subprocess.run([sys.executable, plots, run], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            sys.exit(1)
        expected = ["curves.png", "transfer_curves.png", "finetune_curves.png",
                    "transfer_per_class.png", "finetune_per_class.png",
                    "transfer_confusion.png", "finetune_confusion.png",
                    # no class "trash" in the fake run: the weakest, "tri,angle"
                    "finetune_grid_tri,angle.png", "augment_preview.png"]
        for name in expected:
            path = os.path.join(run, name)
            if not os.path.exists(path):
                failures.append(f"{name} missing")
                continue
            with open(path, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    failures.append(f"{name} is not a PNG")
                    continue
            img = plt.imread(path)
            if img.shape[0] < 200 or img.shape[1] < 200:
                failures.append(f"{name}: {img.shape} too small")
            if float(np.std(img[..., :3])) < 0.01:
                failures.append(f"{name} is blank")
        # The grid shows the fake images (pure red/green/blue PPMs): the picture
        # must contain saturated blue pixels (class "tri,angle" true positives).
        grid = plt.imread(os.path.join(run, "finetune_grid_tri,angle.png"))[..., :3]
        blue = (grid[..., 2] > 0.9) & (grid[..., 0] < 0.1) & (grid[..., 1] < 0.1)
        if blue.sum() < 100:
            failures.append("the class grid does not show the test images")
        # An explicit grid class, and an unknown one.
        r = subprocess.run([sys.executable, plots, run, "--grid-class", "square"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(os.path.join(run, "finetune_grid_square.png")):
            failures.append(f"--grid-class square failed: {r.stderr}")
        r = subprocess.run([sys.executable, plots, run, "--grid-class", "hexagon"],
                           capture_output=True, text=True)
        if r.returncode != 1 or "hexagon" not in r.stderr:
            failures.append(f"unknown --grid-class: status {r.returncode}, {r.stderr!r}")

        # Without matplotlib: a stand-in package that fails to import.
        with tempfile.TemporaryDirectory() as fake_site:
            os.makedirs(os.path.join(fake_site, "matplotlib"))
            with open(os.path.join(fake_site, "matplotlib", "__init__.py"), "w") as f:
                f.write("raise ImportError('No module named matplotlib (test stand-in)')\n")
            env = dict(os.environ, PYTHONPATH=fake_site)
            r = subprocess.run([sys.executable, plots, run], capture_output=True, text=True,
                               env=env)
            if r.returncode != 3 or "python3-matplotlib" not in r.stderr:
                failures.append(f"without matplotlib: status {r.returncode}, {r.stderr!r}")
    for f in failures:
        print("FAIL", f)
    print(f"test_plots: {len(expected)} pictures checked, {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
