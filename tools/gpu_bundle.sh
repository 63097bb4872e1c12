#!/usr/bin/env bash
# tools/gpu_bundle.sh — prepare, on a machine WITHOUT a GPU, what tools/gpu_check.sh
# needs on a lent GPU machine whose image lacks wastenet's Debian libraries (oneDNN,
# OpenBLAS, HDF5, libjpeg-turbo, libpng) and cannot fetch them.
#
# Builds wastenet and the GPU tests here for the Hopper cards that are lent
# (CMAKE_CUDA_ARCHITECTURES=90 by default; --arch to change), then copies the
# binaries and every shared library they need that is neither glibc nor CUDA (the
# GPU machine has its own CUDA 13 runtime, and cuBLAS, cuDNN 9 and NCCL as Python
# wheels, which gpu_check.sh finds) into the bundle folder:
#   bin/          wastenet, test_gpu_ops, test_gpu_model, test_gpu_allreduce
#   libs.tar.xz   the libraries, compressed to fit the 64 MiB transfer limit
#   commit        the commit the binaries were built from ("dirty" when the tree was)
#   libs.manifest the libraries archived (name, size, mtime, path): the archive is
#                 kept while they do not change (the xz step is the slow part)
# The default folder .gpu_bundle/ is ignored through .git/info/exclude; hand it to
# the device tool's `carry`. The binaries need a glibc at least as new as this
# machine's (Debian 12: 2.36; the lent machines run Ubuntu 24.04: 2.39).
#
# Usage: tools/gpu_bundle.sh [--arch 90] [--from-build DIR] [--out DIR] [--cpu-ok] [--fast]
#   --from-build DIR  take the binaries of an existing build folder (no build here)
#   --out DIR         the bundle folder (default .gpu_bundle)
#   --cpu-ok          accept a build without CUDA (tools/gpu_check.sh --rehearse)
#   --fast            xz -1 instead of -6 (18 s instead of 2 min 20 s on 2 cores for
#                     ~100 MB of libraries; ~25 MB instead of ~19 MB): for rehearsals
set -euo pipefail
cd "$(dirname "$0")/.."
arch=90 build="" out=.gpu_bundle cpu_ok=0 level=6
while [ $# -gt 0 ]; do
    case $1 in
    --arch) arch=${2:?--arch needs a value}; shift ;;
    --from-build) build=${2:?--from-build needs a folder}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --cpu-ok) cpu_ok=1 ;;
    --fast) level=1 ;;
    [0-9]*) arch=$1 ;; # the old positional form
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_bundle: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
targets=(wastenet test_gpu_ops test_gpu_model test_gpu_allreduce)

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu_bundle/' "$exclude" 2>/dev/null || echo '/.gpu_bundle/' >>"$exclude"
if [ -z "$build" ]; then
    build="build-gpu-bundle"
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
    cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"
fi
[ -d "$build" ] || { echo "gpu_bundle: no build folder '$build'" >&2; exit 2; }

bins=()
for t in "${targets[@]}"; do
    f=$(find "$build" -type f -name "$t" -perm -u+x | head -1)
    [ -n "$f" ] || { echo "gpu_bundle: $t was not built in $build (cmake --build $build --target $t)" >&2; exit 1; }
    bins+=("$f")
done
if ! ldd "${bins[1]}" | grep libcudnn >/dev/null; then # (grep -q + pipefail: SIGPIPE)
    if [ $cpu_ok = 0 ]; then
        echo "gpu_bundle: $build is not a CUDA build (no CUDA toolkit with cuDNN and cuBLAS here?)" >&2
        exit 1
    fi
    echo "gpu_bundle: $build is a CPU-only build (accepted: --cpu-ok)"
fi

# Libraries: everything ldd resolves except glibc's own, the compiler runtime the
# target has anyway (libstdc++/libgcc_s from Ubuntu 24.04 are newer), and CUDA's
# (NCCL included: the GPU machine's nvidia-nccl wheel). Open MPI's libmpi and its
# dependencies travel: the GPU machine has no MPI, and one rank never calls MPI_Init.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libresolv\.|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcudnn|libnccl|libnvrtc|libnvJitLink)'
libs=$(for b in "${bins[@]}"; do ldd "$b" | awk '/=> \// {print $1, $3}'; done | sort -u |
    while read -r name path; do [[ "$name" =~ $skip ]] || echo "$name $(readlink -f "$path")"; done)
# The archive depends only on the system's libraries (not on our binaries), so it is
# kept while they are unchanged: the xz step is the slow part.
libs_manifest=$(echo "xz -$level"; while read -r name path; do
    echo "$name $(stat -c '%s %Y' "$path") $path"; done <<<"$libs")

mkdir -p "$out"
rm -rf "$out/bin" "$out/lib"
mkdir -p "$out/bin"
cp "${bins[@]}" "$out/bin/"
chmod +x "$out"/bin/*
if [ -f "$out/libs.tar.xz" ] && [ "$(cat "$out/libs.manifest" 2>/dev/null)" = "$libs_manifest" ]; then
    echo "gpu_bundle: libraries unchanged, keeping $out/libs.tar.xz"
else
    rm -f "$out/libs.tar.xz" "$out/libs.manifest"
    mkdir -p "$out/lib"
    while read -r name path; do cp -L "$path" "$out/lib/$name"; done <<<"$libs"
    tar -cf - -C "$out" lib | xz -T "${JOBS:-2}" "-$level" >"$out/libs.tar.xz.tmp"
    mv "$out/libs.tar.xz.tmp" "$out/libs.tar.xz"
    rm -rf "${out:?}/lib"
    echo "$libs_manifest" >"$out/libs.manifest"
fi
{
    git rev-parse HEAD
    git status --porcelain --untracked-files=no | grep . >/dev/null && echo "dirty"
} >"$out/commit" || true
du -sh "$out"
echo "gpu_bundle: ready in $out; on the GPU machine run tools/gpu_check.sh with it carried"
