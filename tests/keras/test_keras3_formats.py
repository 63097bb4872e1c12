"""tests/keras/test_keras3_formats.py — the files Keras 3 users have, both ways.

With the real Keras 3 (`import keras`, 3.x) and tf-keras 2 (`import tf_keras`) from the
test environment, on the notebook's get_model() at 75x75 with random weights (BN
statistics included):
  a. wastenet reads what Keras 3 saves — model.save_weights("x.weights.h5"),
     model.save("x.keras"), model.save("x.h5") — and predicts what Keras 3 predicts;
     also a .weights.h5 without the layers' name attributes (older Keras 3), which
     wastenet must match by Keras 3's slots as load_weights does;
  b. Keras 3 loads `wastenet export --format weights-h5` into a fresh get_model()
     (backbone frozen, and trainable: .weights.h5 is matched per layer) and
     `--format h5` (backbone frozen), opens `--format keras` with load_model, and
     tf-keras 2 loads `--format h5`; each predicts what wastenet predicts;
  c. bad inputs end with exit status 1 and a message naming the problem: a truncated
     .keras, a .keras of another architecture, a .weights.h5 of another model.
Tolerance: 1e-5 normalised max error on the softmax (keras_common.err).
Exit 77 (skipped) without Keras 3.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_common import (Checks, Workdir, binaries, build_notebook_model, probe_forward,  # noqa: E402
                          random_images)
import numpy as np  # noqa: E402
import h5py  # noqa: E402

try:
    import keras as keras3
    from keras.applications import inception_resnet_v2 as irv2_3
except ImportError as e:  # pragma: no cover
    print(f"SKIP: Keras 3 is not installed: {e}")
    sys.exit(77)
if not keras3.__version__.startswith("3."):
    print(f"SKIP: `import keras` is Keras {keras3.__version__}, not 3.x")
    sys.exit(77)

SIZE = 75
TOL = 1e-5


def get_model3(trainable=False):
    """The notebook's get_model() written for Keras 3, in a fresh session."""
    keras3.backend.clear_session()
    inputs = keras3.Input(shape=(SIZE, SIZE, 3))
    x = keras3.Sequential([keras3.layers.RandomFlip("horizontal"),
                           keras3.layers.RandomRotation(0.2)])(inputs)
    x = irv2_3.preprocess_input(x)
    base = keras3.applications.InceptionResNetV2(weights=None, include_top=False,
                                                 input_shape=(SIZE, SIZE, 3))
    base.trainable = trainable
    x = base(x, training=False)
    x = keras3.layers.GlobalAveragePooling2D()(x)
    x = keras3.layers.Dropout(0.2)(x)
    outputs = keras3.layers.Dense(6, activation="softmax")(x)
    return keras3.Model(inputs, outputs)


def randomize3(model, seed):
    """As keras_common.randomize, for Keras 3 variables (names without scope)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name, shape = w.path.split("/")[-1], tuple(w.shape)
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            fan_out = int(shape[-1]) * (int(np.prod(shape[:-2])) if len(shape) == 4 else 1)
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            v = rng.uniform(-lim, lim, shape)
        elif name == "moving_variance":
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.uniform(-0.1, 0.1, shape) + (1.0 if name == "gamma" else 0.0)
        w.assign(v.astype(np.float32))


def predict3(model, images):
    return np.asarray(model(images.astype(np.float32), training=False))


def wastenet_fails(checks, what, cmd, expect):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    ok = p.returncode == 1 and expect in p.stderr
    checks.true(what, ok, f"exit {p.returncode}: {p.stderr.strip()[:300]}")


def drop_name_attrs(src, dst):
    """A .weights.h5 as Keras 3 versions before the vars 'name' attribute wrote it."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        def strip(name, obj):
            if isinstance(obj, h5py.Group) and "name" in obj.attrs:
                del obj.attrs["name"]
        f.visititems(strip)
        if "name" in f["vars"].attrs:
            del f["vars"].attrs["name"]


