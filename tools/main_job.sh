#!/usr/bin/env bash
# tools/main_job.sh — the README's main command: set up, build, and run the main job.
# For now the main job is the data-pipeline report on dataset_images; it grows into the
# notebook's full training run as the training issues land.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh build
build/wastenet data dataset_images
build/wastenet bench-loader dataset_images/train --size 320 --batch 64
