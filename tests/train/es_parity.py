"""tests/train/es_parity.py — wastenet's EarlyStopping against tf_keras's own.

Feeds the same scripted histories to tf_keras.callbacks.EarlyStopping (driven the way
Model.fit drives it, with a stand-in model whose "weights" are the epoch index) and to
`test_early_stopping --trace`, and compares the epochs run, whether it fired, which
epoch's weights the model ends with, and the best epoch.

tf-keras >= 2.16 always restores the best weights at the end: that is wastenet's
"at-end" mode. Its "on-stop" (TF <= 2.15) and "never" modes are compared against the
same callback by emulating their rule on top of it (see run_keras).

usage: es_parity.py PATH/TO/test_early_stopping
"""
import random
import subprocess
import sys

import numpy as np

try:
    import tf_keras as keras
except ImportError:
    print("tf_keras is not installed: skipped")
    sys.exit(77)


class StandIn:
    """Just enough of a Model for the callback: weights are the producing epoch."""

    def __init__(self):
        self.weights = -1
        self.stop_training = False

    def get_weights(self):
        return self.weights

    def set_weights(self, w):
        self.weights = w


def run_keras(values, mode, patience, min_delta, restore, max_epochs):
    cb = keras.callbacks.EarlyStopping(
        monitor="val_categorical_accuracy", mode=mode, patience=patience,
        min_delta=min_delta, restore_best_weights=(restore != "never"))
    model = StandIn()
    cb.set_model(model)
    cb.on_train_begin()
    epochs_run = 0
    restored_on_stop = False
    for epoch in range(max_epochs):
        model.weights = epoch
        epochs_run += 1
        # Keras's logs hold Python floats converted from the float32 metric result.
        cb.on_epoch_end(epoch, {"val_categorical_accuracy": float(np.float32(values[epoch]))})
        if model.stop_training:
            if restore == "on-stop" and cb.best_weights is not None:
                # TF <= 2.15 restored here, inside on_epoch_end.
                model.set_weights(cb.best_weights)
                restored_on_stop = True
            break
    if restore == "at-end":
        cb.on_train_end()
    return (epochs_run, int(model.stop_training), model.weights, cb.best_epoch,
            restored_on_stop)


def run_ours(binary, cases):
    """All cases in one process: one line in, one outcome line out, per case."""
    lines = []
    for values, mode, patience, min_delta, restore in cases:
        vals = " ".join(repr(float(np.float32(v))) for v in values)
        lines.append(f"{mode} {patience} {min_delta!r} {restore} {len(values)} {vals}")
    out = subprocess.run([binary, "--trace"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, check=True).stdout
    return [tuple(int(x) for x in line.split()) for line in out.splitlines()]


def histories(rng):
    """Accuracies on a 111-image validation set, with plateaus, ties and gains of
    exactly one image (0.009), plus hand-picked gains near min_delta."""
    yield [0.5, 0.5005, 0.5009, 0.9, 0.9]
    yield [0.5, 0.501, 0.502, 0.503, 0.504, 0.505]
    yield [0.25, 0.251, 0.2521, 0.2531, 0.2541, 0.3]
    yield [0.6, 0.7, 0.78, 0.75, 0.77, 0.99, 0.99]
    yield [0.1] * 6
    for _ in range(300):
        n = rng.randint(1, 12)
        correct = rng.randint(0, 111)
        h = []
        for _ in range(n):
            correct = min(111, max(0, correct + rng.choice([-3, -1, 0, 0, 1, 1, 2, 5])))
            h.append(correct / 111)
        yield h


def main():
    binary = sys.argv[1]
    rng = random.Random(1234)
    cases = [(h, mode, patience, min_delta, restore)
             for h in histories(rng)
             for mode in ("max", "min")
             for patience in (0, 1, 2, 3)
             for min_delta in (0.001, 0.0, 0.01)
             for restore in ("at-end", "on-stop", "never")]
    ours = run_ours(binary, cases)
    if len(ours) != len(cases):
        print(f"es_parity: {len(ours)} outcomes for {len(cases)} cases")
        sys.exit(1)
    failures = 0
    for case, o in zip(cases, ours):
        k = run_keras(case[0], *case[1:], len(case[0]))
        if o != k[:4]:
            failures += 1
            if failures <= 10:
                print(f"MISMATCH {case}: keras={k[:4]} ours={o}")
    print(f"es_parity: {len(cases)} cases against tf_keras {keras.__version__}, "
          f"{failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
