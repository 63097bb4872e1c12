#!/usr/bin/env python3
"""tests/graph/gen_backbone_fixtures.py — writes the layer-list fixtures of the
keras.applications backbones other than InceptionResNetV2 (Xception, MobileNetV2,
ResNet50, DenseNet121), straight from tf-keras itself, in the format of
gen_irv2_fixture.py (test_graph_layers reads both).

Usage: gen_backbone_fixtures.py OUT_DIR [MODEL ...]   (default: every model below)

Per model, each in a fresh Keras session so that auto-names start at zero:
  <model>_<size>.tsv       Application(weights=None, include_top=False) at the
                           smallest input Keras accepts and at its native size:
                           index, name, class, output shape, params, weights
  <model>_trainable.tsv    fine_tune_at -> base trainable params after the
                           notebook's set_frozen_layers(fine_tune_at), counted by Keras
  <model>_aliases.tsv      block name -> the index a Keras user computes for it:
                           [i for i, l in enumerate(m.layers) if l.name.startswith(p)][0]
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_irv2_fixture import count, write_layers  # noqa: E402

# wastenet name -> (constructor, smallest input, native input, aliases)
MODELS = {
    "xception": (keras.applications.Xception, 71, 299,
                 ["block1", "block2", "block4", "block13", "block14",
                  "block14_sepconv2"]),
    "mobilenet_v2": (lambda **kw: keras.applications.MobileNetV2(alpha=1.0, **kw), 32, 224,
                     ["Conv1", "block_1", "block_13", "block_16", "Conv_1"]),
    "resnet50": (keras.applications.ResNet50, 32, 224,
                 ["conv1", "conv2_block1", "conv3_block1", "conv4_block1", "conv5_block1",
                  "conv5_block3"]),
    "densenet121": (keras.applications.DenseNet121, 32, 224,
                    ["conv1", "conv2_block1", "pool2", "conv3_block1", "conv4_block1",
                     "pool4", "conv5_block1", "conv5_block16"]),
}


def build(model, size):
    keras.backend.clear_session()
    ctor = MODELS[model][0]
    return ctor(weights=None, include_top=False, input_shape=(size, size, 3))


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    for model in names:
        _, small, native, aliases = MODELS[model]
        base = build(model, native)
        write_layers(os.path.join(out, f"{model}_{native}.tsv"), base)
        n = len(base.layers)
        with open(os.path.join(out, f"{model}_aliases.tsv"), "w") as f:
            f.write("#alias\tindex\n")
            for p in aliases:
                f.write(f"{p}\t{[i for i, l in enumerate(base.layers) if l.name.startswith(p)][0]}\n")
        with open(os.path.join(out, f"{model}_trainable.tsv"), "w") as f:
            f.write("#fine_tune_at\tbase_trainable_params\n")
            for k in sorted({0, 1, 2, 3, n // 4, n // 2, n - 10, n - 3, n - 2, n - 1, n}):
                base.trainable = True
                for layer in base.layers[:k]:
                    layer.trainable = False
                f.write(f"{k}\t{count(base.trainable_weights)}\n")
        write_layers(os.path.join(out, f"{model}_{small}.tsv"), build(model, small))
        print(f"{model}: {n} layers, {base.count_params()} params")


if __name__ == "__main__":
    main()
