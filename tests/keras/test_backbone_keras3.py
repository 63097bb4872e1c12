#!/usr/bin/env python3
"""tests/keras/test_backbone_keras3.py — one keras.applications backbone other than
InceptionResNetV2 (issue 17) against Keras 3 (`import keras`, 3.x, TensorFlow
backend), as tests/keras/test_backbone_parity.py does against tf-keras 2, at a small
input:

  a. Application(weights=None, include_top=False) with every weight random (BN
     statistics and gamma included), saved by Keras 3 (save_weights("x.weights.h5")):
     wastenet's backbone output equals Keras 3's within 1e-4;
  b. the notebook's get_model() written for Keras 3 with the backbone's own
     preprocess_input, saved the same way and as Keras 3's own .keras archive:
     wastenet's softmax equals Keras 3's from either;
  c. `wastenet export --format weights-h5` and `--format h5` load into a fresh Keras 3
     get_model(), and `--format keras` into keras.models.load_model with no code of
     ours (ZeroPadding2D, SeparableConv2D, ReLU and the caffe/torch preprocess op
     layers as Keras 3 writes them), each predicting what wastenet predicts, and the
     archive's layer classes are those of Keras 3's own save of get_model();
  d. one Adam step, head only (FINE_TUNE_BLOCK none) or fine-tuned from the block
     given (Keras 3: GradientTape in a
     tf.function for the gradients, train_on_batch for the step) from the .weights.h5
     of b's kind: the loss, each weight gradient within 1e-4 (where one misses Keras 3's
     float32 gradient, Keras 3's own float64 gradient decides, as in
     test_train_step_parity.exact_gradients), every weight after the step within 1e-4
     and equal to Keras's Adam on wastenet's gradients, frozen weights unchanged.
The ctest cases train the head only: Keras 3.15 does not keep a nested model called
with training=False in inference mode once the outer model trains (its
BatchNormalization layers then normalise with the batch's statistics and update their
moving statistics, as `model(x, training=True)`, train_on_batch and fit all show),
unlike tf-keras 2, whose semantics (the notebook's, wastenet's) test_backbone_parity.py
checks for fine-tuning; with a frozen backbone both agree.
Exit 77 (skipped) without Keras 3.

usage: test_backbone_keras3.py WN_KERAS_PROBE WASTENET MODEL SIZE FINE_TUNE_BLOCK
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_common import (NUM_CLASSES, Checks, Workdir, binaries, err, probe_forward,  # noqa: E402
                          random_images, run, tf)
from test_keras3_formats import keras3, randomize3  # noqa: E402  (exits 77 without Keras 3)
from test_train_step_parity import N, adam_first_step, ours_by_name  # noqa: E402
import numpy as np  # noqa: E402

APPS3 = {
    "xception": (keras3.applications.Xception, keras3.applications.xception),
    "mobilenet_v2": (keras3.applications.MobileNetV2, keras3.applications.mobilenet_v2),
    "resnet50": (keras3.applications.ResNet50, keras3.applications.resnet50),
    "densenet121": (keras3.applications.DenseNet121, keras3.applications.densenet),
}


# DepthwiseConv2D layers seen (Keras 3 names their weight "kernel", tf-keras 2 and
# wastenet "depthwise_kernel")
DEPTHWISE = set()


def base3(size, model):
    base = APPS3[model][0](weights=None, include_top=False, input_shape=(size, size, 3))
    DEPTHWISE.update(layer.name for layer in base.layers
                     if type(layer) is keras3.layers.DepthwiseConv2D)
    return base


def notebook3(size, model):
    """The notebook's get_model() for Keras 3, in a fresh session, without augmentation
    and with Dropout(0) (the parity step: TF's random streams cannot be reproduced;
    the weight layout is the same). Returns (model, base)."""
    keras3.backend.clear_session()
    inputs = keras3.Input(shape=(size, size, 3))
    x = APPS3[model][1].preprocess_input(inputs)
    base = base3(size, model)
    base.trainable = False
    x = base(x, training=False)
    x = keras3.layers.GlobalAveragePooling2D()(x)
    x = keras3.layers.Dropout(0.0)(x)
    outputs = keras3.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras3.Model(inputs, outputs), base


def layer_classes(model):
    """(name, class) of each layer of the model's nested backbone (its one Functional
    layer; the augmentation is a Sequential), or of the model itself when it has none."""
    nested = [layer for layer in model.layers
              if isinstance(layer, keras3.Model) and not isinstance(layer, keras3.Sequential)]
    inner = nested[0] if nested else model
    # an InputLayer's name is Keras's running count (input_layer_1, input_2, ...)
    return [(None if type(layer).__name__ == "InputLayer" else layer.name, type(layer).__name__)
            for layer in inner.layers]


def set_frozen3(base, fine_tune_at):
    if fine_tune_at is None:  # transfer learning: the backbone frozen
        base.trainable = False
        return
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False


def key3(w):
    """'layer/variable' of a Keras 3 variable, as wastenet's names without ':0'."""
    layer, var = w.path.split("/")[-2:]
    if layer in DEPTHWISE and var == "kernel":
        var = "depthwise_kernel"
    return f"{layer}/{var}"


