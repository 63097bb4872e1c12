#!/usr/bin/env python3
"""tests/keras/test_recipe_parity.py — the recipe options against tf-keras.

  a. label smoothing in the softmax_xent element function (the CPU backend; the CUDA
     kernel runs the same function, tests/gpu compares them): for S in 0, 0.1, 0.3,
     the batch-mean loss and dloss/dlogits equal tf-keras's
     CategoricalCrossentropy(from_logits=True, label_smoothing=S) and its gradient
     (GradientTape) within 1e-6 (Keras's fit takes this logits path for a softmax
     output: checked here too, on a Dense softmax model's evaluate);
  b. `wastenet train --label-smoothing 0.1` (tiny_cnn, no augmentation): the recorded
     validation loss and the test loss equal tf-keras's evaluate of the saved weights
     compiled with CategoricalCrossentropy(label_smoothing=0.1), within 1e-5;
  c. --lr-schedule cosine and step: the rates of steps 0..N equal tf-keras's
     CosineDecay and ExponentialDecay(staircase=True) (float32, 1e-7 relative), and
     the rate a training records for each epoch is the schedule's at the epoch's
     last step;
  d. --recipe notebook resets the options before it (smoothing, schedule) and keeps
     the ones after it;
  e. --weight-decay: the CPU backend's adam_update with weight decay over 6 steps
     (constant rate, and Keras's CosineDecay) equals Keras 3's
     keras.optimizers.Adam(weight_decay=W) and tf-keras 2's tf_keras.optimizers.Adam(
     weight_decay=W) applying the same gradients, after every step (1e-6 of the
     largest weight; bit for bit on this machine; without the decay the results
     differ by more than ten times the difference found); and a
     `wastenet train --weight-decay W` step differs from the same step without it by
     exactly -p0*W*lr on every trainable weight (biases and BN betas included) and by
     nothing on the BN moving statistics (decoupled, before the update, on the
     trainable variables only).

With Keras 3 (keras3_recipe_parity, keras_common.GENERATION) the same checks against
Keras 3's losses and schedules; Keras 3's evaluate takes the clipped probabilities, not
the logits, which agree with the logits form within these tolerances here.

usage: test_recipe_parity.py RECIPE_PROBE WASTENET MAKE_SHAPES
"""
import csv
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_common import SHAPES_CLASSES as CLASSES  # noqa: E402
from keras_common import (Checks, Workdir, keras, load_split, np, require_versions,  # noqa: E402
                          tf, tiny_notebook_model)

XENT_TOL = 1e-6
LOSS_TOL = 1e-5
LR_TOL = 1e-7
WD_TOL = 1e-6


def run(cmd):
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} exited {p.returncode}:\n{p.stderr}")
    return p.stdout


def train(wastenet, data, runs, name, extra):
    run([wastenet, "train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
         "--image-size", "32", "--batch", "16", "--fine-tune-at", "all", "--no-augment",
         "--runs", runs, "--name", name, "--progress", "none", "--no-plots"] + extra)
    d = [x for x in os.listdir(runs) if x.endswith("-" + name)][0]
    d = os.path.join(runs, d)
    with open(os.path.join(d, "history.csv"), newline="") as f:
        return d, list(csv.DictReader(f))


