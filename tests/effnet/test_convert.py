#!/usr/bin/env python3
"""tests/effnet/test_convert.py — tools/convert_efficientnet_lite.py on a tiny state_dict.

Writes a tiny EfficientNet-Lite-shaped state_dict (3 blocks, a few channels, random
values) as a PyTorch .pth file in both of PyTorch's formats (legacy pickle stream, as the
PyPI packages ship, and the zip format of torch >= 1.6), without PyTorch: the two
torch globals a state_dict pickle names are stood in by fake modules. Then converts it
and checks, element by element, that every weight lands in the Keras layout (HWIO
kernels, (kh, kw, C, 1) depthwise kernels, [gamma, beta, mean, var], Dense (in, out)),
that the layer list is the expected Keras-style one, that bad inputs fail with a reason,
and (when tf_keras is importable) that Keras's own load_weights reads the file into a
Keras model of the same structure.

usage: test_convert.py   (exit 0 pass, 1 fail, 77 skip when h5py is missing)
"""
import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)

try:
    import h5py
    import numpy as np
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)

import convert_efficientnet_lite as conv  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


# ------------------------------------------------------------ fake torch for pickling
_torch = types.ModuleType("torch")
_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
    raise AssertionError


_rebuild_tensor_v2.__module__ = "torch._utils"
_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
for _name in ("FloatStorage", "LongStorage"):
    _cls = type(_name, (), {})
    _cls.__module__ = "torch"
    setattr(_torch, _name, _cls)
_torch._utils = _utils
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _utils)


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.shape),
                                     tuple(self.stride), False, collections.OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            stype = _torch.FloatStorage if obj.array.dtype == np.float32 else _torch.LongStorage
            return ("storage", stype, obj.key, "cpu", obj.array.size, None)
        return None


def _tensors(sd):
    """state_dict arrays -> tensor stand-ins; the first two float tensors share one
    storage (second at an offset) and one tensor is a transposed (strided) view, as
    PyTorch files may have."""
    storages, out = [], collections.OrderedDict()
    names = list(sd)
    shared = np.concatenate([sd[names[0]].ravel(), sd[names[1]].ravel()])
    st = _Storage("0", shared)
    storages.append(st)
    out[names[0]] = _Tensor(st, 0, sd[names[0]].shape, _strides(sd[names[0]].shape))
    out[names[1]] = _Tensor(st, sd[names[0]].size, sd[names[1]].shape, _strides(sd[names[1]].shape))
    for name in names[2:]:
        a = sd[name]
        st = _Storage(str(len(storages)), None)
        if name == "_fc.weight":  # stored transposed: a column-major view
            st.array = np.ascontiguousarray(a.T).ravel()
            stride = (1, a.shape[0])
        else:
            st.array = np.ascontiguousarray(a).ravel()
            stride = _strides(a.shape)
        storages.append(st)
        out[name] = _Tensor(st, 0, a.shape, stride)
    return out, storages


def _strides(shape):
    s, acc = [], 1
    for d in reversed(shape):
        s.append(acc)
        acc *= d
    return tuple(reversed(s))


