"""Developer tools, run from the repository's root (dev/README.md says how):

  conv_pool.py        our conv-block operators: numpy reference, check and timing
                      (with bench_conv_pool.cc and the Makefile, the timing outside MXNet)
  loader.py           d2l's per-image loader against ArrayLoader, timed
  profile_lenet.py    where an epoch of LeNet goes, and the fast path's A/B in one process
  profile_alexnet.py  where AlexNet's step goes, layer by layer, MXNet beside PyTorch

They use the benchmarks' pieces (benchmarks/); nothing in gluon_classics or benchmarks
imports them.
"""
