"""gluon_classics against d2l's own code and eager PyTorch: ``python -m benchmarks MODE ...``
from the repository's root (``__main__.py`` lists the modes).

  bench_lenet.py    LeNet's training speed, every peer (``python -m benchmarks.bench_lenet``)
  bench_alexnet.py  AlexNet's training step, every peer (``python -m benchmarks.bench_alexnet``)
  charts.py         the figures drawn from docs/measurements/'s records

Every peer runs in its own process (d2l's numpy mode is process-wide; MXNet and PyTorch
bring different OpenMP runtimes) and reports ``BENCH_JSON`` lines (common.py):

  d2l_peer.py    the one d2l peer: d2l 1.0.3's own loader and ``train_ch6``
  ours.py        gluon_classics: ``load_data_fashion_mnist`` + ``train_ch5``'s graph
  torch_peer.py  eager PyTorch (and torch.compile), the same networks and loops
  gemm.py        the GEMM peak bench_alexnet sets its GFLOP/s against

What only profiles, A/B-tests or times one piece (our kernels, the loader) is in dev/
(dev/README.md).
"""
