#!/usr/bin/env bash
# The d2l AlexNet chapter's full run on a CUDA 11.2 GPU: lr 0.01, batch 128, 10 epochs, 224x224.
#
#   bash benchmarks/alexnet_gpu.sh [DATA_DIR] [METRICS_JSON]
#
# Installs requirements-cu112.txt first. mxnet-cu112 and the CPU `mxnet` both ship the
# `mxnet` module, so the CPU wheel is removed: run this on the GPU machine, not on a
# CPU-only development box. The per-epoch history (loss, accuracies, seconds,
# examples/s) is written to METRICS_JSON (default alexnet_gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data/fashion-mnist}
METRICS=${2:-alexnet_gpu.json}

python -m pip uninstall -y -q mxnet || true
python -m pip install -q -r requirements-cu112.txt
nvidia-smi -L || true
python -c "import mxnet as mx; print('mxnet', mx.__version__, 'GPUs:', mx.context.num_gpus())"
gluon-classics train alexnet --epochs 10 --lr 0.01 --batch-size 128 --resize 224 \
    --ctx gpu --data-dir "$DATA_DIR" --metrics "$METRICS"
