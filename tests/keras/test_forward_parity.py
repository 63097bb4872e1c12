#!/usr/bin/env python3
"""tests/keras/test_forward_parity.py — wastenet computes Keras's InceptionResNetV2
and the notebook's model, from Keras's own weight files, and writes files Keras
loads back (issue 5, items 4a-4c).

  a. InceptionResNetV2(weights=None, include_top=False) at 75x75 and 139x139, every
     weight randomised (BN moving statistics included), saved by Keras with
     save_weights(.h5): wastenet's backbone output equals Keras's within 1e-4.
     The same weights rewritten in the official file's form (foreign TF-slim-style
     names, fixed-length strings, groups unsorted, no top_level_model_weights,
     keras_version 2.0.8) load by position, in Keras and in wastenet, to the same
     output.
  b. The notebook's whole model (augmentation inactive, as in predict): wastenet's
     softmax equals Keras's within 1e-4. A file saved with another trainable split
     (nested weights in another order) loads by name to the same predictions.
  c. `wastenet export` of that model, loaded by Keras into a fresh get_model(),
     gives wastenet's predictions; `--backbone-only`, loaded into a fresh
     InceptionResNetV2(include_top=False), gives its backbone output.

With Keras 3 (keras3_forward_parity, keras_common.GENERATION) the same comparisons
in Keras 3's own formats, on the 75x75 input only (CI time): a. Keras 3's notop
.weights.h5; b. its whole-model .weights.h5; c. `--format weights-h5` exports loaded
by Keras 3's load_weights. The official-style file (a Keras 2 form) and the reordered
trainable split (Keras 2's legacy layout lists weights by trainable flag; Keras 3's
.weights.h5 is per layer) are Keras 2 cases only.

usage: test_forward_parity.py WN_KERAS_PROBE WASTENET
"""
import numpy as np

from keras_common import (KERAS3, Checks, Workdir, binaries, build_base,
                          build_notebook_model, h5py, preprocess, probe_forward, random_images,
                          randomize, require_versions, run, set_frozen_layers, weights_file)


def keras_backbone(base, images):
    return base(preprocess(images), training=False).numpy()


def write_official_style(src, dst):
    """Rewrites a Keras-written notop file the way the 2017 official file is laid out:
    other layer names (so only position can match), fixed-length name strings, groups
    in model order rather than sorted, no top_level_model_weights, Keras 2.0.8."""
    with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
        names = [n.decode() if isinstance(n, bytes) else n for n in s.attrs["layer_names"]]
        new = {n: f"Slim_{i:03d}_{type_tag(s[n])}" for i, n in enumerate(names)}
        d.attrs["layer_names"] = np.array([new[n].encode() for n in names])
        d.attrs["backend"] = np.bytes_(b"tensorflow")
        d.attrs["keras_version"] = np.bytes_(b"2.0.8")
        for n in names:
            g = d.create_group(new[n])
            old_w = [w.decode() if isinstance(w, bytes) else w
                     for w in s[n].attrs["weight_names"]]
            new_w = [f"{new[n]}/{w.split('/')[-1]}" for w in old_w]
            g.attrs["weight_names"] = (np.array([w.encode() for w in new_w]) if new_w
                                       else np.zeros((0,), np.float64))
            for o, w in zip(old_w, new_w):
                g.create_dataset(w, data=s[n][o][()])


def type_tag(group):
    kinds = {w.decode() if isinstance(w, bytes) else w for w in group.attrs["weight_names"]}
    if any(k.endswith("moving_mean:0") for k in kinds):
        return "BatchNorm"
    if any(k.endswith("kernel:0") for k in kinds):
        return "Conv2d"
    return "Op"


