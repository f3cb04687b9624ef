"""LeNet training speed, d2l vs PyTorch vs gluon_classics: ``classics_bench.py lenet``.

    python benchmarks/bench_lenet.py [--data-dir DIR] [--epochs 10] [--repeats 1]
                                     [--threads N] [--peers d2l,torch,ours] [--ab]

Ends with ``speedup_vs_d2l=... speedup_vs_torch=... speedup_vs_torch_compile=...
onednn_vs_plain=... kernel_vs_mxnet_ops=...``; see benchmarks/bench/lenet.py.
"""
import sys

from classics_bench import run

if __name__ == '__main__':
    sys.exit(run('lenet', sys.argv[1:]))
