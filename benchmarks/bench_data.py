"""Time one pass over Fashion-MNIST's training set: d2l's loader vs ArrayLoader.

    python benchmarks/bench_data.py [--data-dir DIR] [--batch-size 256]

d2l's ``load_data_fashion_mnist`` runs ``ToTensor`` (and ``Resize``) per image
through ``transform_first`` and a Gluon ``DataLoader``. gluon_classics decodes
once and batches with ``take`` + cast + scale (+ ``BilinearResize2D``) on the
context. Every batch is waited for (``wait_to_read``), as a training step would.
"""
import argparse
import os
import sys
import time

from gluon_classics import mx  # first: the import guard and the OpenMP setting
from gluon_classics.data import (FASHION_MNIST, default_root, load_data_fashion_mnist,
                                 read_mnist_folder)
from mxnet import gluon
from mxnet.gluon.data.vision import transforms


def d2l_loader(images, labels, batch_size, resize, num_workers):
    """d2l's training loader, built on arrays decoded by us.

    ``gluon.data.vision.FashionMNIST(root=...)`` checks the official SHA-1 of
    each file and re-downloads on a mismatch, so it cannot read a local copy
    that is not the official one (like the shared one) without network.
    Its items are the same as this ArrayDataset's: an (N, 28, 28, 1) uint8
    NDArray and int32 labels, so the per-image transforms see the same input.
    """
    dataset = gluon.data.ArrayDataset(mx.nd.array(images.transpose(0, 2, 3, 1), dtype='uint8'),
                                      labels)
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    dataset = dataset.transform_first(transforms.Compose(trans))
    return gluon.data.DataLoader(dataset, batch_size, shuffle=True, num_workers=num_workers)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-dir', default=None,
                        help='folder with the four Fashion-MNIST files (default: '
                             '$GLUON_CLASSICS_DATA/fashion-mnist, else '
                             '~/.mxnet/datasets/fashion-mnist)')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--workers', type=int, nargs='+', default=[0],
                        help="DataLoader num_workers of d2l's loader, one row each "
                             "(d2l's own default on Linux is 4)")
    parser.add_argument('--resize', type=int, default=224)
    parser.add_argument('--resize-batches', type=int, default=20,
                        help='batches timed with resize (a full pass of d2l-style resize is slow)')
    args = parser.parse_args(argv)

    root = args.data_dir or default_root(FASHION_MNIST['name'])
    start = time.perf_counter()
    (images, labels), _ = read_mnist_folder(FASHION_MNIST, root)
    print(f'decoded {len(images)} training images from {root} in '
          f'{time.perf_counter() - start:.2f} s (once, shared by all rows)')
    print(f'mxnet {mx.__version__}, batch size {args.batch_size}, ctx cpu, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}')

    def run(label, loader, max_batches=None, repeat=1):
        # repeat > 1: the median pass, so that a neighbour's burst of CPU use
        # on a shared machine does not decide a 0.1 s measurement
        passes = sorted((time_pass(loader, max_batches) for _ in range(repeat)),
                        key=lambda r: r[1])
        n, seconds, rate = passes[len(passes) // 2]
        note = f' (median of {repeat})' if repeat > 1 else ''
        print(f'{label:<46} {n:>6} images {seconds:8.3f} s {rate:>11,.0f} images/s{note}',
              flush=True)
        return rate

    ours, _ = load_data_fashion_mnist(args.batch_size, root=root, ctx=mx.cpu(), shuffle_seed=0)
    print('-- full pass over the training set, no resize')
    base = [run(f'd2l ToTensor DataLoader (num_workers={w})',
                d2l_loader(images, labels, args.batch_size, None, w)) for w in args.workers]
    first = run('gluon_classics ArrayLoader, 1st epoch + upload', ours)
    fast = run('gluon_classics ArrayLoader, next epochs', ours, repeat=3)

    print(f'-- resize={args.resize}: the first {args.resize_batches} batches only (a full pass '
          f'of per-image resizing takes minutes)')
    base_r = [run(f'd2l Resize+ToTensor DataLoader (num_workers={w})',
                  d2l_loader(images, labels, args.batch_size, args.resize, w),
                  args.resize_batches) for w in args.workers]
    ours_r, _ = load_data_fashion_mnist(args.batch_size, resize=args.resize, root=root,
                                        ctx=mx.cpu(), shuffle_seed=0)
    fast_r = run('gluon_classics ArrayLoader resize', ours_r, args.resize_batches)

    print('-- speed-up of ArrayLoader over d2l (images/s ratio)')
    for w, b, br in zip(args.workers, base, base_r):
        print(f'num_workers={w}: no resize {fast / b:.1f}x (1st epoch with upload '
              f'{first / b:.1f}x), resize={args.resize} {fast_r / br:.1f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
