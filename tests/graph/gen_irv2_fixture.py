#!/usr/bin/env python3
"""tests/graph/gen_irv2_fixture.py — writes the layer-list fixtures that
tests/graph/ compares wastenet's graphs against, straight from Keras itself
(tf_keras = Keras 2 semantics; run with the tensorflow-cpu + tf-keras pinned in
tests/requirements.txt).

Usage: gen_irv2_fixture.py OUT_DIR

Writes, each in a fresh Keras session so that auto-names start at zero:
  irv2_320.tsv   InceptionResNetV2(weights=None, include_top=False, 320x320x3):
                 index, name, class, output shape, params, weights (name:shape;...)
  irv2_75.tsv    the same at 75x75x3 (the smallest input Keras accepts)
  irv2_trainable.tsv
                 fine_tune_at -> base trainable params after the notebook's
                 set_frozen_layers(fine_tune_at), counted by Keras
  notebook.tsv   the notebook's get_model() (6 classes, 320x320): outer layers,
                 then lines "total", "trainable", "non_trainable" with the backbone
                 frozen (pre_trained_model.trainable = False)
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.applications import inception_resnet_v2  # noqa: E402

FINE_TUNE_AT = [0, 1, 2, 3, 4, 100, 259, 260, 261, 300, 500, 617, 618, 700, 776, 777,
                778, 779, 780]


def shape_str(shape):
    if isinstance(shape, list):  # InputLayer reports [(None, h, w, c)]
        shape = shape[0]
    return ",".join(str(d) for d in shape[1:])


def weights_str(layer):
    return ";".join(f"{w.name}:{','.join(str(d) for d in w.shape)}" for w in layer.weights)


def write_layers(path, model):
    with open(path, "w") as f:
        f.write("#index\tname\tclass\toutput_shape\tparams\tweights\n")
        for i, layer in enumerate(model.layers):
            f.write(f"{i}\t{layer.name}\t{type(layer).__name__}\t"
                    f"{shape_str(layer.output_shape)}\t{layer.count_params()}\t"
                    f"{weights_str(layer)}\n")


def count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    keras.backend.clear_session()
    base = inception_resnet_v2.InceptionResNetV2(weights=None, include_top=False,
                                                 input_shape=(320, 320, 3))
    write_layers(os.path.join(out, "irv2_320.tsv"), base)
    with open(os.path.join(out, "irv2_trainable.tsv"), "w") as f:
        f.write("#fine_tune_at\tbase_trainable_params\n")
        for n in FINE_TUNE_AT:  # the notebook's set_frozen_layers
            base.trainable = True
            for layer in base.layers[:n]:
                layer.trainable = False
            f.write(f"{n}\t{count(base.trainable_weights)}\n")

    keras.backend.clear_session()
    small = inception_resnet_v2.InceptionResNetV2(weights=None, include_top=False,
                                                  input_shape=(75, 75, 3))
    write_layers(os.path.join(out, "irv2_75.tsv"), small)

    # The notebook's get_model(), in the notebook's order: the augmentation Sequential
    # is defined first, then get_model() makes its Input before it builds the backbone
    # (get_pre_trained_model() inside the call), so the outer input is input_1 and the
    # backbone's own input is input_2, as the notebook's model.summary() shows.
    keras.backend.clear_session()
    data_augmentation = keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(0.2),
    ])

    def get_pre_trained_model():
        pre_trained = inception_resnet_v2.InceptionResNetV2(
            weights=None, include_top=False, input_shape=(320, 320, 3))
        pre_trained.trainable = False
        return pre_trained

    inputs = keras.Input(shape=(320, 320, 3))
    x = data_augmentation(inputs)
    x = inception_resnet_v2.preprocess_input(x)
    x = get_pre_trained_model()(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(6, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    path = os.path.join(out, "notebook.tsv")
    write_layers(path, model)
    with open(path, "a") as f:
        f.write(f"total\t{model.count_params()}\n")
        f.write(f"trainable\t{count(model.trainable_weights)}\n")
        f.write(f"non_trainable\t{count(model.non_trainable_weights)}\n")
        f.write(f"backbone_input\t{model.layers[4].layers[0].name}\n")


if __name__ == "__main__":
    main()
