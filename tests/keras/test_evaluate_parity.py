#!/usr/bin/env python3
"""tests/keras/test_evaluate_parity.py — `wastenet evaluate` and `predict` against
tf-keras's model.evaluate / model.predict on the same weights and images.

Two tiny_cnn models are trained for a few epochs by `wastenet train` on the synthetic
shapes (tests/train/make_shapes: 32x32 PNGs, so no resize is involved), then the
exported whole-model .h5 files are loaded into the notebook's model built in tf-keras
(Input -> preprocess x/127.5-1 -> tiny_cnn backbone -> GAP -> Dropout -> Dense
softmax) and evaluated on the test split:
  a. one model: loss (Keras computes it from the softmax's logits) within 1e-5,
     accuracy equal, probabilities within 1e-5, the confusion matrix and the
     per-class accuracy/precision/recall/F1 equal to what the Keras predictions give;
  b. the ensemble of both (--weights A --weights B) = a Keras model averaging the two
     outputs with layers.Average (loss from probabilities, clipped as Keras clips);
  c. --tta flip = Average of the model on the image and on tf.reverse(image, width);
  d. both at once (four views);
  e. `predict` with both --weights and --tta flip gives the probabilities of (d);
  f. --out writes the report files; a data set root and a missing --data are
     usage errors (exit 2).

With Keras 3 (keras3_evaluate_parity, keras_common.GENERATION) the same checks against
Keras 3's evaluate and predict: Keras 3 computes the one model's loss from the clipped
probabilities, not from the logits; at these models the two agree within LOSS_TOL.

usage: test_evaluate_parity.py WN_KERAS_PROBE WASTENET MAKE_SHAPES
"""
import csv
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_common import SHAPES_CLASSES as CLASSES  # noqa: E402
from keras_common import (Checks, Workdir, keras, load_split, np, require_versions,  # noqa: E402
                          tf, tiny_notebook_model)

LOSS_TOL = 1e-5
PROB_TOL = 1e-5


def compiled(model):
    model.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    return model


def average_of(members, flip):
    """A Keras model whose output is the mean of the members' outputs (and of their
    outputs on the mirrored image with flip)."""
    inp = keras.Input(shape=members[0].input_shape[1:])
    outs = [m(inp) for m in members]
    if flip:
        mirrored = keras.layers.Lambda(lambda t: tf.reverse(t, axis=[2]))(inp)
        outs += [m(mirrored) for m in members]
    return compiled(keras.Model(inp, keras.layers.Average()(outs)))