def write_legacy_pth(path, sd):
    tensors, storages = _tensors(sd)
    with open(path, "wb") as f:
        pickle.dump(conv._LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        _Pickler(f, protocol=2).dump(tensors)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(struct.pack("<q", s.array.size))
            f.write(s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())


def write_zip_pth(path, sd):
    tensors, storages = _tensors(sd)
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(tensors)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for s in storages:
            z.writestr("archive/data/" + s.key, s.array.tobytes())
        z.writestr("archive/version", "3\n")


# ------------------------------------------------------------ the tiny network
def tiny_state_dict(rng, se=False):
    sd = collections.OrderedDict()

    def conv_w(name, o, i, k):
        sd[name] = rng.standard_normal((o, i, k, k)).astype(np.float32)

    def bn(prefix, c):
        sd[prefix + "weight"] = rng.uniform(0.5, 2, c).astype(np.float32)
        sd[prefix + "bias"] = rng.standard_normal(c).astype(np.float32)
        sd[prefix + "running_mean"] = rng.standard_normal(c).astype(np.float32)
        sd[prefix + "running_var"] = rng.uniform(0.5, 2, c).astype(np.float32)
        sd[prefix + "num_batches_tracked"] = np.array(0, np.int64)

    conv_w("_conv_stem.weight", 8, 3, 3)
    bn("_bn0.", 8)
    # block 0: no expansion, 3x3, 8 -> 4
    conv_w("_blocks.0._depthwise_conv.weight", 8, 1, 3)
    bn("_blocks.0._bn1.", 8)
    conv_w("_blocks.0._project_conv.weight", 4, 8, 1)
    bn("_blocks.0._bn2.", 4)
    # block 1: expand x3, 5x5, 4 -> 6 (new stage)
    conv_w("_blocks.1._expand_conv.weight", 12, 4, 1)
    bn("_blocks.1._bn0.", 12)
    conv_w("_blocks.1._depthwise_conv.weight", 12, 1, 5)
    bn("_blocks.1._bn1.", 12)
    conv_w("_blocks.1._project_conv.weight", 6, 12, 1)
    bn("_blocks.1._bn2.", 6)
    # block 2: expand x3, 3x3, 6 -> 6 (same stage, identity add)
    conv_w("_blocks.2._expand_conv.weight", 18, 6, 1)
    bn("_blocks.2._bn0.", 18)
    conv_w("_blocks.2._depthwise_conv.weight", 18, 1, 3)
    bn("_blocks.2._bn1.", 18)
    if se:
        conv_w("_blocks.2._se_reduce.weight", 2, 18, 1)
    conv_w("_blocks.2._project_conv.weight", 6, 18, 1)
    bn("_blocks.2._bn2.", 6)
    conv_w("_conv_head.weight", 16, 6, 1)
    bn("_bn1.", 16)
    sd["_fc.weight"] = rng.standard_normal((5, 16)).astype(np.float32)
    sd["_fc.bias"] = rng.standard_normal(5).astype(np.float32)
    return sd


EXPECTED_LAYERS = [
    ("input_1", []),
    ("stem_conv", [("kernel", "_conv_stem.weight", "conv")]),
    ("stem_bn", [("bn", "_bn0.", None)]),
    ("stem_activation", []),
    ("block1a_dwconv", [("depthwise_kernel", "_blocks.0._depthwise_conv.weight", "dw")]),
    ("block1a_bn", [("bn", "_blocks.0._bn1.", None)]),
    ("block1a_activation", []),
    ("block1a_project_conv", [("kernel", "_blocks.0._project_conv.weight", "conv")]),
    ("block1a_project_bn", [("bn", "_blocks.0._bn2.", None)]),
    ("block2a_expand_conv", [("kernel", "_blocks.1._expand_conv.weight", "conv")]),
    ("block2a_expand_bn", [("bn", "_blocks.1._bn0.", None)]),
    ("block2a_expand_activation", []),
    ("block2a_dwconv", [("depthwise_kernel", "_blocks.1._depthwise_conv.weight", "dw")]),
    ("block2a_bn", [("bn", "_blocks.1._bn1.", None)]),
    ("block2a_activation", []),
    ("block2a_project_conv", [("kernel", "_blocks.1._project_conv.weight", "conv")]),
    ("block2a_project_bn", [("bn", "_blocks.1._bn2.", None)]),
    ("block2b_expand_conv", [("kernel", "_blocks.2._expand_conv.weight", "conv")]),
    ("block2b_expand_bn", [("bn", "_blocks.2._bn0.", None)]),
    ("block2b_expand_activation", []),
    ("block2b_dwconv", [("depthwise_kernel", "_blocks.2._depthwise_conv.weight", "dw")]),
    ("block2b_bn", [("bn", "_blocks.2._bn1.", None)]),
    ("block2b_activation", []),
    ("block2b_project_conv", [("kernel", "_blocks.2._project_conv.weight", "conv")]),
    ("block2b_project_bn", [("bn", "_blocks.2._bn2.", None)]),
    ("block2b_add", []),
    ("top_conv", [("kernel", "_conv_head.weight", "conv")]),
    ("top_bn", [("bn", "_bn1.", None)]),
    ("top_activation", []),
    ("avg_pool", []),
    ("top_dropout", []),
    ("predictions", [("kernel", "_fc.weight", "dense"), ("bias", "_fc.bias", "vec")]),
]


def expected_weights(sd, layer, spec):
    """(name, array) in Keras order, computed element by element (not by the
    converter's transposes)."""
    out = []
    for kind, key, how in spec:
        if kind == "bn":
            for t, k in zip(["weight", "bias", "running_mean", "running_var"],
                            ["gamma", "beta", "moving_mean", "moving_variance"]):
                out.append(("%s/%s:0" % (layer, k), sd[key + t]))
            continue
        src = sd[key]
        if how == "conv":
            o, i, kh, kw = src.shape
            dst = np.empty((kh, kw, i, o), np.float32)
            for a in range(kh):
                for b in range(kw):
                    for c in range(i):
                        for d in range(o):
                            dst[a, b, c, d] = src[d, c, a, b]
        elif how == "dw":
            ch, _, kh, kw = src.shape
            dst = np.empty((kh, kw, ch, 1), np.float32)
            for a in range(kh):
                for b in range(kw):
                    for c in range(ch):
                        dst[a, b, c, 0] = src[c, 0, a, b]
        elif how == "dense":
            o, i = src.shape
            dst = np.empty((i, o), np.float32)
            for a in range(i):
                for b in range(o):
                    dst[a, b] = src[b, a]
        else:
            dst = src
        out.append(("%s/%s:0" % (layer, kind), dst))
    return out


def attr_names(v):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(v)] if np.size(v) else []


