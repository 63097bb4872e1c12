"""tests/reliability/test_corpus_vs_tf.py — the accepted images of the bad-input corpus
(tests/data/bad/images/) decode to exactly TensorFlow's pixels, and the refused ones
are refused by TensorFlow too (or named in the table below where we differ on purpose).

The reference is Keras's loader: tf.io.decode_image(channels=3, expand_animations=False)
as image_dataset_from_directory calls it. In particular:
  - exif_orientation6.jpg: TensorFlow ignores the EXIF orientation; so do we (same size,
    same pixels as baseline.jpg);
  - progressive.jpg, cmyk.jpg, rgb16.png, palette.png, one_pixel.*, png_named.jpg:
    bit-identical;
  - refused by both: empty, truncated (header and scan), random bytes;
  - ours only: the over-the-limit headers (TensorFlow would try to allocate 4-30 GB)
    and GIF/BMP (TensorFlow decodes them; wastenet asks for PNG or JPEG, see
    host/image_decode.h).
usage: test_corpus_vs_tf.py HOST_TEST_TOOL CORPUS_DIR. Exit 0 pass, 1 fail, 77 skipped
(no TensorFlow).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

TOOL, CORPUS = sys.argv[1:3]
ACCEPTED = ["png_named.jpg", "rgb16.png", "palette.png", "cmyk.jpg", "baseline.jpg",
            "progressive.jpg", "exif_orientation6.jpg", "one_pixel.png", "one_pixel.jpg"]
REFUSED_BY_BOTH = ["empty.jpg", "truncated.jpg", "truncated_scan.jpg", "random.jpg"]
REFUSED_BY_US_ONLY = ["huge_65500x65500.jpg", "huge_100000x100000.png", "image.gif", "image.bmp"]
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def ours(path, out):
    """Our decode through host_test_tool dump: (pixels uint8 [h, w, 3]) or None."""
    r = subprocess.run([TOOL, "dump", "8", "8", out, path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    raw = open(os.path.join(out, "0.bin"), "rb").read()
    h, w = np.frombuffer(raw[:8], np.int32)
    return np.frombuffer(raw[8:8 + h * w * 3], np.uint8).reshape(h, w, 3), ""


def theirs(path):
    try:
        return tf.io.decode_image(tf.io.read_file(path), channels=3,
                                  expand_animations=False).numpy(), ""
    except Exception as e:  # InvalidArgumentError and friends
        return None, str(e).splitlines()[0][:120]


def main():
    listed = set(ACCEPTED + REFUSED_BY_BOTH + REFUSED_BY_US_ONLY)
    present = set(os.listdir(CORPUS))
    check(listed == present, f"the table covers the corpus (missing: {sorted(present - listed)}, "
                             f"absent: {sorted(listed - present)})")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ACCEPTED:
            path = os.path.join(CORPUS, name)
            a, err = ours(path, tmp)
            b, terr = theirs(path)
            check(a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b),
                  f"{name}: identical to tf.io.decode_image "
                  f"({None if a is None else a.shape} vs {None if b is None else b.shape}{err}{terr})")
        for name in REFUSED_BY_BOTH:
            path = os.path.join(CORPUS, name)
            a, err = ours(path, tmp)
            b, terr = theirs(path)
            check(a is None and b is None, f"{name}: refused by both (ours: {err[-80:]}; TF: {terr})")
        for name in REFUSED_BY_US_ONLY:
            a, err = ours(os.path.join(CORPUS, name), tmp)
            check(a is None and name in err, f"{name}: refused by wastenet with the file named ({err[-90:]})")
    print(f"test_corpus_vs_tf: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
