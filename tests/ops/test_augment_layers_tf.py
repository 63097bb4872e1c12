"""tests/ops/test_augment_layers_tf.py — the zoom, translation and contrast layers of
wastenet's augmentation (--zoom, --translate, --contrast) against TensorFlow/Keras
itself on a real image, with the same drawn factors.

The chain is the notebook's flip and rotation followed by RandomZoom,
RandomTranslation and RandomContrast, each applied as Keras applies it: its own
resampling of the previous layer's float output (reflect fill, bilinear), then
x / 127.5 - 1. Two references, each from the package's own code:

  Keras 3     keras.layers.RandomZoom / RandomTranslation / RandomContrast
              .transform_images() with the drawn transformation injected (the layers'
              own matrices, backend affine_transform = ImageProjectiveTransformV3, the
              layer's mean and clip); contrast factor per image;
  tf-keras 2  tf_keras's get_zoom_matrix / get_translation_matrix and `transform`
              (ImageProjectiveTransformV3), tf.image.adjust_contrast + clip_by_value(0,
              255) per image (tf-keras 2 itself draws one factor per batch).

The flip and rotation in front are tf-keras's (tests/ops/test_augment_tf.py checks
them alone). Cases: each layer alone and all together, zoom in and out,
non-integer and integer shifts, shifts past the border (reflect), contrast up and
down with clipping, odd non-square sizes. Tolerance 1e-4 in output units (1/80 of a
grey level), as the rotation test: the float32 means of the contrast are summed in
another order (wastenet in double).

A composed single resampling would not do: the script also checks that one
bilinear pass with the product of the matrices lands far (> 100x the tolerance)
from Keras's chain, so this test tells the two apart.

usage: test_augment_layers_tf.py AUGMENT_DUMP IMAGE.jpg     (exit 77 = skipped: no TF)
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import tensorflow as tf
    from tf_keras.src.layers.preprocessing import image_preprocessing as kp
    import keras as keras3
    if not keras3.__version__.startswith("3."):
        raise ImportError(f"keras {keras3.__version__} is not Keras 3")
except Exception as e:  # noqa: BLE001 - any import failure means "cannot run here"
    print(f"skipped: TensorFlow, tf_keras or Keras 3 not importable ({e})")
    sys.exit(77)

TOL = 1e-4


def flip_rotate(images, flips, angles):
    x = tf.convert_to_tensor(images.astype(np.float32))
    x = tf.where(tf.reshape(tf.constant([bool(f) for f in flips]), [-1, 1, 1, 1]),
                 tf.image.flip_left_right(x), x)
    h, w = images.shape[1], images.shape[2]
    m = kp.get_rotation_matrix(tf.constant(angles, tf.float32), tf.cast(h, tf.float32),
                               tf.cast(w, tf.float32))
    return kp.transform(x, m, fill_mode="reflect", fill_value=0.0, interpolation="bilinear")


def keras3_chain(x, zoom, shift, contrast):
    """Keras 3's layers on the rotated batch x, with the drawn factors injected."""
    shape = x.shape
    zl = keras3.layers.RandomZoom(0.5, fill_mode="reflect", interpolation="bilinear")
    x = zl.transform_images(x, {"height_zoom": tf.constant(zoom[:, 1:2]),
                                "width_zoom": tf.constant(zoom[:, 0:1]), "input_shape": shape},
                            training=True)
    tl = keras3.layers.RandomTranslation(0.5, 0.5, fill_mode="reflect", interpolation="bilinear")
    x = tl.transform_images(x, {"translations": tf.constant(shift), "input_shape": shape},
                            training=True)
    cl = keras3.layers.RandomContrast((0.5, 0.5))
    x = cl.transform_images(x, {"contrast_factor": tf.constant(contrast.reshape(-1, 1, 1, 1))},
                            training=True)
    return (tf.convert_to_tensor(x) / 127.5 - 1.0).numpy()


def tfkeras2_chain(x, zoom, shift, contrast):
    h, w = x.shape[1], x.shape[2]
    x = kp.transform(x, kp.get_zoom_matrix(tf.constant(zoom), tf.cast(h, tf.float32),
                                           tf.cast(w, tf.float32)),
                     fill_mode="reflect", fill_value=0.0, interpolation="bilinear")
    x = kp.transform(x, kp.get_translation_matrix(tf.constant(shift)), fill_mode="reflect",
                     fill_value=0.0, interpolation="bilinear")
    x = tf.stack([tf.image.adjust_contrast(x[i], float(contrast[i])) for i in range(x.shape[0])])
    x = tf.clip_by_value(x, 0, 255)
    return (x / 127.5 - 1.0).numpy()