def check_file(h5path, sd, include_top, label):
    layers = EXPECTED_LAYERS if include_top else EXPECTED_LAYERS[:-3]
    with h5py.File(h5path, "r") as f:
        names = attr_names(f.attrs["layer_names"])
        check(names == [n for n, _ in layers], "%s: layer_names %s" % (label, names))
        check(f.attrs["layer_names"].dtype.kind == "S", "%s: layer_names is not a fixed-length string array" % label)
        check(attr_names(f.attrs["backend"]) == ["tensorflow"], "%s: backend attribute" % label)
        check("top_level_model_weights" in f, "%s: no top_level_model_weights group" % label)
        for name, spec in layers:
            check(name in f, "%s: group %s missing" % (label, name))
            if name not in f:
                continue
            want = expected_weights(sd, name, spec)
            got = attr_names(f[name].attrs["weight_names"])
            check(got == [w for w, _ in want], "%s: %s weight_names %s" % (label, name, got))
            for wname, arr in want:
                if wname not in f[name]:
                    check(False, "%s: dataset %s/%s missing" % (label, name, wname))
                    continue
                d = f[name][wname]
                check(d.dtype == np.dtype("<f4"), "%s: %s dtype %s" % (label, wname, d.dtype))
                check(d.shape == arr.shape, "%s: %s shape %s != %s" % (label, wname, d.shape, arr.shape))
                check(d.shape == arr.shape and np.array_equal(d[...], arr), "%s: %s values differ" % (label, wname))


def keras_model(include_top):
    """The tiny network in tf_keras with the converter's names and 'same' padding."""
    import tf_keras as keras
    L = keras.layers
    x0 = L.Input((16, 16, 3), name="input_1")
    x = L.Conv2D(8, 3, 2, "same", use_bias=False, name="stem_conv")(x0)
    x = L.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = L.Activation("relu", name="stem_activation")(x)

    def block(x, name, cin, cout, k, s, e):
        inp = x
        if e != 1:
            x = L.Conv2D(cin * e, 1, use_bias=False, name=name + "_expand_conv")(x)
            x = L.BatchNormalization(epsilon=1e-3, name=name + "_expand_bn")(x)
            x = L.Activation("relu", name=name + "_expand_activation")(x)
        x = L.DepthwiseConv2D(k, s, "same", use_bias=False, name=name + "_dwconv")(x)
        x = L.BatchNormalization(epsilon=1e-3, name=name + "_bn")(x)
        x = L.Activation("relu", name=name + "_activation")(x)
        x = L.Conv2D(cout, 1, use_bias=False, name=name + "_project_conv")(x)
        x = L.BatchNormalization(epsilon=1e-3, name=name + "_project_bn")(x)
        if cin == cout and s == 1:
            x = L.Add(name=name + "_add")([x, inp])
        return x

    x = block(x, "block1a", 8, 4, 3, 1, 1)
    x = block(x, "block2a", 4, 6, 5, 2, 3)
    x = block(x, "block2b", 6, 6, 3, 1, 3)
    x = L.Conv2D(16, 1, use_bias=False, name="top_conv")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="top_bn")(x)
    x = L.Activation("relu", name="top_activation")(x)
    if include_top:
        x = L.GlobalAveragePooling2D(name="avg_pool")(x)
        x = L.Dropout(0.2, name="top_dropout")(x)
        x = L.Dense(5, name="predictions")(x)
    return keras.Model(x0, x)


