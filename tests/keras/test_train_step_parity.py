#!/usr/bin/env python3
"""tests/keras/test_train_step_parity.py — one training step of the notebook's model
gives Keras's updated weights (issue 5, item 4e).

Two cases, from the same randomised weights (BN moving statistics included):
  - transfer learning: the backbone frozen, only the Dense head trains, Adam(1e-3);
  - fine-tuning from layer 700 (set_frozen_layers(700)), Adam(1e-5).
Keras: compile(CategoricalCrossentropy, Adam(lr), CategoricalAccuracy) then
train_on_batch on 4 images with one-hot labels; augmentation and dropout off
(Dropout(0.0), no augmentation layers; TF's random streams cannot be reproduced).
wastenet: `wn_keras_probe train-step`, the executor's training step.

Checked: the batch loss; the weight gradients (Keras: GradientTape in a tf.function,
as fit computes them) within 1e-4 (see exact_gradients for the tensors where Keras's own
float32 gradient is not the reference); every trainable weight after the step within 1e-4
(normalised max error, keras_common.err); the step itself (new - old) within 1e-2 of
Keras's step (see STEP_TOL: Adam's first step amplifies tiny gradient differences
where |g| is near eps/sqrt(1-b2)); every non-trainable weight (frozen layers, BN
moving statistics) bit-identical to before, in both.

With Keras 3 (keras3_train_step_parity) the same two cases: wastenet starts from
Keras 3's own .weights.h5, and Keras 3's loss takes the probabilities (clipped
log), not the softmax's logits as Keras 2 in a tf.function does; at these random
heads (probabilities near 1/6) the two agree far inside the tolerances. The head-only
step is Keras 3's train_on_batch. The fine-tuned step is not: Keras 3's fit calls the
outer model with training=True and that overrides the notebook's base(x,
training=False) (keras/src/models/functional.py passes the outer training flag to
every layer; keras-team/keras#20285), so the unfrozen BatchNormalization layers
normalise with the batch's statistics and update their moving statistics, which
wastenet (Keras 2's semantics, the notebook's) never does. check_keras3_override shows
that on a small model; the fine-tuned case then steps Keras 3 by hand with the
backbone in inference mode (GradientTape on model(x, training=False), Keras 3's Adam
apply_gradients): the notebook's fine-tuning as Keras 2 runs it, in Keras 3's code.

usage: test_train_step_parity.py WN_KERAS_PROBE WASTENET
"""
import json

import numpy as np

from keras_common import (KERAS3, NUM_CLASSES, Checks, Workdir, binaries,
                          build_notebook_model, err, h5py, keras, random_images, randomize,
                          require_versions, run, set_frozen_layers, tf, weight_name,
                          weights_file)

SIZE = 75
N = 4
# Adam's first step maps a gradient g to about lr*g/(|g| + 3.2e-6) (eps/sqrt(1-b2)):
# for |g| near 3e-6 an absolute gradient difference of 1e-8 (float32 rounding of the
# forward pass) moves the step by ~3e-3*lr. So the step is compared at 1e-2 of lr;
# the gradients themselves are compared at 1e-4.
STEP_TOL = 1e-2


def ours_by_name(path, base_name):
    """{variable name: array} from a whole-model file (nested backbone + dense)."""
    out = {}
    with h5py.File(path, "r") as f:
        if base_name not in f:
            # MobileNetV2's weights=None Keras name carries any input size
            # (mobilenetv2_1.00_64); the exported group has its weights='imagenet' name,
            # mobilenetv2_1.00_224 outside ImageNet's sizes (engine/model/model.h)
            nested = [k for k in f if k != "dense" and len(f[k].attrs["weight_names"]) > 4]
            if len(nested) == 1:
                f_nested = nested[0]
                for w in f[f_nested].attrs["weight_names"]:
                    w = w.decode() if isinstance(w, bytes) else w
                    out[(base_name, w)] = f[f_nested][w][()]
                base_name = None
        for group in ((base_name, "dense") if base_name else ("dense",)):
            g = f[group]
            for w in g.attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                out[(group, w)] = g[w][()]
    return out