def ours_key(name):
    """A wastenet/tf-keras 2 weight name as key3 writes it: no ':0', and '/' inside the
    layer name as Keras 3's variable paths write it, '_' (DenseNet's conv1/bn)."""
    name = name[:-2] if name.endswith(":0") else name
    layer, var = name.rsplit("/", 1)
    return f"{layer.replace('/', '_')}/{var}"


def gradients3(model, x, onehot):
    loss_fn = keras3.losses.CategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_weights)

    return [np.asarray(g) for g in step(tf.constant(x), tf.constant(onehot))]


def exact_gradients3(start, model, size, fine_tune_at, x, onehot):
    """Keras 3's gradients of the same step in float64 (see the docstring's d.)."""
    keras3.config.set_floatx("float64")
    try:
        m64, b64 = notebook3(size, model)
        m64.load_weights(start)
        set_frozen3(b64, fine_tune_at)
        keys = [key3(w) for w in m64.trainable_weights]
        grads = gradients3(m64, x.astype(np.float64), onehot.astype(np.float64))
    finally:
        keras3.config.set_floatx("float32")
    return dict(zip(keys, grads))


def train_step(checks, probe, wd, model, size, block, lr=1e-5, seed=81):
    whole, base = notebook3(size, model)
    randomize3(whole, seed)
    start = wd("d_start.weights.h5")
    whole.save_weights(start)
    if block == "none":
        index, label = None, f"d. Keras 3 {model} head only (lr {lr:g})"
    else:
        index = [i for i, layer in enumerate(base.layers) if layer.name.startswith(block)][0]
        label = f"d. Keras 3 {model} fine-tuning from {block} = layer {index} (lr {lr:g})"
    before = {key3(w): np.asarray(w) for w in whole.weights}
    set_frozen3(base, index)
    trainable = [key3(w) for w in whole.trainable_weights]

    images = random_images(N, size, seed + 1)
    labels = np.random.default_rng(seed + 2).integers(0, NUM_CLASSES, N).astype(np.int32)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    x = images.astype(np.float32)
    kgrads = dict(zip(trainable, gradients3(whole, x, onehot)))
    whole.compile(loss=keras3.losses.CategoricalCrossentropy(),
                  optimizer=keras3.optimizers.Adam(lr))
    keras_loss = float(np.asarray(whole.train_on_batch(x, onehot)).ravel()[0])
    after = {key3(w): np.asarray(w) for w in whole.weights}

    arg = "none" if index is None else str(index)
    img, lab, out, gpath = wd("d.u8"), wd("d.i32"), wd("d_after.h5"), wd("d_grads.f32")
    images.tofile(img)
    labels.tofile(lab)
    facts = json.loads(run([probe, "train-step", model, size, size, NUM_CLASSES, start,
                            arg, repr(lr), img, lab, N, out, gpath]).splitlines()[0])
    names = run([probe, "trainable", model, size, size, NUM_CLASSES, arg]).split()
    names = [ours_key(n) for n in names]
    checks.true(f"{label}: trainable weights in Keras 3's order", names == trainable,
                f"{len(names)} vs {len(trainable)}")
    flat = np.fromfile(gpath, np.float32)
    ours_g, at = {}, 0
    for k in trainable:
        size_k = kgrads[k].size
        ours_g[k] = flat[at:at + size_k].reshape(kgrads[k].shape)
        at += size_k
    checks.true(f"{label}: gradient count", at == flat.size, f"{flat.size} vs {at}")
    errors = {k: err(ours_g[k], kgrads[k]) for k in trainable}
    missed = [k for k, e in errors.items() if e > 1e-4]
    exact = {}
    if missed:
        g64 = exact_gradients3(start, model, size, index, x, onehot)
        for k in missed:
            print(f"     {k}: {errors[k]:.3g} from Keras 3's float32 gradient, "
                  f"{err(ours_g[k], g64[k]):.3g} from its float64 one")
            errors[k] = err(ours_g[k], g64[k])
            exact[k] = g64[k]
    worst = max(errors, key=errors.get)
    checks.true(f"{label}: weight gradients within 1e-4"
                + (f" ({len(exact)} of Keras 3's float64 gradients)" if exact else ""),
                errors[worst] <= 1e-4, f"worst normalised error {errors[worst]:.3g} ({worst})")
    rel = abs(facts["loss"] - keras_loss) / abs(keras_loss)
    checks.true(f"{label}: batch loss", rel <= 1e-4,
                f"wastenet {facts['loss']:.7g}, Keras 3 {keras_loss:.7g}, relative {rel:.2g}")

    ours = {ours_key(k[1]): v for k, v in ours_by_name(out, base.name).items()}
    checks.true(f"{label}: the same weights in wastenet's file and Keras 3's model",
                set(ours) == set(after),
                f"{len(ours)} vs {len(after)}; only wastenet's: {sorted(set(ours) - set(after))[:3]}"
                f", only Keras 3's: {sorted(set(after) - set(ours))[:3]}")
    worst_w = worst_adam = 0.0
    frozen_ok = True
    for k in after:
        if k not in ours:
            continue
        if k in ours_g:
            want = after[k]
            if k in exact:  # Keras 3's float32 step is not the reference there
                want = (before[k] + adam_first_step(exact[k], lr)).astype(np.float32)
            worst_w = max(worst_w, err(ours[k], want))
            step = adam_first_step(ours_g[k], lr)
            mine = (before[k] + step).astype(np.float32)
            allowed = 1e-4 * np.max(np.abs(step)) + 4 * np.spacing(np.abs(mine))
            worst_adam = max(worst_adam, float(np.max(np.abs(ours[k] - mine) / allowed)))
        elif not (np.array_equal(ours[k], before[k]) and np.array_equal(after[k], before[k])):
            frozen_ok = False
            print(f"     non-trainable {k} changed")
    checks.true(f"{label}: updated weights within 1e-4", worst_w <= 1e-4,
                f"worst normalised error {worst_w:.3g}")
    checks.true(f"{label}: the update equals Keras's Adam on wastenet's gradients",
                worst_adam <= 1.0, f"worst |difference| / (1e-4 of the step + 4 float32 "
                f"spacings) {worst_adam:.3g}")
    checks.true(f"{label}: non-trainable weights unchanged in both", frozen_ok)


