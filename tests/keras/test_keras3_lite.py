"""tests/keras/test_keras3_lite.py — EfficientNet-Lite0 to Keras 3 and back.

Keras has no EfficientNet-Lite application, so the architecture Keras 3 sees is the
one `wastenet export --format keras` generates from wastenet's graph (standard
Keras layers only). At 96x96 with random weights (wn_keras_probe init: random
kernels and BN statistics):
  a. Keras 3 keras.models.load_model opens the export with no custom code and
     predicts what wastenet predicts;
  b. what Keras 3 then saves — save_weights(".weights.h5"), save(".keras"),
     save(".h5") — wastenet reads and predicts what Keras 3 predicts;
  c. Keras 3 load_weights takes `--format weights-h5` and `--format h5` into the
     loaded architecture and predicts the same;
  d. tf-keras 2's load_model opens `--format h5-model` (a legacy .h5 with the
     architecture in model_config, Keras 2's dialect) and predicts the same.
Tolerance 1e-5 (normalised max error, keras_common.err). Exit 77 without Keras 3.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_common import Checks, Workdir, binaries, probe_forward, random_images, run  # noqa: E402
import numpy as np  # noqa: E402

try:
    import keras as keras3
except ImportError as e:  # pragma: no cover
    print(f"SKIP: Keras 3 is not installed: {e}")
    sys.exit(77)
if not keras3.__version__.startswith("3."):
    print(f"SKIP: `import keras` is Keras {keras3.__version__}, not 3.x")
    sys.exit(77)

ARCH, SIZE, TOL = "efficientnet_lite0", 96, 1e-5


def predict3(model, images):
    return np.asarray(model(images.astype(np.float32), training=False))


def main():
    probe, wastenet = binaries()
    checks = Checks()
    images = random_images(3, SIZE, seed=7)
    with Workdir("keras3_lite") as wd:
        src = wd("lite.h5")
        run([probe, "init", ARCH, SIZE, SIZE, 6, 21, src])
        bb_ours, ours, _ = probe_forward(probe, wd, src, images, "ours", arch=ARCH)
        exports = {}
        for fmt, name in (("keras", "ours.keras"), ("weights-h5", "ours.weights.h5"),
                          ("h5", "ours.h5"), ("h5-model", "ours_model.h5")):
            exports[fmt] = wd(name)
            run([wastenet, "export", "--format", fmt, "--model", ARCH, "--image-size", SIZE,
                 "--weights", src, "--out", exports[fmt]])
        # ---- a.
        model = keras3.models.load_model(exports["keras"])
        want = predict3(model, images)
        checks.close("a. Keras 3 load_model(--format keras): Keras 3 vs wastenet softmax", want,
                     ours, TOL)
        backbone = model.get_layer(ARCH)
        x = (images.astype(np.float32) - 127.0) / 128.0
        checks.close("a. Keras 3 load_model(--format keras): backbone output",
                     np.asarray(backbone(x, training=False)), bb_ours, TOL)
        # ---- b.
        saved = {"weights.h5": wd("k3.weights.h5"), "keras": wd("k3.keras"), "h5": wd("k3.h5")}
        model.save_weights(saved["weights.h5"])
        model.save(saved["keras"])
        model.save(saved["h5"])
        for fmt, path in saved.items():
            _, probs, _ = probe_forward(probe, wd, path, images, f"b_{fmt.replace('.', '_')}",
                                        arch=ARCH)
            checks.close(f"b. Keras 3 model.save {fmt}: wastenet vs Keras 3", probs, want, TOL)
        # ---- c.
        for fmt in ("weights-h5", "h5"):
            fresh = keras3.models.load_model(exports["keras"])
            for w in fresh.weights:
                w.assign(np.zeros(w.shape, np.float32))
            fresh.load_weights(exports[fmt])
            checks.close(f"c. Keras 3 load_weights(--format {fmt}): Keras 3 vs wastenet",
                         predict3(fresh, images), ours, TOL)
        # ---- d.
        import tf_keras
        m2 = tf_keras.models.load_model(exports["h5-model"])
        checks.close("d. tf-keras 2 load_model(--format h5-model): tf-keras vs wastenet",
                     np.asarray(m2(images.astype(np.float32), training=False)), ours, TOL)
    checks.exit()


if __name__ == "__main__":
    main()
