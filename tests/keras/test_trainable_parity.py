#!/usr/bin/env python3
"""tests/keras/test_trainable_parity.py — the trainable weights for each frozen
boundary are Keras's (issue 5, item 4d).

For the frozen backbone (transfer learning) and for fine_tune_at in
{0, 300, 500, 700, 780} (the notebook's set_frozen_layers), the names of the notebook
model's trainable weights, in order, as Keras lists them (model.trainable_weights,
what its optimizer updates) equal what wastenet trains (`wn_keras_probe trainable`:
the params suffix its Adam updates). Names are compared, so the order, the layers and
each layer's weights (kernel/bias/beta; never the moving statistics) must all agree.
With either Keras generation (keras_common.GENERATION): Keras 3 lists the same.

usage: test_trainable_parity.py WN_KERAS_PROBE WASTENET
"""
from keras_common import (NUM_CLASSES, Checks, binaries, build_notebook_model, run,
                          set_frozen_layers, require_versions, weight_name)

SIZE = 75
BOUNDARIES = [None, 0, 300, 500, 700, 780]


def main():
    probe, _ = binaries()
    require_versions()
    checks = Checks()
    model, base = build_notebook_model(SIZE)
    checks.true("Keras's backbone has 780 layers", len(base.layers) == 780,
                str(len(base.layers)))
    for fta in BOUNDARIES:
        set_frozen_layers(base, fta)
        keras_names = [weight_name(w) for w in model.trainable_weights]
        arg = "none" if fta is None else str(fta)
        ours = run([probe, "trainable", "irv2", SIZE, SIZE, NUM_CLASSES, arg]).split()
        same = ours == keras_names
        detail = f"{len(keras_names)} weights"
        if not same:
            first = next((i for i, (a, b) in enumerate(zip(ours, keras_names)) if a != b),
                         min(len(ours), len(keras_names)))
            detail = (f"wastenet {len(ours)} weights, Keras {len(keras_names)}; first "
                      f"difference at {first}: wastenet "
                      f"{ours[first] if first < len(ours) else '-'} vs Keras "
                      f"{keras_names[first] if first < len(keras_names) else '-'}")
        checks.true(f"fine_tune_at={arg}: trainable weight list", same, detail)
    checks.exit()


if __name__ == "__main__":
    main()
