#!/usr/bin/env bash
# tools/gpu_bundle.sh — prepare, on a machine WITHOUT a GPU, what tools/gpu_check.sh
# needs on a lent GPU machine whose image lacks wastenet's Debian libraries (oneDNN,
# OpenBLAS, HDF5, libjpeg-turbo, libpng) and cannot fetch them.
#
# Builds wastenet and the GPU tests here for the Hopper cards that are lent
# (CMAKE_CUDA_ARCHITECTURES=90 by default; override with $1), then copies the
# binaries and every shared library they need that is neither glibc nor CUDA (the
# GPU machine has its own CUDA 13 runtime, cuBLAS and cuDNN 9) into .gpu_bundle/:
#   .gpu_bundle/bin/       wastenet, test_gpu_ops, test_gpu_model (when built)
#   .gpu_bundle/libs.tar.xz the libraries, compressed to fit the 64 MiB transfer limit
#   .gpu_bundle/commit     the commit the binaries were built from
# .gpu_bundle/ is ignored through .git/info/exclude; hand it to the device tool's
# `carry`. The binaries need a glibc at least as new as this machine's (Debian 12:
# 2.36; the lent machines run Ubuntu 24.04: 2.39).
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-90}
build="build-gpu-bundle"
out=.gpu_bundle

grep -qx '/.gpu_bundle/' .git/info/exclude 2>/dev/null || echo '/.gpu_bundle/' >>.git/info/exclude

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
targets=(wastenet test_gpu_ops)
if grep -q 'test_gpu_model' "$build/Makefile" 2>/dev/null || [ -f tests/gpu/test_gpu_model.c ]; then
    targets+=(test_gpu_model)
fi
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for t in "${targets[@]}"; do
    f=$(find "$build" -type f -name "$t" -perm -u+x | head -1)
    [ -n "$f" ] || { echo "gpu_bundle: $t was not built" >&2; exit 1; }
    cp "$f" "$out/bin/"
done

if ! ldd "$out/bin/test_gpu_ops" | grep -q libcudnn; then
    echo "gpu_bundle: this is not a CUDA build (no CUDA toolkit with cuDNN and cuBLAS here?)" >&2
    exit 1
fi

# Libraries: everything ldd resolves except glibc's own, the compiler runtime the
# target has anyway (libstdc++/libgcc_s from Ubuntu 24.04 are newer), and CUDA's.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libresolv\.|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcudnn|libnvrtc|libnvJitLink)'
for b in "$out"/bin/*; do
    ldd "$b" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
    if [[ ! "$name" =~ $skip ]]; then cp -L "$path" "$out/lib/$name"; fi
done
tar -cf - -C "$out" lib | xz -T "${JOBS:-2}" -6 >"$out/libs.tar.xz"
rm -rf "${out:?}/lib"
git rev-parse HEAD >"$out/commit"
git status --porcelain --untracked-files=no | grep -q . && echo "dirty" >>"$out/commit"
du -sh "$out"
echo "gpu_bundle: ready; on the GPU machine run tools/gpu_check.sh with .gpu_bundle carried"
