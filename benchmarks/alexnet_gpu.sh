#!/usr/bin/env bash
# The d2l AlexNet chapter's full run on a GPU: lr 0.01, batch 128, 10 epochs, 224x224.
#
#   bash benchmarks/alexnet_gpu.sh [DATA_DIR] [METRICS_JSON]
#
# Sets up its own environment ($VENV, default .venv-cu112: requirements-cu112.txt, i.e.
# mxnet-cu112 and the CUDA 11 wheels, which gluon_classics loads itself), prints
# `gluon-classics doctor` for the log, then trains on GPU 0. It refuses to run anywhere
# else: without a GPU that MXNet can use (none, or one this build has no kernels for,
# such as Hopper) it stops with one line instead of falling back to a days-long CPU run.
# The per-epoch history (loss, accuracies, seconds, examples/s) goes to METRICS_JSON
# (default alexnet_gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data/fashion-mnist}
METRICS=${2:-alexnet_gpu.json}
VENV=${VENV:-.venv-cu112}

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --no-deps . && "$VENV/bin/python" -m pip install -q -r requirements-cu112.txt
nvidia-smi -L || echo "alexnet_gpu.sh: nvidia-smi not found" >&2
"$VENV/bin/python" -m gluon_classics doctor --data-dir "$DATA_DIR"
# An explicit --ctx gpu:0 is one line and exit status 2 when GPU 0 is missing or unusable.
"$VENV/bin/python" -m gluon_classics train alexnet --epochs 10 --lr 0.01 --batch-size 128 \
    --resize 224 --ctx gpu:0 --data-dir "$DATA_DIR" --metrics "$METRICS"
