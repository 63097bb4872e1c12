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
                           [--policy float32|mixed_bfloat16]
--policy mixed_bfloat16: Keras's mixed-precision policy (bfloat16 compute, float32
variables); the classifier's Dense(softmax) stays float32, as the Keras
mixed-precision guide says for the model's output, so the loss is float32.
Prints, last, one line for tools/bench_side_by_side.sh:
  RESULT policy median_s min_s max_s cpu_s_per_step peak_rss_gib
(cpu_s_per_step: the median process CPU time of a step, all threads).
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
    ap.add_argument("--policy", default="float32", choices=["float32", "mixed_bfloat16"])
    a = ap.parse_args()
    s = a.image_size
    keras.mixed_precision.set_global_policy(a.policy)

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
    outputs = keras.layers.Dense(6, activation="softmax", dtype="float32")(x)
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
          f" fine-tune-at {a.fine_tune_at}, policy {a.policy}, trainable params {trainable}, "
          f"threads intra {tf.config.threading.get_intra_op_parallelism_threads()} "
          f"(0 = all cores: {os.cpu_count()})", flush=True)
    times, cpu_times = [], []
    for i in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = model.train_on_batch(images, labels)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        kind = "warm-up" if i < a.warmup else "step"
        print(f"  {kind} {i + 1 if i < a.warmup else i - a.warmup + 1}: {dt:.3f} s "
              f"(loss {loss[0]:.4f})", flush=True)
        if i >= a.warmup:
            times.append(dt)
            cpu_times.append(cpu)
    med = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
    print(f"\n  median step      {med:.3f} s over {a.steps} steps "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    print(f"  images/s         {a.batch / med:.2f}")
    print(f"  process peak RSS {peak:.2f} GiB")
    print(f"RESULT {a.policy} {med:.3f} {min(times):.3f} {max(times):.3f} "
          f"{statistics.median(cpu_times):.2f} {peak:.2f}")


if __name__ == "__main__":
    main()