def check_keras_loads(h5path, sd, include_top):
    """Keras's topological load_weights must put every array where expected."""
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        print("note: tf_keras not importable; Keras load check skipped")
        return
    m = keras_model(include_top)
    check([l.name for l in m.layers] == [n for n, _ in (EXPECTED_LAYERS if include_top else EXPECTED_LAYERS[:-3])],
          "keras: model.layers order differs from the converter's layer_names")
    m.load_weights(h5path)
    by_layer = dict(EXPECTED_LAYERS)
    for layer in m.layers:
        want = expected_weights(sd, layer.name, by_layer[layer.name])
        got = layer.get_weights()
        check(len(got) == len(want), "keras: %s has %d weights, file %d" % (layer.name, len(got), len(want)))
        for g, (wname, w) in zip(got, want):
            check(g.shape == w.shape and np.array_equal(g, w), "keras: %s loaded wrongly" % wname)


def expect_failure(args, needle, label):
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "convert_efficientnet_lite.py")] + args,
                       capture_output=True, text=True)
    check(r.returncode == 1 and needle in r.stderr,
          "%s: expected exit 1 with %r, got %d: %s" % (label, needle, r.returncode, r.stderr.strip()))


def main():
    rng = np.random.default_rng(6)
    sd = tiny_state_dict(rng)
    with tempfile.TemporaryDirectory() as tmp:
        legacy = os.path.join(tmp, "tiny-legacy.pth")
        zipped = os.path.join(tmp, "tiny-zip.pth")
        write_legacy_pth(legacy, sd)
        write_zip_pth(zipped, sd)
        for path in (legacy, zipped):
            back = conv.load_state_dict(path)
            check(list(back) == list(sd), "%s: keys differ" % path)
            for k in sd:
                check(back[k].dtype == sd[k].dtype and np.array_equal(back[k], sd[k]),
                      "%s: %s read back wrongly" % (os.path.basename(path), k))
        whl = os.path.join(tmp, "efficientnet_lite9_pytorch_model-0.1.0-py3-none-any.whl")
        with zipfile.ZipFile(whl, "w") as z:
            z.write(legacy, "efficientnet_lite9_pytorch_model/models/tiny.pth")

        for src, top in ((legacy, True), (zipped, False), (whl, True)):
            out = os.path.join(tmp, "out-%s-%d.h5" % (os.path.basename(src), top))
            r = conv.main(["--pth", src, "--out", out] + ([] if top else ["--notop"]))
            check(r == 0, "convert %s exited %d" % (src, r))
            if r == 0:
                check_file(out, sd, top, os.path.basename(out))
        check_keras_loads(os.path.join(tmp, "out-%s-1.h5" % os.path.basename(legacy)), sd, True)

        # Failures name the problem and leave no output behind.
        bad = os.path.join(tmp, "bad.h5")
        write_legacy_pth(os.path.join(tmp, "se.pth"), tiny_state_dict(rng, se=True))
        expect_failure(["--pth", os.path.join(tmp, "se.pth"), "--out", bad], "squeeze-and-excitation", "SE weights")
        with open(legacy, "rb") as f:
            data = f.read()
        with open(os.path.join(tmp, "trunc.pth"), "wb") as f:
            f.write(data[: len(data) - 100])
        expect_failure(["--pth", os.path.join(tmp, "trunc.pth"), "--out", bad], "file ends inside storage", "truncated")
        expect_failure(["--pth", legacy, "--variant", "lite0", "--out", bad], "lite0 has 16 blocks", "variant check")
        with open(os.path.join(tmp, "evil.pth"), "wb") as f:
            pickle.dump(conv._LEGACY_MAGIC, f, protocol=2)
            pickle.dump(1001, f, protocol=2)
            pickle.dump({"little_endian": True}, f, protocol=2)
            f.write(b"cos\nsystem\n(S'true'\ntR.")
        expect_failure(["--pth", os.path.join(tmp, "evil.pth"), "--out", bad], "unexpected global os.system", "code in pickle")
        check(not os.path.exists(bad), "a failed conversion left %s behind" % bad)
        check(not [n for n in os.listdir(tmp) if n.startswith(".convert-")], "temporary files left behind")

    # The architecture tables reproduce the official Lite channel rounding.
    check([b[6] for b in conv.lite_blocks("lite2")][-1] == 352, "lite2 last stage should have 352 channels")
    check(len(conv.lite_blocks("lite0")) == 16 and len(conv.lite_blocks("lite1")) == 21
          and len(conv.lite_blocks("lite2")) == 21, "block counts per variant")

    if FAILS:
        print("%d failed checks" % len(FAILS))
        return 1
    print("converter round trip: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
