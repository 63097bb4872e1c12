"""tests/ops/test_augment_tf.py — wastenet's fused augmentation + preprocess against
TensorFlow/Keras itself (tf_keras, Keras 2 semantics) on a real image.

Keras side, exactly the notebook's layers' arithmetic: the image is flipped with
tf.image.flip_left_right (what RandomFlip('horizontal') applies when it flips), then
rotated by tf_keras's own `transform` (tf.raw_ops.ImageProjectiveTransformV3) with
tf_keras's own `get_rotation_matrix`, fill_mode 'reflect', bilinear, then
x / 127.5 - 1 (preprocess_input mode 'tf'); then every preprocess_input mode ('tf',
'caffe', 'torch') against keras.applications' own function. Angles cover 0, +-90, 180 degrees, the
RandomRotation(0.2) extremes (+-0.4*pi) and small ones, with and without flip.

Tolerance 1e-4 in output units (1/80 of a grey level): TensorFlow's cos/sin (Eigen)
and glibc's may differ in the last bit, moving coordinates by ~1e-6 pixels; the
script also reports how many values agree bit for bit.

usage: test_augment_tf.py AUGMENT_DUMP IMAGE.jpg     (exit 77 = skipped: no TF)
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import tensorflow as tf
    from tf_keras.src.layers.preprocessing import image_preprocessing as kp
except Exception as e:  # noqa: BLE001 - any import failure means "cannot run here"
    print(f"skipped: TensorFlow/tf_keras not importable ({e})")
    sys.exit(77)


def keras_reference(images_u8, flips, angles):
    x = tf.convert_to_tensor(images_u8.astype(np.float32))
    x = tf.where(tf.reshape(tf.constant([bool(f) for f in flips]), [-1, 1, 1, 1]),
                 tf.image.flip_left_right(x), x)
    h, w = images_u8.shape[1], images_u8.shape[2]
    matrix = kp.get_rotation_matrix(tf.constant(angles, tf.float32),
                                    tf.cast(h, tf.float32), tf.cast(w, tf.float32))
    x = kp.transform(x, matrix, fill_mode="reflect", fill_value=0.0,
                     interpolation="bilinear")
    x = x / 127.5
    x = x - 1.0
    return x.numpy()


# wastenet mode -> the keras.applications module whose preprocess_input uses it, and
# one grey level in output units (tolerances scale with it)
PREPROCESS_MODES = {"tf": ("xception", 1 / 127.5), "caffe": ("resnet50", 1.0),
                    "torch": ("densenet", 1 / (255 * 0.225))}


def check_preprocess_modes(dump, raw):
    """Each preprocess_input mode against keras.applications.<module>.preprocess_input,
    on numpy pixels and on a tensor (the notebook's path): after the augmentation, and
    bit for bit without rotation."""
    import tf_keras
    h, w = 29, 31
    img = tf.cast(tf.round(tf.image.resize(raw, [h, w])), tf.uint8).numpy()
    angles = np.array([0.0, 0.0, 0.3, -1.0], dtype=np.float32)
    flips = [0, 1, 0, 1]
    batch = np.repeat(img[None], len(angles), axis=0)
    # the augmented pixels before preprocessing: keras_reference's transform without
    # its final 'tf' step
    x = tf.convert_to_tensor(batch.astype(np.float32))
    x = tf.where(tf.reshape(tf.constant([bool(f) for f in flips]), [-1, 1, 1, 1]),
                 tf.image.flip_left_right(x), x)
    matrix = kp.get_rotation_matrix(tf.constant(angles, tf.float32), tf.cast(h, tf.float32),
                                    tf.cast(w, tf.float32))
    unprocessed = kp.transform(x, matrix, fill_mode="reflect", fill_value=0.0,
                               interpolation="bilinear").numpy()
    failures = 0
    for mode, (module, grey) in PREPROCESS_MODES.items():
        pre = getattr(tf_keras.applications, module).preprocess_input
        want_np = pre(unprocessed.copy())
        want_tensor = pre(tf.constant(unprocessed)).numpy()
        with tempfile.TemporaryDirectory() as tmp:
            src, par, out = (os.path.join(tmp, f) for f in ("in.u8", "p.txt", "out.f32"))
            batch.tofile(src)
            with open(par, "w") as f:
                for fl, a in zip(flips, angles):
                    f.write(f"{fl} {float(a)!r}\n")
            subprocess.run([dump, str(len(angles)), str(h), str(w), "3", src, par, out, mode],
                           check=True)
            got = np.fromfile(out, dtype=np.float32).reshape(want_np.shape)
        for i in range(len(angles)):
            for path, want in (("numpy", want_np), ("tensor", want_tensor)):
                err = np.abs(got[i] - want[i]).max()
                exact = bool(np.array_equal(got[i], want[i]))
                ok = exact if angles[i] == 0 else err <= 1e-4 * grey * 127.5
                failures += not ok
                print(f"{'ok' if ok else 'FAIL'} preprocess '{mode}' ({module}.preprocess_input,"
                      f" {path}) flip={flips[i]} angle={angles[i]:+.2f}: max |diff| {err:.2e},"
                      f" bit-identical {exact}")
    return failures


def main():
    dump, image_path = sys.argv[1], sys.argv[2]
    raw = tf.io.decode_jpeg(tf.io.read_file(image_path), channels=3)
    failures = 0
    # an odd, non-square size and a square one: reflect at every border
    for (h, w) in [(37, 45), (32, 32)]:
        img = tf.cast(tf.round(tf.image.resize(raw, [h, w])), tf.uint8).numpy()
        angles = np.array([0.0, 0.05, -0.05, 0.3, -0.7, np.pi / 2, -np.pi / 2, np.pi,
                           0.4 * np.pi, -0.4 * np.pi, 1.0, -2.0], dtype=np.float32)
        n = 2 * len(angles)
        angles = np.concatenate([angles, angles])
        flips = [0] * (n // 2) + [1] * (n // 2)
        batch = np.repeat(img[None], n, axis=0)
        want = keras_reference(batch, flips, angles)
        with tempfile.TemporaryDirectory() as tmp:
            src, par, out = (os.path.join(tmp, f) for f in ("in.u8", "p.txt", "out.f32"))
            batch.tofile(src)
            with open(par, "w") as f:
                for fl, a in zip(flips, angles):
                    f.write(f"{fl} {float(a)!r}\n")
            subprocess.run([dump, str(n), str(h), str(w), "3", src, par, out], check=True)
            got = np.fromfile(out, dtype=np.float32).reshape(want.shape)
        for i in range(n):
            err = np.abs(got[i] - want[i])
            exact = np.mean(got[i] == want[i])
            status = "ok" if err.max() <= 1e-4 else "FAIL"
            if status == "FAIL":
                failures += 1
            print(f"{status} {h}x{w} flip={flips[i]} angle={angles[i]:+.4f}: "
                  f"max |diff| {err.max():.2e}, bit-identical {100 * exact:.1f}%")
    failures += check_preprocess_modes(dump, raw)
    if failures:
        print(f"{failures} augmentations differ from TensorFlow")
        return 1
    print("augmentation matches TensorFlow/Keras")
    return 0


if __name__ == "__main__":
    sys.exit(main())
