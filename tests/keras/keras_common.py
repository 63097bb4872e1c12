"""tests/keras/keras_common.py — shared pieces of the Keras parity suite.

The reference is either Keras generation, chosen by the environment variable
WN_KERAS_GENERATION (CMake registers each parity test once per generation:
keras_<name> for 2, keras3_<name> for 3):
  2 (default)  Keras 2 as tf-keras 2.21 (`import tf_keras as keras`)
  3            Keras 3 (`import keras`, 3.15) on the TensorFlow backend
both with tensorflow-cpu 2.21 (pinned in tests/requirements.txt), float32 on the
CPU. Where the generations differ the helpers below say so: weight names
(weight_name: Keras 3 variables are named by path, "conv2d/kernel", Keras 2's
"conv2d/kernel:0"), the weight file suffix save_weights wants (weights_file:
Keras 3 writes only .weights.h5). Every
script builds its Keras models in a fresh session (clear_session) so that the auto
names (conv2d, conv2d_1, ...) are the ones wastenet uses, runs wastenet through
tests/keras/wn_keras_probe (a test-only C program) or the `wastenet` binary, and
compares. Generated weight files live in a temporary folder that is removed at the
end, never in the source tree.

Error measure: for two tensors a (wastenet) and b (Keras), the normalised maximum
error max|a - b| / max|b|: a relative error that stays meaningful where b crosses
zero (ReLU outputs, small logits). The issue's tolerance is 1e-4 for float32.

Exit codes: 0 pass, 1 fail, 77 skipped (ctest SKIP_RETURN_CODE) when TensorFlow or
tf-keras cannot be imported.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

GENERATION = os.environ.get("WN_KERAS_GENERATION", "2")
if GENERATION not in ("2", "3"):
    print(f"FAIL: WN_KERAS_GENERATION={GENERATION!r}: expected 2 (tf-keras) or 3 (Keras 3)")
    sys.exit(1)
KERAS3 = GENERATION == "3"

try:
    import numpy as np
    import h5py  # noqa: F401  (the scripts use it through this module)
    import tensorflow as tf
    if KERAS3:
        import keras
    else:
        import tf_keras as keras
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: the Keras parity suite needs tensorflow-cpu, "
          f"{'keras 3' if KERAS3 else 'tf-keras'}, h5py and numpy (tools/setup.sh --test): {e}")
    sys.exit(77)

TOL = 1e-4
NUM_CLASSES = 6


def require_versions():
    """The suite compares against the generation asked for: tf-keras 2.x or Keras 3.x."""
    if not keras.__version__.startswith(GENERATION + "."):
        if KERAS3:  # `import keras` is another generation: nothing to compare against
            print(f"SKIP: `import keras` is Keras {keras.__version__}, not 3.x")
            sys.exit(77)
        print(f"FAIL: expected tf-keras 2.x, found {keras.__version__}")
        sys.exit(1)
    print(f"reference: tensorflow {tf.__version__}, "
          f"{'Keras' if KERAS3 else 'tf-keras'} {keras.__version__}")


def weight_name(w):
    """A variable's name as wastenet's files and `wn_keras_probe trainable` write it
    ("conv2d/kernel:0"): Keras 2's w.name; Keras 3's path plus ":0"."""
    return w.path + ":0" if KERAS3 else w.name


def weights_file(wd, stem):
    """Where model.save_weights writes: stem.h5 (Keras 2's legacy layout), or
    stem.weights.h5 in Keras 3 (the only suffix it accepts; its per-layer layout)."""
    return wd(stem + (".weights.h5" if KERAS3 else ".h5"))


class Workdir:
    """A temporary folder for generated files, removed on exit."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"wn_keras_{name}_")

    def __call__(self, name):
        return os.path.join(self.path, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# wastenet --model name -> (keras.applications constructor, its module, whose
# preprocess_input the notebook applies)
BACKBONES = {
    "irv2": (lambda **kw: keras.applications.InceptionResNetV2(**kw),
             keras.applications.inception_resnet_v2),
    "xception": (lambda **kw: keras.applications.Xception(**kw), keras.applications.xception),
    "mobilenet_v2": (lambda **kw: keras.applications.MobileNetV2(alpha=1.0, **kw),
                     keras.applications.mobilenet_v2),
    "resnet50": (lambda **kw: keras.applications.ResNet50(**kw), keras.applications.resnet50),
    "densenet121": (lambda **kw: keras.applications.DenseNet121(**kw),
                    keras.applications.densenet),
}


def build_base(size, model="irv2"):
    """Application(weights=None, include_top=False) in a fresh session
    (InceptionResNetV2 unless `model` names another wastenet backbone)."""
    keras.backend.clear_session()
    return BACKBONES[model][0](weights=None, include_top=False, input_shape=(size, size, 3))


def build_notebook_model(size, augment=True, dropout=0.2, model="irv2"):
    """The notebook's get_model() (../shared/docs/SEED.md), in a fresh session:
    Input -> augmentation -> preprocess_input -> base(training=False) -> GAP ->
    Dropout -> Dense(6, softmax), backbone frozen. augment=False leaves the
    augmentation out (the parity training step runs without it); the weight layout
    is the same because those layers have no weights. Returns (model, base)."""
    keras.backend.clear_session()
    inputs = keras.Input(shape=(size, size, 3))
    x = inputs
    if augment:
        x = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                              keras.layers.RandomRotation(0.2)])(x)
    x = BACKBONES[model][1].preprocess_input(x)
    base = BACKBONES[model][0](weights=None, include_top=False, input_shape=(size, size, 3))
    base.trainable = False
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs), base