def composed(x_u8, flips, angles, zoom, shift):
    """One resampling with the product of the rotation, zoom and translation maps
    (output -> input: rotation o zoom o translation), for the report only."""
    x = tf.convert_to_tensor(x_u8.astype(np.float32))
    x = tf.where(tf.reshape(tf.constant([bool(f) for f in flips]), [-1, 1, 1, 1]),
                 tf.image.flip_left_right(x), x)
    h, w = x_u8.shape[1], x_u8.shape[2]

    def full(m):
        m = np.asarray(m, np.float64)
        return np.concatenate([m, np.ones((m.shape[0], 1))], 1).reshape(-1, 3, 3)
    r = full(kp.get_rotation_matrix(tf.constant(angles, tf.float32), float(h), float(w)).numpy())
    z = full(kp.get_zoom_matrix(tf.constant(zoom), float(h), float(w)).numpy())
    t = full(kp.get_translation_matrix(tf.constant(shift)).numpy())
    m = r @ z @ t
    flat = (m.reshape(-1, 9)[:, :8] / m.reshape(-1, 9)[:, 8:9]).astype(np.float32)
    y = kp.transform(x, tf.constant(flat), fill_mode="reflect", fill_value=0.0,
                     interpolation="bilinear")
    return (y / 127.5 - 1.0).numpy()


def run_dump(dump, batch, rows):
    n, h, w = batch.shape[:3]
    with tempfile.TemporaryDirectory() as tmp:
        src, par, out = (os.path.join(tmp, f) for f in ("in.u8", "p.txt", "out.f32"))
        batch.tofile(src)
        with open(par, "w") as f:
            for r in rows:
                f.write(" ".join([str(int(r[0]))] + [repr(float(np.float32(v))) for v in r[1:]]) + "\n")
        subprocess.run([dump, str(n), str(h), str(w), "3", src, par, out], check=True)
        return np.fromfile(out, dtype=np.float32).reshape(batch.shape)


def main():
    dump, image_path = sys.argv[1], sys.argv[2]
    raw = tf.io.decode_jpeg(tf.io.read_file(image_path), channels=3)
    failures = 0
    # (flip, angle, zoom_x = zoom_y, dx, dy, contrast): each layer alone, then together
    cases = [
        (0, 0.0, 1.2, 0.0, 0.0, 1.0), (1, 0.0, 0.8, 0.0, 0.0, 1.0),
        (0, 0.0, 1.0, 3.7, -2.2, 1.0), (0, 0.0, 1.0, -9.0, 5.0, 1.0),
        (0, 0.0, 1.0, 14.5, 0.0, 1.0),
        (0, 0.0, 1.0, 0.0, 0.0, 1.6), (1, 0.0, 1.0, 0.0, 0.0, 0.55),
        (0, 0.7, 1.15, -4.4, 6.1, 1.3), (1, -1.1, 0.85, 2.5, -7.75, 0.7),
        (1, 0.3, 1.0, 0.0, 0.0, 1.0), (0, 2.0, 1.3, 8.0, 8.0, 1.45),
        (0, 0.7, 1.15, -4.4, 6.1, 1.0), (1, 2.0, 1.3, 8.0, 8.0, 1.0),
    ]
    composed_gap = 0.0
    for (h, w) in [(37, 45), (32, 32)]:
        img = tf.cast(tf.round(tf.image.resize(raw, [h, w])), tf.uint8).numpy()
        n = len(cases)
        batch = np.repeat(img[None], n, axis=0)
        flips = [c[0] for c in cases]
        angles = np.array([c[1] for c in cases], np.float32)
        zoom = np.array([[c[2], c[2]] for c in cases], np.float32)
        shift = np.array([[c[3], c[4]] for c in cases], np.float32)
        contrast = np.array([c[5] for c in cases], np.float32)
        got = run_dump(dump, batch, [(c[0], c[1], c[2], c[2], c[3], c[4], c[5]) for c in cases])
        rotated = flip_rotate(batch, flips, angles)
        refs = {"Keras 3": keras3_chain(rotated, zoom, shift, contrast),
                "tf-keras 2": tfkeras2_chain(rotated, zoom, shift, contrast)}
        one_pass = composed(batch, flips, angles, zoom, shift)
        for i, c in enumerate(cases):
            for name, want in refs.items():
                err = float(np.abs(got[i] - want[i]).max())
                ok = err <= TOL
                failures += not ok
                print(f"{'ok' if ok else 'FAIL'} {h}x{w} {name}: flip={c[0]} angle={c[1]:+.2f} "
                      f"zoom={c[2]:.2f} shift=({c[3]:+.2f}, {c[4]:+.2f}) contrast={c[5]:.2f}: "
                      f"max |diff| {err:.2e}, bit-identical {100 * np.mean(got[i] == want[i]):.1f}%")
            if c[5] == 1.0 and (c[1] != 0) + (c[2] != 1.0) + (c[3] != 0 or c[4] != 0) >= 2:
                d = float(np.abs(one_pass[i] - refs["Keras 3"][i]).max())
                composed_gap = max(composed_gap, d)
                print(f"     (one composed resampling instead of Keras's chain: max |diff| {d:.3f})")
    # the chain matters: a single composed resampling is far from Keras's result
    ok = composed_gap > 100 * TOL
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'} a composed resampling differs from the chain by up to "
          f"{composed_gap:.3f} (so the test tells them apart)")
    if failures:
        print(f"{failures} comparisons differ from TensorFlow/Keras")
        return 1
    print("zoom, translation and contrast match Keras 3 and tf-keras 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
