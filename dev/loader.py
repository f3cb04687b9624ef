"""Time one pass over Fashion-MNIST's training set: d2l's loader vs ArrayLoader
(gluon_classics/data/loader.py).

    python -m dev.loader [--data-dir DIR] [--batch-size 256] [--workers 0 4] [--resize 224]

d2l's ``load_data_fashion_mnist`` (d2l 1.0.3's own, reading the local files:
benchmarks/d2l_peer.py's ``book_data``) runs ``ToTensor`` (and ``Resize``) per image
through ``transform_first`` and a Gluon ``DataLoader``. gluon_classics decodes once and
batches with ``take`` + cast + scale (+ one batched resize) on the context. Every batch is
waited for (``wait_to_read``), as a training step would. In one process, outside numpy
mode (the loaders' items are the same NDArrays either way).
"""
import argparse
import os
import time

from benchmarks.common import add_data_argument


def time_pass(loader, max_batches=None):
    """Images per second over one pass (or its first ``max_batches`` batches)."""
    n, start = 0, time.perf_counter()
    for i, (X, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        X.wait_to_read()
        y.wait_to_read()
        n += X.shape[0]
    seconds = time.perf_counter() - start
    return n, seconds, n / seconds


def run(label, loader, max_batches=None, repeat=1):
    """One row: the median of ``repeat`` passes (a neighbour's burst of CPU use on a shared
    machine should not decide a 0.1 s measurement)."""
    passes = sorted((time_pass(loader, max_batches) for _ in range(repeat)), key=lambda r: r[1])
    n, seconds, rate = passes[len(passes) // 2]
    note = f' (median of {repeat})' if repeat > 1 else ''
    print(f'{label:<46} {n:>6} images {seconds:8.3f} s {rate:>11,.0f} images/s{note}',
          flush=True)
    return rate


def d2l_loader(data_dir, batch_size, resize, workers):
    from benchmarks.d2l_peer import book_data
    with book_data(data_dir, workers=workers) as load_data_fashion_mnist:
        return load_data_fashion_mnist(batch_size, resize=resize)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m dev.loader',
                                 description=__doc__.splitlines()[0])
    add_data_argument(ap)
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--workers', type=int, nargs='+', default=[0],
                    help="DataLoader num_workers of d2l's loader, one row each "
                         "(d2l's own default on Linux is 4)")
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--resize-batches', type=int, default=20,
                    help='batches timed with resize (a full pass of d2l-style resize is slow)')
    args = ap.parse_args(argv)
    from gluon_classics import load_data_fashion_mnist, mx
    root, batch = args.data_dir, args.batch_size
    print(f'data {root}; mxnet {mx.__version__}, batch size {batch}, ctx cpu, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}')

    ours, _ = load_data_fashion_mnist(batch, root=root, ctx=mx.cpu(), shuffle_seed=0)
    print('-- full pass over the training set, no resize')
    base = [run(f'd2l ToTensor DataLoader (num_workers={w})', d2l_loader(root, batch, None, w))
            for w in args.workers]
    first = run('gluon_classics ArrayLoader, 1st epoch + upload', ours)
    fast = run('gluon_classics ArrayLoader, next epochs', ours, repeat=3)

    print(f'-- resize={args.resize}: the first {args.resize_batches} batches only (a full pass '
          f'of per-image resizing takes minutes)')
    base_r = [run(f'd2l Resize+ToTensor DataLoader (num_workers={w})',
                  d2l_loader(root, batch, args.resize, w), args.resize_batches)
              for w in args.workers]
    ours_r, _ = load_data_fashion_mnist(batch, resize=args.resize, root=root, ctx=mx.cpu(),
                                        shuffle_seed=0)
    fast_r = run('gluon_classics ArrayLoader resize', ours_r, args.resize_batches)

    print('-- speed-up of ArrayLoader over d2l (images/s ratio)')
    for w, b, br in zip(args.workers, base, base_r):
        print(f'num_workers={w}: no resize {fast / b:.1f}x (1st epoch with upload '
              f'{first / b:.1f}x), resize={args.resize} {fast_r / br:.1f}x')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