def keras_by_name(model, base):
    out = {(base.name, weight_name(w)): w.numpy() for w in base.weights}
    out.update({("dense", weight_name(w)): w.numpy() for w in model.get_layer("dense").weights})
    return out


def gradients(model, x, onehot, training=True):
    """Keras's gradients of the training loss, traced as fit traces them (a
    tf.function, so the loss takes the softmax's logits path in Keras 2, docs §8)."""
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        return tape.gradient(loss, model.trainable_weights)

    return [g.numpy() for g in step(tf.constant(x), tf.constant(onehot))]


def exact_gradients(model, start, fine_tune_at, arch, size, x, onehot, training=True):
    """Keras's gradients of the same step in float64 (set_floatx("float64"), the weights
    of `start`), in model.trainable_weights order. A ReLU whose input lies within float32
    rounding of zero (ResNet50's random-weight activations reach ~100, so the forward
    pass is exact to ~5e-5 there) can switch off in one float32 run and stay on in the
    other; every gradient upstream of it then differs by that one element's share
    (ResNet50 from conv3_block1: 8.8e-4 between float32 Keras and float64 Keras, 9e-7
    between wastenet and float64 Keras). Where a tensor misses Keras's float32 gradient,
    the float64 one decides."""
    keras.backend.set_floatx("float64")
    try:
        m64, b64 = build_notebook_model(size, augment=False, dropout=0.0, model=arch)
        m64.load_weights(start)
        set_frozen_layers(b64, fine_tune_at)
        names = [weight_name(w) for w in m64.trainable_weights]
        grads = gradients(m64, x.astype(np.float64), onehot.astype(np.float64), training)
    finally:
        keras.backend.set_floatx("float32")
    if names != [weight_name(w) for w in model.trainable_weights]:
        raise RuntimeError("the float64 model's trainable weights differ from the float32 one's")
    return grads


def inference_mode_step(model, x, onehot, lr):
    """One Adam step with the model in inference mode (BN on its moving statistics),
    Keras 3's optimizer applying the gradients; returns the batch loss."""
    loss_fn = keras.losses.CategoricalCrossentropy()
    opt = keras.optimizers.Adam(lr)
    opt.build(model.trainable_weights)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_weights),
                                model.trainable_weights))
        return loss

    return float(step(tf.constant(x), tf.constant(onehot)))


