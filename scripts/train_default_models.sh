#!/usr/bin/env bash
# Retrains the checkpoints of the default study (experiments.study) from scratch on
# Fashion-MNIST (Debian's files, on the 32-px canvas) with the project's own trainer: the exact
# commands that made the checkpoints shipped in pretrained/ (their recipes:
# reswise_tf/training/recipes.py, RECIPES; measured results: docs/results/fashion_mnist.md).
# Seconds per epoch measured here (two trainings sharing 2 CPU cores): docs/results/fashion_mnist.md.
# Usage: bash scripts/train_default_models.sh [OUTPUT_DIR]   (default: checkpoints/)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-checkpoints}
PY=${PYTHON:-.venv/bin/python}

$PY -m experiments.train --arch=mobilenetv2 --dataset=fashion_mnist --resolution=32 --epochs=5 --validation_freq=5 \
    --weight_decay=5e-05 --augment=scale_flip --output="$OUT/mobilenetv2_fashion_mnist_32.keras"
$PY -m experiments.train --arch=nasnetmobile --dataset=fashion_mnist --resolution=32 --epochs=5 --validation_freq=5 \
    --weight_decay=5e-05 --augment=scale_flip --output="$OUT/nasnetmobile_fashion_mnist_32.keras"
$PY -m experiments.train --arch=resnet18_small --dataset=fashion_mnist --resolution=64 --epochs=8 --validation_freq=8 \
    --augment=rrc_flip --output="$OUT/resnet18_small_fashion_mnist_64.keras"
# The segmentation stand-in of the study's --segmentation (docs/results/segmentation.md).
$PY -m experiments.train --arch=unet_small --dataset=fashion_mnist_scenes --resolution=64 --epochs=4 --validation_freq=4 \
    --optimizer=adamw --augment=scale_flip --output="$OUT/unet_small_fashion_mnist_scenes_64.keras"