def keras_eval(weights, folder, smoothing):
    keras.backend.clear_session()
    m = tiny_notebook_model(32, len(CLASSES))
    m.load_weights(weights)
    m.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
              metrics=["categorical_accuracy"])
    _, labels, images = load_split(folder, CLASSES)
    onehot = np.eye(len(CLASSES), dtype=np.float32)[labels]
    return m.evaluate(images, onehot, batch_size=16, verbose=0)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    probe, wastenet, make_shapes = sys.argv[1:4]
    require_versions()
    checks = Checks()
    rng = np.random.default_rng(5)
    with Workdir("recipe") as wd:
        # a. the element function
        n, k = 9, 6
        z = rng.uniform(-4, 4, (n, k)).astype(np.float32)
        labels = rng.integers(0, k, n).astype(np.int32)
        z.tofile(wd("z.f32")), labels.tofile(wd("labels.i32"))
        onehot = np.eye(k, dtype=np.float32)[labels]
        for s in (0.0, 0.1, 0.3):
            run([probe, "xent", n, k, s, wd("z.f32"), wd("labels.i32"), wd("out.f32")])
            out = np.fromfile(wd("out.f32"), np.float32)
            zt = tf.constant(z)
            with tf.GradientTape() as tape:
                tape.watch(zt)
                loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=s)(
                    onehot, zt)
            grad = tape.gradient(loss, zt).numpy()
            checks.true(f"a. label smoothing {s}: batch loss vs Keras's",
                        abs(out[0] - float(loss)) <= XENT_TOL * max(1.0, abs(float(loss))),
                        f"wastenet {out[0]:.8f}, keras {float(loss):.8f}")
            checks.close(f"a. label smoothing {s}: dloss/dlogits vs Keras's GradientTape",
                         out[1:].reshape(n, k), grad, XENT_TOL)
        # Keras's evaluate of a softmax output takes the logits path (no clipping)
        inp = keras.Input((k,))
        dense = keras.layers.Dense(k, activation="softmax")
        m = keras.Model(inp, dense(inp))
        m.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
        x = rng.normal(0, 3, (n, k)).astype(np.float32)
        logits = x @ dense.kernel.numpy() + dense.bias.numpy()
        via_logits = float(keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
            onehot, logits))
        ev = m.evaluate(x, onehot, batch_size=n, verbose=0)
        checks.true("a. Keras's evaluate on a softmax model = the logits form", abs(ev - via_logits) < 1e-6,
                    f"{ev:.8f} vs {via_logits:.8f}")

        # b. a training with label smoothing: its validation and test losses
        data = wd("data")
        subprocess.run([make_shapes, data, "20", "8", "10", "4"], check=True)
        d, hist = train(wastenet, data, wd("runs"), "ls", ["--epochs", "2", "--label-smoothing", "0.1"])
        weights = os.path.join(d, "train_weights.h5")
        best = max(hist, key=lambda h: float(h["val_accuracy"]))
        k_loss, k_acc = keras_eval(weights, os.path.join(data, "validation"), 0.1)
        checks.true("b. --label-smoothing 0.1: val_loss of the restored epoch = Keras's evaluate",
                    abs(float(best["val_loss"]) - k_loss) <= LOSS_TOL and
                    abs(float(best["val_accuracy"]) - k_acc) < 1e-7,
                    f"wastenet {float(best['val_loss']):.8f}, keras {k_loss:.8f}")
        test = json.load(open(os.path.join(d, "train_test.json")))
        k_loss, _ = keras_eval(weights, os.path.join(data, "test"), 0.1)
        checks.true("b. --label-smoothing 0.1: test loss = Keras's evaluate",
                    abs(test["loss"] - k_loss) <= LOSS_TOL, f"wastenet {test['loss']:.8f}, keras {k_loss:.8f}")
        plain, _ = keras_eval(weights, os.path.join(data, "test"), 0.0)
        checks.true("b. (the smoothed loss differs from the plain one)", abs(plain - k_loss) > 1e-3,
                    f"{plain:.6f} vs {k_loss:.6f}")

        # c. schedules
        steps = 300
        for kind, keras_sched, args in [
                ("cosine", keras.optimizers.schedules.CosineDecay(1e-3, 200), [1e-3, 200, 1, 1]),
                ("step", keras.optimizers.schedules.ExponentialDecay(3e-4, 40, 0.5, staircase=True),
                 [3e-4, 1, 40, 0.5])]:
            ours = np.array([float(v) for v in run([probe, "lr", kind] + args + [steps]).split()])
            want = np.array([float(keras_sched(i)) for i in range(steps)], np.float64)
            rel = np.max(np.abs(ours - want) / np.maximum(want, 1e-30))
            checks.true(f"c. --lr-schedule {kind}: steps 0..{steps - 1} vs Keras", rel <= LR_TOL and
                        len(ours) == steps, f"max relative difference {rel:.3g}")
        n_train, batch, epochs = 60, 16, 3
        spe = -(-n_train // batch)
        d, hist = train(wastenet, data, wd("runs"), "cos",
                        ["--epochs", epochs, "--no-early-stopping", "--lr-schedule", "cosine"])
        sched = keras.optimizers.schedules.CosineDecay(1e-3, epochs * spe)
        want = [float(sched(e * spe + spe - 1)) for e in range(epochs)]
        got = [float(h["lr"]) for h in hist]
        checks.true("c. a cosine training records the schedule's rate at each epoch's last step",
                    len(got) == epochs and all(abs(a - b) <= LR_TOL * b for a, b in zip(got, want)),
                    f"{got} vs {want}")
        d, hist = train(wastenet, data, wd("runs"), "step",
                        ["--epochs", epochs, "--no-early-stopping", "--lr-schedule", "step",
                         "--lr-step-epochs", "1", "--lr-step-factor", "0.5"])
        sched = keras.optimizers.schedules.ExponentialDecay(1e-3, spe, 0.5, staircase=True)
        want = [float(sched(e * spe + spe - 1)) for e in range(epochs)]
        got = [float(h["lr"]) for h in hist]
        checks.true("c. a step training halves the rate every epoch", all(
            abs(a - b) <= LR_TOL * b for a, b in zip(got, want)) and len(got) == epochs, f"{got} vs {want}")

        # d. --recipe notebook
        d, hist = train(wastenet, data, wd("runs"), "nb",
                        ["--lr-schedule", "cosine", "--label-smoothing", "0.2", "--recipe", "notebook",
                         "--model", "tiny_cnn", "--weights", "none", "--image-size", "32",
                         "--batch", "16", "--fine-tune-at", "all", "--epochs", "2",
                         "--no-early-stopping"])
        k_plain, _ = keras_eval(os.path.join(d, "train_weights.h5"), os.path.join(data, "validation"), 0.0)
        checks.true("d. --recipe notebook after --lr-schedule/--label-smoothing resets them",
                    all(float(h["lr"]) == float(np.float32(1e-3)) for h in hist) and
                    abs(float(hist[-1]["val_loss"]) - k_plain) <= LOSS_TOL,
                    f"lr {[h['lr'] for h in hist]}, val_loss {hist[-1]['val_loss']} vs plain {k_plain:.8f}")
        d, hist = train(wastenet, data, wd("runs"), "nb2",
                        ["--recipe", "notebook", "--model", "tiny_cnn", "--weights", "none",
                         "--image-size", "32", "--batch", "16", "--fine-tune-at", "all",
                         "--epochs", "2", "--no-early-stopping", "--label-smoothing", "0.2"])
        k_ls, _ = keras_eval(os.path.join(d, "train_weights.h5"), os.path.join(data, "validation"), 0.2)
        checks.true("d. options after --recipe notebook are kept",
                    abs(float(hist[-1]["val_loss"]) - k_ls) <= LOSS_TOL,
                    f"val_loss {hist[-1]['val_loss']} vs Keras with smoothing 0.2 {k_ls:.8f}")

        # e. weight decay
        check_weight_decay(checks, probe, wastenet, data, wd)
    checks.exit()


def keras_adam_run(opt_module, make_var, p0, grads, wd, lr):
    """The parameters after each of Adam(lr, weight_decay=wd)'s steps on grads."""
    var = make_var(p0)
    opt = opt_module.Adam(learning_rate=lr, weight_decay=wd)
    out = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        out.append(np.array(var.numpy()))
    return np.stack(out)


def check_weight_decay(checks, probe, wastenet, data, wd):
    import keras as keras3  # Keras 3
    rng = np.random.default_rng(11)
    count, steps = 40, 6
    p0 = rng.normal(0, 0.5, count).astype(np.float32)
    grads = rng.normal(0, 1, (steps, count)).astype(np.float32)
    p0.tofile(wd("p0.f32")), grads.tofile(wd("g.f32"))
    for label, decay, k3_lr, k2_lr in [
            ("constant lr 1e-2", 0.5, 1e-2, 1e-2),
            ("constant lr 1e-3", 0.004, 1e-3, 1e-3),
            ("CosineDecay(5e-2, 8)", 0.1, keras3.optimizers.schedules.CosineDecay(5e-2, 8),
             keras.optimizers.schedules.CosineDecay(5e-2, 8))]:
        lrs = np.array([float(k2_lr(i)) if callable(k2_lr) else k2_lr for i in range(steps)],
                       np.float32)
        lrs.tofile(wd("lrs.f32"))
        ours = {}
        for w in (decay, 0.0):
            run([probe, "adam", count, steps, w, wd("p0.f32"), wd("g.f32"), wd("lrs.f32"), wd("out.f32")])
            ours[w] = np.fromfile(wd("out.f32"), np.float32).reshape(steps, count)
        scale = float(np.abs(p0).max())
        for name, module, make_var, lr in [
                ("Keras 3 keras.optimizers.Adam", keras3.optimizers, lambda v: keras3.Variable(v), k3_lr),
                ("tf-keras 2 tf_keras.optimizers.Adam", keras.optimizers, lambda v: tf.Variable(v), k2_lr)]:
            want = keras_adam_run(module, make_var, p0, grads, decay, lr)
            err = float(np.abs(ours[decay] - want).max()) / scale
            gap = float(np.abs(ours[0.0] - want).max()) / scale
            checks.true(f"e. weight decay {decay}, {label}: 6 steps vs {name}(weight_decay)",
                        err <= WD_TOL and gap > 10 * max(err, 1e-9),
                        f"max |difference| {err:.2e} of the largest weight (without the decay: {gap:.2e})")
    # a training step with and without --weight-decay, from the same random weights
    keras.backend.clear_session()
    m = tiny_notebook_model(32, len(CLASSES))
    from keras_common import randomize, weights_file
    randomize(m, 3)
    start = weights_file(wd, "start")
    m.save_weights(start)
    lr, decay = 1e-2, 0.5
    dirs = {}
    for w in (0.0, decay):
        d, hist = train(wastenet, data, wd("runs"), f"wd{w}".replace(".", "_"),
                        ["--weights", start, "--epochs", "1", "--batch", "64", "--no-early-stopping",
                         "--lr", lr, "--weight-decay", w])
        dirs[w] = d

    def weights_of(d):
        keras.backend.clear_session()
        k = tiny_notebook_model(32, len(CLASSES))
        k.load_weights(os.path.join(d, "train_weights.h5"))
        for layer in k.layers:
            layer.trainable = True
        k.get_layer("tiny_cnn").trainable = True
        return ([v.numpy() for v in k.trainable_weights], [v.numpy() for v in k.non_trainable_weights],
                [v.name for v in k.trainable_weights])

    keras.backend.clear_session()
    k0 = tiny_notebook_model(32, len(CLASSES))
    k0.load_weights(start)
    k0.get_layer("tiny_cnn").trainable = True
    p_start = [v.numpy() for v in k0.trainable_weights]
    tr_a, fixed_a, names = weights_of(dirs[0.0])
    tr_b, fixed_b, _ = weights_of(dirs[decay])
    worst, where = 0.0, ""
    for name, a, b, p in zip(names, tr_a, tr_b, p_start):
        want = -(p * np.float32(decay)) * np.float32(lr)
        e = float(np.abs((b - a) - want).max()) / max(float(np.abs(want).max()), 1e-30)
        if e > worst:
            worst, where = e, name
    checks.true("e. --weight-decay 0.5 --lr 1e-2: one step minus the same step without decay = "
                "-p0*wd*lr on every trainable weight (kernels, biases, BN betas)",
                len(names) >= 8 and worst <= 1e-3, f"{len(names)} weights, worst relative error {worst:.2e} ({where})")
    checks.true("e. --weight-decay leaves the BN moving statistics alone",
                len(fixed_a) > 0 and all(np.array_equal(a, b) for a, b in zip(fixed_a, fixed_b)),
                f"{len(fixed_a)} non-trainable weights")


if __name__ == "__main__":
    main()
