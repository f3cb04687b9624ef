"""The benchmark tool of gluon_classics: ``python benchmarks/classics_bench.py MODE ...``.

Modes (each a module here, each with ``main(argv)``):

  lenet            LeNet training speed, d2l vs PyTorch vs gluon_classics (lenet.py)
  alexnet          AlexNet's training step, the same peers (alexnet.py)
  profile-lenet    where an epoch of LeNet goes; ``--ab``: the fast path's A/B (profile_lenet.py)
  profile-alexnet  where AlexNet's step goes, layer by layer (profile_alexnet.py)
  data             d2l's per-image loader vs ArrayLoader (data.py)
  chart            docs/speed.png from docs/measurements/lenet_speed.json (chart.py)
  article-chart    docs/measurements/alexnet-article.png from its record (article_chart.py)

Every peer runs in its own process (d2l's numpy mode is process-wide; MXNet and PyTorch
bring different OpenMP runtimes) and reports ``BENCH_JSON`` lines (common.py):

  d2l_peer.py      the one d2l peer: d2l 1.0.3's own loader and ``train_ch6``
  ours.py          gluon_classics: ``load_data_fashion_mnist`` + ``train_ch5``'s graph
  torch_peer.py    eager PyTorch (and torch.compile), the same networks and loops
  torch_layers.py  PyTorch's AlexNet layer by layer (profile-alexnet's other side)
  gemm.py          the GEMM peak alexnet sets its GFLOP/s against
"""