def main():
    probe, wastenet = binaries()
    require_versions()
    checks = Checks()
    with Workdir("forward") as wd:
        # ---- a. the backbone alone, two input sizes
        for size, seed in ((75, 11),) if KERAS3 else ((75, 11), (139, 12)):
            base = build_base(size)
            randomize(base, seed)
            notop = weights_file(wd, f"notop_{size}")
            base.save_weights(notop)
            images = random_images(2, size, seed)
            ref = keras_backbone(base, images)
            ours, _, facts = probe_forward(probe, wd, notop, images, f"a{size}")
            checks.true(f"a. {size}x{size}: Keras's notop file loads as the backbone, by name",
                        facts["scope"] == "backbone" and facts["by_name"] == 1
                        and facts["layers"] == 448, str(facts))
            checks.close(f"a. {size}x{size}: backbone output {list(ref.shape)}", ours, ref)

            if size == 75 and not KERAS3:
                # the official file's form: matched by position only
                slim = wd("official_style.h5")
                write_official_style(notop, slim)
                ours_slim, _, facts = probe_forward(probe, wd, slim, images, "slim")
                checks.true("a. official-style file (TF-slim-like names) loads by position",
                            facts["scope"] == "backbone" and facts["by_name"] == 0
                            and facts["keras_version"] == "2.0.8", str(facts))
                checks.true("a. official-style file: same output as Keras's file, bit for bit",
                            np.array_equal(ours_slim, ours))
                fresh = build_base(75)
                fresh.load_weights(slim)  # Keras, too, loads it (by position)
                checks.close("a. official-style file: Keras's own load of it gives the same "
                             "backbone output", ours_slim, keras_backbone(fresh, images))

        # ---- b. the notebook's whole model
        size = 75
        model, base = build_notebook_model(size)
        randomize(model, 21)
        # sharper predictions than a Glorot head on random features gives (near 1/6
        # each), so that the softmax comparison means something
        kernel = model.get_layer("dense").kernel
        kernel.assign(kernel * 30.0)
        outer = weights_file(wd, "notebook")
        model.save_weights(outer)
        images = random_images(3, size, 22)
        ref_probs = model.predict(images.astype(np.float32), verbose=0)
        ref_backbone = keras_backbone(base, images)
        ours_backbone, ours_probs, facts = probe_forward(probe, wd, outer, images, "b")
        checks.true("b. Keras's get_model() file loads whole (nested backbone group), by name",
                    facts["scope"] == "whole" and facts["nested"] == 1 and facts["by_name"] == 1
                    and facts["layers"] == 449, str(facts))
        checks.close("b. whole model: backbone output", ours_backbone, ref_backbone)
        checks.close("b. whole model: softmax predictions", ours_probs, ref_probs)
        checks.true("b. whole model: same predicted classes",
                    np.array_equal(ours_probs.argmax(1), ref_probs.argmax(1)))

        if not KERAS3:
            check_split_file(checks, probe, wd, model, base, outer, images, ours_probs)
        export_checks(checks, wastenet, wd, size, model, base, outer, images, ours_probs,
                      ours_backbone)
    checks.exit()


def check_split_file(checks, probe, wd, model, base, outer, images, ours_probs):
    """b. A Keras 2 file saved after set_frozen_layers(500) lists the nested weights
    trainable first: Keras itself re-splits by the loading model's flags (and
    misloads), wastenet matches the names."""
    set_frozen_layers(base, 500)
    split = wd("notebook_split500.h5")
    model.save_weights(split)
    set_frozen_layers(base, None)
    with h5py.File(outer, "r") as f, h5py.File(split, "r") as g:
        reordered = list(f["inception_resnet_v2"].attrs["weight_names"]) != list(
            g["inception_resnet_v2"].attrs["weight_names"])
    _, split_probs, facts = probe_forward(probe, wd, split, images, "split")
    checks.true("b. file saved with fine_tune_at=500 (nested weights reordered) loads by "
                "name to the same predictions, bit for bit",
                reordered and facts["by_name"] == 1 and np.array_equal(split_probs, ours_probs),
                f"reordered {reordered}, {facts}")


def export_checks(checks, wastenet, wd, size, model, base, outer, images, ours_probs,
                  ours_backbone):
    """c. wastenet's exports, loaded by Keras: --format h5 for Keras 2, weights-h5 for 3."""
    fmt = "weights-h5" if KERAS3 else "h5"
    exported = weights_file(wd, "export_whole")
    run([wastenet, "export", "--format", fmt, "--weights", outer, "--out", exported])
    model2, _ = build_notebook_model(size)
    model2.load_weights(exported)
    keras_probs = model2.predict(images.astype(np.float32), verbose=0)
    checks.close("c. export loaded by Keras's get_model(): Keras's predictions vs "
                 "wastenet's", ours_probs, keras_probs)
    same = all(np.array_equal(a, b) for a, b in zip(model2.get_weights(), model.get_weights()))
    checks.true("c. export loaded by Keras: every weight bit-exact", same)

    exported_bb = weights_file(wd, "export_notop")
    run([wastenet, "export", "--format", fmt, "--backbone-only", "--weights", outer,
         "--out", exported_bb])
    base3 = build_base(size)
    base3.load_weights(exported_bb)
    checks.close("c. --backbone-only export loaded by Keras's InceptionResNetV2: its "
                 "output vs wastenet's", ours_backbone, keras_backbone(base3, images))
    same = all(np.array_equal(a, b) for a, b in zip(base3.get_weights(), base.get_weights()))
    checks.true("c. --backbone-only export loaded by Keras: every weight bit-exact", same)


if __name__ == "__main__":
    main()
