#!/usr/bin/env bash
# Retrains the three checkpoints of the default study (experiments.study) from scratch on
# Fashion-MNIST (Debian's files), with the project's own trainer. These are the exact commands
# that produced the checkpoints shipped in checkpoints/ (see docs/results/fashion_mnist.md).
# About 1.5 hours on 2 CPU cores. Usage: bash scripts/train_default_models.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-checkpoints}
PY=${PYTHON:-.venv/bin/python}

$PY -m experiments.train --arch=mobilenet_v2 --dataset=fashion_mnist --resolution=32 --epochs=10 \
    --validation_freq=10 --output="$OUT/mobilenet_v2_fashion_mnist_32.keras"
$PY -m experiments.train --arch=nasnet --dataset=fashion_mnist --resolution=32 --epochs=10 \
    --validation_freq=10 --output="$OUT/nasnet_fashion_mnist_32.keras"
$PY -m experiments.train --arch=resnet18_small --dataset=fashion_mnist --resolution=64 --epochs=4 \
    --validation_freq=4 --output="$OUT/resnet18_small_fashion_mnist_64.keras"
