"""AlexNet's training step on a CPU, d2l vs gluon_classics vs PyTorch: ``classics_bench.py
alexnet``.

    python benchmarks/bench_alexnet.py [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--threads N]
                                       [--peers d2l,ours,bf16,torch,torch_bf16]

Ends with each peer's ratio to d2l, ``ours_vs_torch_fp32=...`` /
``ours_vs_torch_bf16=...`` where both peers ran and ``best_vs_torch_best=...`` (our fastest
against PyTorch's fastest); see benchmarks/bench/alexnet.py.
"""
import sys

from classics_bench import run

if __name__ == '__main__':
    sys.exit(run('alexnet', sys.argv[1:]))