def main():
    probe, wastenet = binaries()
    print(f"Keras 3: {keras3.__version__}")
    checks = Checks()
    images = random_images(3, SIZE, seed=5)
    with Workdir("keras3") as wd:
        model = get_model3()
        randomize3(model, seed=11)
        want = predict3(model, images)
        base = model.get_layer("inception_resnet_v2")
        want_bb = np.asarray(base(irv2_3.preprocess_input(images.astype(np.float32)),
                                  training=False))
        files = {"weights.h5": wd("k3.weights.h5"), "keras": wd("k3.keras"), "h5": wd("k3.h5")}
        model.save_weights(files["weights.h5"])
        model.save(files["keras"])
        model.save(files["h5"])
        # ---- a. we read what Keras 3 saves
        for fmt, path in files.items():
            bb, probs, facts = probe_forward(probe, wd, path, images, f"a_{fmt.replace('.', '_')}")
            checks.close(f"a. Keras 3 model.save {fmt}: wastenet vs Keras 3 backbone output", bb,
                         want_bb, TOL)
            checks.close(f"a. Keras 3 model.save {fmt}: wastenet vs Keras 3 softmax", probs, want,
                         TOL)
        old = wd("k3_noname.weights.h5")
        drop_name_attrs(files["weights.h5"], old)
        bb, probs, facts = probe_forward(probe, wd, old, images, "a_noname")
        checks.true("a. .weights.h5 without name attributes: matched by slot, not by name",
                    facts["by_name"] == 0, str(facts))
        checks.close("a. .weights.h5 without name attributes: backbone output", bb, want_bb, TOL)
        checks.close("a. .weights.h5 without name attributes: softmax", probs, want, TOL)

        # ---- b. Keras 3 and tf-keras 2 read what we export
        _, ours, _ = probe_forward(probe, wd, files["keras"], images, "b_ours")
        exp3, exp2 = wd("ours.weights.h5"), wd("ours.h5")
        subprocess.run([wastenet, "export", "--format", "weights-h5", "--weights", files["keras"],
                        "--out", exp3], check=True, capture_output=True)
        subprocess.run([wastenet, "export", "--format", "h5", "--weights", files["keras"],
                        "--out", exp2], check=True, capture_output=True)
        for trainable in (False, True):
            m3 = get_model3(trainable)
            m3.load_weights(exp3)
            checks.close(f"b. Keras 3 load_weights(--format weights-h5), backbone "
                         f"{'trainable' if trainable else 'frozen'}: Keras 3 vs wastenet",
                         predict3(m3, images), ours, TOL)
        m3 = get_model3(False)
        m3.load_weights(exp2)
        checks.close("b. Keras 3 load_weights(--format h5), backbone frozen: Keras 3 vs "
                     "wastenet", predict3(m3, images), ours, TOL)
        del m3
        exp_keras = wd("ours.keras")
        subprocess.run([wastenet, "export", "--format", "keras", "--image-size", str(SIZE),
                        "--weights", files["keras"], "--out", exp_keras], check=True,
                       capture_output=True)
        m3 = keras3.models.load_model(exp_keras)
        checks.close("b. Keras 3 load_model(--format keras), no custom code: Keras 3 vs "
                     "wastenet", predict3(m3, images), ours, TOL)
        del m3
        m2, _ = build_notebook_model(SIZE)
        m2.load_weights(exp2)
        checks.close("b. tf-keras 2 load_weights(--format h5): tf-keras vs wastenet",
                     np.asarray(m2(images.astype(np.float32), training=False)), ours, TOL)
        del m2

        # ---- c. bad inputs
        trunc = wd("truncated.keras")
        with open(files["keras"], "rb") as f:
            data = f.read()
        with open(trunc, "wb") as f:
            f.write(data[: len(data) // 2])
        img = wd("c_images.u8")
        images.tofile(img)
        fwd = [probe, "forward", "irv2", SIZE, SIZE, 6]
        tail = [img, 3, wd("c_bb.f32"), wd("c_pr.f32")]
        wastenet_fails(checks, "c. truncated .keras refused", fwd + [trunc] + tail,
                       "truncated or damaged")
        keras3.backend.clear_session()
        inner_in = keras3.Input(shape=(SIZE, SIZE, 3))
        inner = keras3.Model(inner_in, keras3.layers.Conv2D(8, 3)(inner_in), name="tiny")
        outer_in = keras3.Input(shape=(SIZE, SIZE, 3))
        x = keras3.layers.GlobalAveragePooling2D()(inner(outer_in))
        other = keras3.Model(outer_in, keras3.layers.Dense(6, activation="softmax")(x))
        other.save(wd("other.keras"))
        other.save_weights(wd("other.weights.h5"))
        wastenet_fails(checks, "c. .keras of another architecture refused",
                       fwd + [wd("other.keras")] + tail, "another architecture")
        wastenet_fails(checks, "c. .weights.h5 of another model refused",
                       fwd + [wd("other.weights.h5")] + tail, "another architecture")
        wastenet_fails(checks, "c. wastenet predict on a truncated .keras",
                       [wastenet, "predict", "--image-size", SIZE, "--weights", trunc,
                        img], "truncated or damaged")
    checks.exit()


if __name__ == "__main__":
    main()
