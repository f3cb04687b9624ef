"""The GEMM peak that bench_alexnet sets its steps' GFLOP/s against.

    python -m benchmarks.gemm --framework mxnet|torch [--dtype float32|bfloat16] [--threads N]

Prints one ``BENCH_JSON`` record (``kind: "gemm"``): the best GFLOP/s of ten products
of two 2048x2048 matrices of ``--dtype``, and its source:

  mxnet  ``mx.nd.FullyConnected`` (oneDNN's GEMM: what MXNet's dense layers run), MXNet
         imported through gluon_classics, so with AMX where ours runs with it.
         Not ``mx.nd.dot``: the wheel's BLAS runs it far below oneDNN's GEMM
         (docs/measurements/alexnet-speed.md has the figures).
  torch  ``torch.matmul`` (MKL), with ``torch.set_num_threads(--threads)``; a ``skip``
         record where PyTorch is not installed.

Each framework in its own process (they bring different OpenMP runtimes): this module
imports neither at the top, so bench_alexnet.py can import :class:`Peaks` and
:func:`sample` from it.
"""
import argparse
import time

from .common import emit, module_argv, run_peer, torch_threads

N = 2048
SOURCES = {'mxnet': f'mx.nd.FullyConnected {N}^2 (oneDNN)', 'torch': f'torch.matmul {N}^2'}


def best_gflops(product, repeats=10):
    """Best GFLOP/s of ``product()``, an N x N x N product that returns when done."""
    product()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t)
    return 2.0 * N ** 3 / best / 1e9


def mxnet_product(dtype):
    from gluon_classics import mx  # AMX for oneDNN as ours's peers run it (gluon_classics/amx.py)
    a = mx.nd.random.uniform(shape=(N, N))
    w = mx.nd.random.uniform(shape=(N, N))
    if dtype == 'bfloat16':
        from mxnet.contrib.amp.amp import bfloat16
        a, w = mx.nd.amp_cast(a, dtype=bfloat16), mx.nd.amp_cast(w, dtype=bfloat16)
    return lambda: mx.nd.FullyConnected(a, w, no_bias=True, num_hidden=N).wait_to_read()


def torch_product(dtype, threads):
    import torch
    torch.set_num_threads(threads)
    a = torch.rand(N, N).to(getattr(torch, dtype))
    b = torch.rand(N, N).to(getattr(torch, dtype))
    return lambda: torch.matmul(a, b)


class Peaks:
    """GEMM GFLOP/s samples by (dtype, source); a dtype's peak is its best sample."""

    def __init__(self):
        self.samples, self.errors = {}, {}

    def add(self, record):
        if record.get('kind') != 'gemm':
            return
        key = (record['dtype'], record['source'])
        if record.get('gflops'):
            self.samples.setdefault(key, []).append(record['gflops'])
        else:
            self.errors[key] = record.get('error', 'no result')

    def best(self, dtype):
        """(GFLOP/s, source) of ``dtype``'s best sample, or (None, None)."""
        found = [(max(v), src) for (d, src), v in self.samples.items() if d == dtype]
        return max(found) if found else (None, None)

    def describe(self, dtype):
        """One line: the peak, its source, and every sample of ``dtype``."""
        peak, source = self.best(dtype)
        seen = '; '.join([f'{src}: {" / ".join(f"{g:.1f}" for g in v)}'
                          for (d, src), v in self.samples.items() if d == dtype] +
                         [f'{src}: failed ({err})' for (d, src), err in self.errors.items()
                          if d == dtype])
        head = f'{peak:.1f} GFLOP/s from {source}' if peak else 'not measured'
        return f'{dtype} GEMM peak: {head} (samples before/between/after: {seen or "none"})'


def sample(peaks, dtypes, threads, frameworks):
    """One sample of each framework's GEMM in each dtype, each in its own process."""
    for dtype in dtypes:
        for framework in frameworks:
            argv = module_argv(f'{__package__}.gemm', '--framework', framework, '--dtype', dtype,
                               '--threads', threads)
            for record in run_peer(argv, env={'OMP_NUM_THREADS': str(threads)}, echo=False):
                peaks.add(record)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--framework', choices=tuple(SOURCES), required=True)
    ap.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
    ap.add_argument('--threads', type=int, default=None,
                    help='torch.set_num_threads (default: $OMP_NUM_THREADS, else 2)')
    args = ap.parse_args(argv)
    threads = torch_threads(args.threads)
    record = dict(kind='gemm', source=SOURCES[args.framework], dtype=args.dtype)
    try:
        product = mxnet_product(args.dtype) if args.framework == 'mxnet' else \
            torch_product(args.dtype, threads)
        record['gflops'] = best_gflops(product)
    except ImportError as err:
        print(f'gemm: {err.name} is not installed, skipping {SOURCES[args.framework]}')
        record = dict(kind='skip', reason=f'{err.name} not installed')
    except Exception as err:  # e.g. no bfloat16 GEMM on this CPU: reported, not fatal
        message = (str(err).strip().splitlines() or [''])[0]
        name = type(err).__name__
        record.update(gflops=None, error=(message if message.startswith(name)
                                          else f'{name}: {message}')[:120])
    emit(**record)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