def main():
    probe, wastenet = binaries()
    if len(sys.argv) != 6:
        print(__doc__.strip().splitlines()[-1])
        sys.exit(2)
    model, size, block = sys.argv[3], int(sys.argv[4]), sys.argv[5]
    print(f"reference: Keras {keras3.__version__} ({keras3.backend.backend()} backend)")
    checks = Checks()
    with Workdir(f"backbone3_{model}") as wd:
        # ---- a. the backbone alone
        keras3.backend.clear_session()
        base = base3(size, model)
        randomize3(base, 51)
        notop = wd("notop.weights.h5")
        base.save_weights(notop)
        images = random_images(2, size, 52)
        pre = APPS3[model][1].preprocess_input
        ref = np.asarray(base(pre(images.astype(np.float32)), training=False))
        ours, _, facts = probe_forward(probe, wd, notop, images, "a", model)
        checks.true(f"a. {model} {size}x{size}: Keras 3's .weights.h5 loads as the backbone",
                    facts["scope"] == "backbone", str(facts))
        checks.close(f"a. {model}: backbone output {list(ref.shape)}", ours, ref)

        # ---- b. the notebook's whole model
        whole, base = notebook3(size, model)
        randomize3(whole, 61)
        outer = wd("notebook.weights.h5")
        whole.save_weights(outer)
        images = random_images(3, size, 62)
        ref_probs = np.asarray(whole(images.astype(np.float32), training=False))
        ref_bb = np.asarray(base(pre(images.astype(np.float32)), training=False))
        ours_bb, ours_probs, facts = probe_forward(probe, wd, outer, images, "b", model)
        checks.true("b. Keras 3's get_model() .weights.h5 loads whole (nested backbone)",
                    facts["scope"] == "whole" and facts["nested"] == 1, str(facts))
        checks.close("b. whole model: backbone output", ours_bb, ref_bb)
        checks.close("b. whole model: softmax predictions", ours_probs, ref_probs)
        saved = wd("notebook.keras")  # Keras 3's own archive of the same model
        whole.save(saved)
        _, archive_probs, facts = probe_forward(probe, wd, saved, images, "b_keras", model)
        checks.close("b. Keras 3's model.save('x.keras') of get_model() loads: softmax predictions",
                     archive_probs, ref_probs)

        # ---- c. wastenet's exports, opened by Keras 3
        for fmt, path in (("weights-h5", wd("export.weights.h5")), ("h5", wd("export.h5"))):
            run([wastenet, "export", "--format", fmt, "--model", model, "--image-size", size,
                 "--weights", outer, "--out", path])
            fresh, _ = notebook3(size, model)
            fresh.load_weights(path)
            checks.close(f"c. --format {fmt} loaded by Keras 3's get_model(): predictions",
                         ours_probs, np.asarray(fresh(images.astype(np.float32), training=False)))
        archive = wd("export.keras")
        run([wastenet, "export", "--format", "keras", "--model", model, "--image-size", size,
             "--weights", outer, "--out", archive])
        keras3.backend.clear_session()
        loaded = keras3.models.load_model(archive)
        checks.close("c. --format keras opened by keras.models.load_model: predictions",
                     ours_probs, np.asarray(loaded(images.astype(np.float32), training=False)))
        checks.true("c. --format keras: the backbone's layer classes and names are Keras 3's",
                    layer_classes(loaded) == layer_classes(base),
                    f"first differences: {[(a, b) for a, b in zip(layer_classes(loaded), layer_classes(base)) if a != b][:4]}"
                    f" ({len(layer_classes(loaded))} against {len(layer_classes(base))} layers)")

        # ---- d. one training step
        train_step(checks, probe, wd, model, size, block, lr=1e-3 if block == "none" else 1e-5)
    checks.exit()


if __name__ == "__main__":
    main()
