#!/usr/bin/env python3
"""tools/bench_keras_step.py — the notebook's training step in TensorFlow/Keras
(tf_keras, Keras 2 semantics) on this machine, for `wastenet bench` to be compared
with: the same model (get_model(): augmentation, preprocess, InceptionResNetV2
without top called with training=False, GAP, Dropout(0.2), Dense(softmax)), the
same boundary (the notebook's set_frozen_layers), Adam, categorical cross-entropy,
random images and labels; the median seconds of `train_on_batch` over --steps
steps after --warmup steps (the first call also traces and compiles the graph).

Usage: bench_keras_step.py [--image-size 320] [--batch 64] [--fine-tune-at 500|none|all]
                           [--steps 3] [--warmup 1] [--lr 1e-5]
A benchmark, not a test.
"""
import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.applications import inception_resnet_v2  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-size", type=int, default=320)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--fine-tune-at", default="500")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-5)
    a = ap.parse_args()
    s = a.image_size

    data_augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                          keras.layers.RandomRotation(0.2)])
    inputs = keras.Input(shape=(s, s, 3))
    x = data_augmentation(inputs)
    x = inception_resnet_v2.preprocess_input(x)
    base = inception_resnet_v2.InceptionResNetV2(weights=None, include_top=False,
                                                 input_shape=(s, s, 3))
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(6, activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    # The notebook's set_frozen_layers(fine_tune_at).
    if a.fine_tune_at == "none":
        base.trainable = False
    else:
        base.trainable = True
        if a.fine_tune_at != "all":
            for layer in base.layers[:int(a.fine_tune_at)]:
                layer.trainable = False
    model.compile(loss=keras.losses.CategoricalCrossentropy(),
                  optimizer=keras.optimizers.Adam(a.lr),
                  metrics=[keras.metrics.CategoricalAccuracy()])
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(a.batch, s, s, 3)).astype(np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 6, size=a.batch), 6)
    print(f"keras {keras.__version__} / tensorflow {tf.__version__}: {s}x{s}, batch {a.batch},"
          f" fine-tune-at {a.fine_tune_at}, trainable params {trainable}, "
          f"threads intra {tf.config.threading.get_intra_op_parallelism_threads()} "
          f"(0 = all cores: {os.cpu_count()})", flush=True)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        loss = model.train_on_batch(images, labels)
        dt = time.perf_counter() - t0
        kind = "warm-up" if i < a.warmup else "step"
        print(f"  {kind} {i + 1 if i < a.warmup else i - a.warmup + 1}: {dt:.3f} s "
              f"(loss {loss[0]:.4f})", flush=True)
        if i >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
    print(f"\n  median step      {med:.3f} s over {a.steps} steps "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    print(f"  images/s         {a.batch / med:.2f}")
    print(f"  process peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