def check_keras3_override(checks):
    """Keras 3's fit ignores a nested model's training=False once the model is
    trainable: a small get_model()-like model's unfrozen BN moves its statistics."""
    keras.backend.clear_session()
    b_in = keras.Input((8, 8, 3))
    y = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(b_in))
    base = keras.Model(b_in, y)
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(base(inp, training=False)))
    model = keras.Model(inp, out)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3))
    bn = base.layers[-1]
    before = bn.moving_mean.numpy().copy()
    x = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    model.train_on_batch(x, np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    moved = not np.array_equal(bn.moving_mean.numpy(), before)
    checks.true("Keras 3: fit overrides base(x, training=False) of a trainable backbone (its "
                "BN moving mean moves; Keras 2 and wastenet keep it)", moved,
                "" if moved else "Keras 3 now honours training=False: step the fine-tuned "
                "case with train_on_batch again")


def adam_first_step(g, lr):
    """Keras's Adam (epsilon 1e-7) first update of a weight with gradient g, in float32."""
    g = np.asarray(g, np.float32)
    m = np.float32(0.1) * g
    v = np.float32(0.001) * g * g
    lr_t = np.float32(lr * np.sqrt(1 - 0.999) / (1 - 0.9))
    return -lr_t * m / (np.sqrt(v) + np.float32(1e-7))


def run_case(checks, probe, wd, tag, label, fine_tune_at, lr, seed, arch="irv2", size=SIZE,
             step_tol=STEP_TOL, by_hand=False):
    """step_tol: the tolerance of the step against Keras's step. Where gradients span
    many orders of magnitude (ResNet50's random-weight activations reach ~80), float32
    rounding of the forward pass moves Adam's first step of the smallest gradients by
    more than STEP_TOL; the step is then also checked against Keras's Adam formula
    applied to wastenet's own gradients (1e-4 of the step), which together with the gradient
    check (1e-4) pins the update down. by_hand: Keras's step is inference_mode_step, not
    train_on_batch (Keras 3 fine-tuning, see the top of the file)."""
    model, base = build_notebook_model(size, augment=False, dropout=0.0, model=arch)
    randomize(model, seed)
    start = weights_file(wd, f"{tag}_start")
    model.save_weights(start)
    before = keras_by_name(model, base)
    set_frozen_layers(base, fine_tune_at)
    trainable = {weight_name(w) for w in model.trainable_weights}

    images = random_images(N, size, seed + 1)
    labels = np.random.default_rng(seed + 2).integers(0, NUM_CLASSES, N).astype(np.int32)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    x = images.astype(np.float32)
    keras_grads = gradients(model, x, onehot, training=not by_hand)
    if by_hand:
        keras_loss = inference_mode_step(model, x, onehot, lr)
    else:
        model.compile(loss=keras.losses.CategoricalCrossentropy(),
                      optimizer=keras.optimizers.Adam(lr),
                      metrics=[keras.metrics.CategoricalAccuracy()])
        keras_loss = float(np.ravel(model.train_on_batch(x, onehot))[0])
    after = keras_by_name(model, base)

    img, lab, out = wd(f"{tag}.u8"), wd(f"{tag}.i32"), wd(f"{tag}_after.h5")
    grads_path = wd(f"{tag}_grads.f32")
    images.tofile(img)
    labels.tofile(lab)
    arg = "none" if fine_tune_at is None else str(fine_tune_at)
    facts = json.loads(run([probe, "train-step", arch, size, size, NUM_CLASSES, start, arg,
                            repr(lr), img, lab, N, out, grads_path]).strip().splitlines()[0])
    ours = ours_by_name(out, base.name)

    # the gradients, tensor by tensor, in model.trainable_weights order (the order
    # test_trainable_parity.py shows wastenet shares)
    flat = np.fromfile(grads_path, np.float32)
    sizes = [int(np.prod(g.shape)) for g in keras_grads]
    checks.true(f"{label}: gradient count", flat.size == sum(sizes),
                f"wastenet {flat.size}, Keras {sum(sizes)}")
    exact = {}  # weight name -> Keras's float64 gradient, where float32 Keras missed
    if flat.size == sum(sizes):
        ours_grads, at = {}, 0
        for w, k in zip(model.trainable_weights, sizes):
            ours_grads[weight_name(w)] = flat[at:at + k].reshape(tuple(w.shape))
            at += k
        errors = [err(ours_grads[weight_name(w)], g)
                  for w, g in zip(model.trainable_weights, keras_grads)]
        missed = [i for i, e in enumerate(errors) if e > 1e-4]
        if missed:
            g64 = exact_gradients(model, start, fine_tune_at, arch, size, x, onehot,
                                  training=not by_hand)
            for i in missed:
                name = weight_name(model.trainable_weights[i])
                e64 = err(ours_grads[name], g64[i])
                print(f"     {name}: {errors[i]:.3g} from Keras's float32 gradient, "
                      f"{e64:.3g} from Keras's float64 one (float32 Keras: "
                      f"{err(keras_grads[i], g64[i]):.3g} from it)")
                errors[i] = e64
                exact[name] = g64[i]
        worst = max(errors)
        worst_name = weight_name(model.trainable_weights[errors.index(worst)])
        checks.true(f"{label}: weight gradients within 1e-4"
                    + (f" ({len(exact)} of Keras's float64 gradients)" if exact else ""),
                    worst <= 1e-4, f"worst normalised error {worst:.3g} ({worst_name})")
    else:
        ours_grads = {}
    # where float64 Keras decided the gradient, Keras's float32 step is not the reference
    # either: Keras's Adam (adam_first_step) on the float64 gradient is
    for key in after:
        if key[1] in exact:
            after[key] = (before[key] + adam_first_step(exact[key[1]], lr)).astype(np.float32)

    checks.true(f"{label}: same weight names in wastenet's file and Keras's model",
                set(ours) == set(after), f"{len(ours)} vs {len(after)}")
    rel = abs(facts["loss"] - keras_loss) / abs(keras_loss)
    checks.true(f"{label}: batch loss", rel <= 1e-4,
                f"wastenet {facts['loss']:.7g}, Keras {keras_loss:.7g}, relative {rel:.2g}")

    n_train = n_frozen = 0
    worst_w = worst_step = 0.0
    worst_w_name = worst_step_name = ""
    frozen_ok = True
    for key in sorted(after):
        if key not in ours:
            continue
        name = key[1]
        if name in trainable:
            n_train += 1
            e_w = err(ours[key], after[key])
            e_s = err(ours[key] - before[key], after[key] - before[key])
            if e_w > worst_w:
                worst_w, worst_w_name = e_w, name
            if e_s > worst_step:
                worst_step, worst_step_name = e_s, name
        else:
            n_frozen += 1
            if not (np.array_equal(ours[key], before[key])
                    and np.array_equal(after[key], before[key])):
                frozen_ok = False
                print(f"     non-trainable {name} changed")
    checks.true(f"{label}: {n_train} trainable tensors (Keras: {len(trainable)})",
                n_train == len(trainable) and n_train > 0)
    checks.true(f"{label}: updated weights within 1e-4", worst_w <= 1e-4,
                f"worst normalised error {worst_w:.3g} ({worst_w_name})")
    checks.true(f"{label}: the step (new - old) within {step_tol:g} of Keras's",
                worst_step <= step_tol,
                f"worst normalised error {worst_step:.3g} ({worst_step_name})")
    # in weight space: new - old loses digits where the weight is ~1 (BN gamma) and the
    # step ~lr, so each value may differ by its step's 1e-4 plus 4 float32 spacings
    worst_adam, worst_adam_name = 0.0, ""
    for key in after:
        if key in ours and key[1] in ours_grads:
            step = adam_first_step(ours_grads[key[1]], lr)
            want = (before[key] + step).astype(np.float32)
            allowed = 1e-4 * np.max(np.abs(step)) + 4 * np.spacing(np.abs(want))
            e = float(np.max(np.abs(ours[key] - want) / allowed))
            if e > worst_adam:
                worst_adam, worst_adam_name = e, key[1]
    checks.true(f"{label}: the update equals Keras's Adam on wastenet's gradients",
                len(ours_grads) > 0 and worst_adam <= 1.0,
                f"worst |difference| / (1e-4 of the step + 4 float32 spacings) {worst_adam:.3g} "
                f"({worst_adam_name})")
    checks.true(f"{label}: {n_frozen} non-trainable tensors unchanged in both", frozen_ok)


def main():
    probe, _ = binaries()
    require_versions()
    checks = Checks()
    with Workdir("train_step") as wd:
        run_case(checks, probe, wd, "head", "transfer learning (head only, lr 1e-3)", None, 1e-3, 31)
        if KERAS3:
            check_keras3_override(checks)
        run_case(checks, probe, wd, "ft700",
                 "fine-tuning from 700 (lr 1e-5)" + (", Keras 3 stepped in inference mode"
                                                      if KERAS3 else ""),
                 700, 1e-5, 41, by_hand=KERAS3)
    checks.exit()


if __name__ == "__main__":
    main()