def set_frozen_layers(base, fine_tune_at):
    """The notebook's set_frozen_layers: base trainable, then layers[:N] frozen;
    None keeps the whole backbone frozen (transfer learning)."""
    if fine_tune_at is None:
        base.trainable = False
        return
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False


def randomize(model, seed):
    """Every weight random, BN moving statistics included, at scales that keep
    InceptionResNetV2's activations finite: kernels Glorot-uniform, biases, beta and
    moving means U(-0.1, 0.1), moving variances U(0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = w.name.split("/")[-1].split(":")[0]
        shape = tuple(w.shape)
        if name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            fan_in = int(np.prod(shape[:-1]))
            fan_out = int(shape[-1]) * (int(np.prod(shape[:-2])) if len(shape) == 4 else 1)
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            v = rng.uniform(-lim, lim, shape)
        elif name == "moving_variance":
            v = rng.uniform(0.5, 1.5, shape)
        elif name in ("bias", "beta", "moving_mean", "gamma"):
            v = rng.uniform(-0.1, 0.1, shape) + (1.0 if name == "gamma" else 0.0)
        else:
            raise RuntimeError(f"unexpected weight {w.name}")
        w.assign(v.astype(np.float32))


def random_images(n, size, seed):
    """uint8 images [n, size, size, 3], as the data loader gives wastenet."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def err(a, b):
    """Normalised maximum error max|a-b| / max|b|."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / (scale if scale > 0 else 1.0))


class Checks:
    """Collects pass/fail lines; exit status 1 when anything failed."""

    def __init__(self):
        self.failed = 0

    def close(self, what, a, b, tol=TOL):
        e = err(a, b)
        ok = e <= tol
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: normalised max error {e:.3g} "
              f"(tolerance {tol:g}, max |keras| {np.max(np.abs(b)):.4g})")
        return ok

    def true(self, what, cond, detail=""):
        self.failed += not cond
        print(f"{'ok  ' if cond else 'FAIL'} {what}{': ' + detail if detail else ''}")
        return cond

    def exit(self):
        print("FAILED" if self.failed else "all checks passed")
        sys.exit(1 if self.failed else 0)


def run(cmd):
    """Runs a wastenet program; returns its stdout, raising with stderr on failure."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} exited {p.returncode}:\n"
                           f"{p.stderr}{p.stdout}")
    return p.stdout


def probe_forward(probe, wd, weights, images, tag, arch="irv2"):
    """wastenet's backbone output and softmax for uint8 images; and the load facts."""
    n, h, w, _ = images.shape
    img, bb, pr = wd(f"{tag}_images.u8"), wd(f"{tag}_backbone.f32"), wd(f"{tag}_probs.f32")
    images.tofile(img)
    out = run([probe, "forward", arch, h, w, NUM_CLASSES, weights, img, n, bb, pr])
    facts = json.loads(out.strip().splitlines()[0])
    shape = facts["backbone_shape"]
    backbone = np.fromfile(bb, np.float32).reshape(shape)
    probs = np.fromfile(pr, np.float32).reshape(n, NUM_CLASSES)
    return backbone, probs, facts


def preprocess(images, model="irv2"):
    """Keras's preprocess_input of the backbone's module on float32 pixels (x / 127.5 - 1
    for InceptionResNetV2)."""
    return BACKBONES[model][1].preprocess_input(images.astype(np.float32))


# tests/train/make_shapes: the synthetic data set's classes, in label order
SHAPES_CLASSES = ["circle", "square", "triangle"]


def tiny_notebook_model(size, k):
    """The notebook's get_model() around wastenet's tiny_cnn (engine/models/tiny_cnn.c),
    backbone frozen as wastenet's whole-model file lists it."""
    inputs = keras.Input(shape=(size, size, 3))
    x = inputs / 127.5 - 1.0
    b_in = keras.Input(shape=(size, size, 3))
    y = b_in
    for filters, stride in ((16, 2), (32, 2), (32, 1)):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization(scale=False, epsilon=1e-3)(y)
        y = keras.layers.Activation("relu")(y)
    base = keras.Model(b_in, y, name="tiny_cnn")
    base.trainable = False
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(k, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def load_split(folder, classes):
    """Files of a class-folder split in wastenet's (Keras's) order, their labels, and
    their pixels as float32 (PNG at the model size: no resize)."""
    paths, labels = [], []
    for c, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(folder, name))):
            paths.append(os.path.join(folder, name, f))
            labels.append(c)
    images = np.stack([tf.io.decode_png(tf.io.read_file(p), channels=3).numpy() for p in paths])
    return paths, np.array(labels), images.astype(np.float32)


def binaries():
    """argv: [script, probe, wastenet]."""
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} WN_KERAS_PROBE WASTENET")
        sys.exit(2)
    return sys.argv[1], sys.argv[2]
