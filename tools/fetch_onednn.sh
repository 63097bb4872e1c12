#!/usr/bin/env bash
# tools/fetch_onednn.sh [DIR] — oneDNN 3.2 for the CPU backend, from PyPI, into DIR
# (default .deps/onednn, which CMake uses when it is there; see README.md).
#
# PyPI's onednn-cpu-gomp (libdnnl.so.3, GNU OpenMP like the rest of wastenet) and
# onednn-devel-cpu-gomp (headers, CMake config) 2023.2.0 are wheels holding a plain
# install tree; `pip download` fetches them (no pip install, so no Python environment
# is touched) and the wheels' data/ folders are unpacked into DIR/{lib,include}.
# Measured faster than Debian's oneDNN 2.6.3 on the backbone's convolutions and the
# fine-tune step (docs/PERF.md). Without DIR the build uses the system's libdnnl-dev.
# Idempotent: a DIR that already has this version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.deps/onednn}
version=2023.2.0 # oneDNN 3.2.0
stamp="$dir/.wastenet-onednn-$version"
if [ -f "$stamp" ] && [ -f "$dir/include/dnnl.h" ] && [ -e "$dir/lib/libdnnl.so" ]; then
  echo "fetch_onednn: $dir has oneDNN from onednn-cpu-gomp $version"
  exit 0
fi
py=$(command -v python3) || { echo "fetch_onednn: needs python3 with pip" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_onednn: downloading onednn-cpu-gomp and onednn-devel-cpu-gomp $version from PyPI"
"$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$tmp/wheels" "onednn-cpu-gomp==$version" "onednn-devel-cpu-gomp==$version"
# Unpack into a fresh folder beside DIR, then swap it in: DIR is never half-written.
new="$dir.new.$$"
rm -rf "$new"
mkdir -p "$new"
for whl in "$tmp"/wheels/*.whl; do
  "$py" - "$whl" "$new" <<'PY'
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        parts = info.filename.split("/")
        # <name>-<version>.data/data/<lib|include|share>/...
        if len(parts) < 4 or not parts[0].endswith(".data") or parts[1] != "data" or info.is_dir():
            continue
        target = os.path.join(dest, *parts[2:])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, mode or 0o644)
PY
done
# The wheels hold libdnnl.so, .so.3 and .so.3.2 as three copies: keep one file and links.
if [ -f "$new/lib/libdnnl.so.3.2" ]; then
  (cd "$new/lib" && rm -f libdnnl.so.3 libdnnl.so && ln -s libdnnl.so.3.2 libdnnl.so.3 &&
   ln -s libdnnl.so.3 libdnnl.so)
fi
[ -f "$new/include/dnnl.h" ] && [ -e "$new/lib/libdnnl.so" ] ||
  { echo "fetch_onednn: the wheels had no include/dnnl.h and lib/libdnnl.so" >&2; rm -rf "$new"; exit 1; }
touch "$new/.wastenet-onednn-$version"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$new" "$dir"
echo "fetch_onednn: oneDNN 3.2 in $dir"
