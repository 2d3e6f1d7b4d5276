#!/usr/bin/env bash
# Retrains the three checkpoints of the default study (experiments.study) from scratch on
# Fashion-MNIST (Debian's files) with the project's own trainer: the exact commands that made
# the checkpoints shipped in pretrained/ (their recipes: reswise_tf/workflows/study.py,
# DEFAULT_MODELS; measured results: docs/results/fashion_mnist.md). About 1.2 hours of 2 CPU cores
# (measured here, two trainings sharing the cores: NASNetMobile 74 min, ResNet-18 46 min, MobileNetV2 ~22 min).
# Usage: bash scripts/train_default_models.sh [OUTPUT_DIR]   (default: checkpoints/)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-checkpoints}
PY=${PYTHON:-.venv/bin/python}

$PY -m experiments.train --arch=nasnet --dataset=fashion_mnist --resolution=32 --epochs=8 --validation_freq=8 \
    --weight_decay=5e-05 --augment=flip --output="$OUT/nasnet_fashion_mnist_32.keras"
$PY -m experiments.train --arch=mobilenet_v2 --dataset=fashion_mnist --resolution=32 --epochs=5 --validation_freq=5 \
    --weight_decay=5e-05 --augment=flip --output="$OUT/mobilenet_v2_fashion_mnist_32.keras"
$PY -m experiments.train --arch=resnet18_small --dataset=fashion_mnist --resolution=64 --epochs=4 --validation_freq=4 \
    --output="$OUT/resnet18_small_fashion_mnist_64.keras"
