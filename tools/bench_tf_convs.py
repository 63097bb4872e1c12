"""tools/bench_tf_convs.py — times TensorFlow's own Conv2D forward and gradients on
the convolution shapes `wastenet bench-ops --shapes-json FILE` measured, on the same
machine, and prints both side by side with the step totals (forward for every conv,
backward only for the trainable ones, as in one fine-tuning step).

usage: python tools/bench_tf_convs.py SHAPES.json [--repeat 3] [--threads N]

Needs tensorflow (tools/setup.sh --test makes .venv with tensorflow-cpu). Only
ordinary convolutions are timed (groups == 1); depthwise shapes are skipped.
A benchmark: run it when the machine is otherwise idle, and right after bench-ops.
"""
import argparse
import json
import time

import numpy as np


def median_time(fn, repeat):
    fn()  # warm-up (graph tracing, oneDNN primitive creation)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = TF default)")
    args = ap.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    spec = json.load(open(args.shapes))
    tot = {"ours_fwd": 0.0, "tf_fwd": 0.0, "ours_bwd": 0.0, "tf_bwd": 0.0}
    print(f"{'shape':44s} {'n':>3s} {'tr':>3s} {'fwd ours':>9s} {'fwd tf':>8s} "
          f"{'bwd ours':>9s} {'bwd tf':>8s}  (ms)")
    for s in spec["shapes"]:
        if s["groups"] != 1:
            continue
        x = tf.random.uniform([s["n"], s["h"], s["w"], s["c"]])
        w = tf.random.uniform([s["kh"], s["kw"], s["c"], s["k"]]) * 0.01
        strides = [1, s["sh"], s["sw"], 1]
        pad = s["padding"]

        @tf.function
        def fwd():
            return tf.nn.conv2d(x, w, strides, pad)

        y = fwd()
        dy = tf.ones_like(y) * 0.25

        @tf.function
        def bwd_data():
            return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w,
                                                  out_backprop=dy, strides=strides,
                                                  padding=pad)

        @tf.function
        def bwd_filter():
            return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w),
                                                   out_backprop=dy, strides=strides,
                                                   padding=pad)

        def run(f):
            return lambda: f().numpy()

        t_fwd = median_time(run(fwd), args.repeat)
        t_bwd = 0.0
        if s["trainable"]:
            t_bwd = median_time(run(bwd_data), args.repeat) + median_time(run(bwd_filter),
                                                                         args.repeat)
        ours_bwd = s["bwd_data_s"] + s["bwd_filter_s"]
        tot["ours_fwd"] += s["count"] * s["fwd_s"]
        tot["tf_fwd"] += s["count"] * t_fwd
        tot["ours_bwd"] += s["trainable"] * ours_bwd
        tot["tf_bwd"] += s["trainable"] * t_bwd
        name = (f"{s['n']}x{s['h']}x{s['w']}x{s['c']} -> {s['k']} {s['kh']}x{s['kw']} "
                f"s{s['sh']} {pad.lower()}")
        print(f"{name:44s} {s['count']:3d} {s['trainable']:3d} {s['fwd_s'] * 1e3:9.2f} "
              f"{t_fwd * 1e3:8.2f} {ours_bwd * 1e3:9.2f} {t_bwd * 1e3:8.2f}", flush=True)
    print(f"\nper step ({spec['model']} {spec['image_size']}px, batch {spec['batch']}):")
    print(f"  conv forward:  wastenet {tot['ours_fwd']:.2f} s   tensorflow {tot['tf_fwd']:.2f} s")
    print(f"  conv backward: wastenet {tot['ours_bwd']:.2f} s   tensorflow {tot['tf_bwd']:.2f} s")


if __name__ == "__main__":
    main()