def per_class(pred, labels, k):
    cm = np.zeros((k, k), np.int64)
    for t, p in zip(labels, pred):
        cm[t, p] += 1
    rows = []
    for c in range(k):
        tp, total, predicted = cm[c, c], cm[c].sum(), cm[:, c].sum()
        rec = tp / total if total else 0.0
        prec = tp / predicted if predicted else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        rows.append((int(tp), int(total), rec, prec, f1))
    return cm, rows


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    wastenet, make_shapes = sys.argv[2], sys.argv[3]
    require_versions()
    checks = Checks()
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    with Workdir("evaluate") as wd:
        data = wd("data")
        subprocess.run([make_shapes, data, "20", "8", "10", "3"], check=True)
        weights = []
        for seed in (1, 2):
            r = run([wastenet, "train", "--data", data, "--model", "tiny_cnn", "--weights", "none",
                     "--image-size", "32", "--batch", "16", "--epochs", "3", "--fine-tune-at",
                     "all", "--seed", seed, "--runs", wd("runs"), "--name", f"s{seed}",
                     "--progress", "none", "--no-plots"], env=env)
            if r.returncode:
                print(r.stdout, r.stderr)
                sys.exit(1)
            d = [x for x in os.listdir(wd("runs")) if x.endswith(f"-s{seed}")][0]
            weights.append(os.path.join(wd("runs"), d, "train_weights.h5"))
        test = os.path.join(data, "test")
        paths, labels, images = load_split(test, CLASSES)
        onehot = np.eye(len(CLASSES), dtype=np.float32)[labels]

        keras.backend.clear_session()
        models = []
        for w in weights:
            m = tiny_notebook_model(32, len(CLASSES))
            m.load_weights(w)
            models.append(compiled(m))

        def wastenet_eval(ws, tta, extra=()):
            cmd = [wastenet, "evaluate", "--data", test, "--model", "tiny_cnn", "--image-size",
                   "32", "--json", "--progress", "none", "--tta", tta]
            for w in ws:
                cmd += ["--weights", w]
            r = run(cmd + list(extra), env=env)
            if r.returncode:
                raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr}")
            return json.loads(r.stdout)

        cases = [("a. one model", models[0], weights[:1], "none"),
                 ("b. ensemble of two", average_of(models, False), weights, "none"),
                 ("c. --tta flip", average_of(models[:1], True), weights[:1], "flip"),
                 ("d. ensemble + --tta flip", average_of(models, True), weights, "flip")]
        for what, km, ws, tta in cases:
            k_loss, k_acc = km.evaluate(images, onehot, batch_size=32, verbose=0)
            k_probs = km.predict(images, batch_size=32, verbose=0)
            doc = wastenet_eval(ws, tta)
            ours = np.array([p["probabilities"] for p in doc["predictions"]], np.float32)
            checks.true(f"{what}: every file, in Keras's order",
                        [p["path"] for p in doc["predictions"]] == paths and doc["samples"] == len(paths))
            checks.true(f"{what}: loss within {LOSS_TOL:g} of Keras's evaluate",
                        abs(doc["loss"] - k_loss) <= LOSS_TOL,
                        f"wastenet {doc['loss']:.8f}, keras {k_loss:.8f}")
            checks.true(f"{what}: accuracy equals Keras's", abs(doc["accuracy"] - k_acc) < 1e-7,
                        f"wastenet {doc['accuracy']:.6f}, keras {k_acc:.6f}")
            checks.close(f"{what}: probabilities vs Keras's predict", ours, k_probs, PROB_TOL)
            cm, rows = per_class(np.argmax(k_probs, axis=1), labels, len(CLASSES))
            checks.true(f"{what}: confusion matrix from Keras's predictions",
                        doc["confusion"] == cm.tolist(), f"{doc['confusion']} vs {cm.tolist()}")
            ok = all(pc["correct"] == tp and pc["total"] == tot and abs(pc["recall"] - rec) < 1e-12
                     and abs(pc["precision"] - prec) < 1e-12 and abs(pc["f1"] - f1) < 1e-12
                     for pc, (tp, tot, rec, prec, f1) in zip(doc["per_class"], rows))
            checks.true(f"{what}: per-class accuracy, precision, recall, F1", ok)

        # e. predict: the ensemble with TTA, image by image
        sample = paths[::7]
        cmd = [wastenet, "predict", "--model", "tiny_cnn", "--image-size", "32", "--json",
               "--tta", "flip", "--weights", weights[0], "--weights", weights[1]] + sample
        r = run(cmd, env=env)
        k_probs = average_of(models, True).predict(images[::7], verbose=0)
        ok = r.returncode == 0
        if ok:
            doc = json.loads(r.stdout)
            ours = np.array([[p["probabilities"][c] for c in CLASSES] for p in doc["predictions"]])
            ok = doc["tta"] == "flip" and doc["ensemble"] == weights
        checks.close("e. predict --weights A --weights B --tta flip vs Keras", ours if ok else [],
                     k_probs, PROB_TOL)

        # f. report files and usage errors
        out = wd("report")
        wastenet_eval(weights[:1], "none", ["--out", out])
        with open(os.path.join(out, "evaluate_predictions.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        names = ["evaluate_test.json", "evaluate_per_class.txt", "evaluate_per_class.csv",
                 "evaluate_confusion.csv"]
        checks.true("f. --out writes the report files, one prediction row per file",
                    all(os.path.exists(os.path.join(out, n)) for n in names) and len(rows) == len(paths))
        r = run([wastenet, "evaluate", "--weights", weights[0], "--data", data], env=env)
        checks.true("f. a data set root is a usage error naming the split to pass",
                    r.returncode == 2 and f"{data}/test" in r.stderr, r.stderr.strip())
        r = run([wastenet, "evaluate", "--weights", weights[0]], env=env)
        checks.true("f. --data missing: exit 2", r.returncode == 2 and "--data" in r.stderr)
        r = run([wastenet, "evaluate", "--weights", weights[0], "--data", test, "--tta", "rot"], env=env)
        checks.true("f. --tta rot: exit 2 naming the value", r.returncode == 2 and "--tta rot" in r.stderr)
    checks.exit()


if __name__ == "__main__":
    main()
