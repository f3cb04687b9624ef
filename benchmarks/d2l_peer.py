"""d2l's own LeNet training, the baseline of bench_lenet.py: ``d2l.mxnet.train_ch6``, unchanged.

    python benchmarks/d2l_peer.py [--data-dir DIR] [--epochs 10] [--lr 0.9] [--batch-size 256]

What a reader of the book's MXNet edition runs ("Convolutional Neural Networks
(LeNet)", d2l 1.0.3, ``from d2l import mxnet as d2l``): numpy mode, the book's
``nn.Sequential`` LeNet (not hybridized), and ``d2l.train_ch6(net, train_iter,
test_iter, num_epochs, lr, d2l.try_gpu())`` itself, Animator, Timer, per-batch
``float()`` and all.

One change, outside train_ch6: the data. ``d2l.load_data_fashion_mnist`` reads
``gluon.data.vision.FashionMNIST``, which checks the official SHA-1 of each file
and downloads it again on a mismatch, so it cannot read the shared offline copy
(another split, other checksums) without network. :func:`load_data_fashion_mnist`
below builds its loaders the book's way over the same arrays: Gluon's dataset
holds ``(N, 28, 28, 1)`` uint8 images and int32 labels, served through
``transform_first(ToTensor())`` and a ``DataLoader`` with
``d2l.get_dataloader_workers()`` (4) worker processes, shuffled for training.

Measured around train_ch6, not inside it: the loaders are wrapped so that the
wall time of each pass (the epoch's training loop with its data loading; the
evaluation) is recorded, and the Animator records the figures it is given (its
drawing still runs; its text output is dropped). d2l's own printed examples/sec
times only the step (its ``Timer`` runs inside the loop, not around the
loader); it is reported too, never used for ratios. Prints ``BENCH_JSON`` lines
(see ``_common.py``).
"""
import argparse
import contextlib
import io
import os
import re
import sys
import time

os.environ.setdefault('MPLBACKEND', 'Agg')  # the Animator draws, off screen
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import add_run_arguments, emit, read_fashion_mnist  # noqa: E402


def load_data_fashion_mnist(batch_size, data_dir):
    """``d2l.load_data_fashion_mnist(batch_size)`` over the IDX files of ``data_dir``."""
    from d2l import mxnet as d2l
    from mxnet import gluon, np
    (train_x, train_y), (test_x, test_y) = read_fashion_mnist(data_dir)

    def fashion_mnist(images, labels):  # what gluon.data.vision.FashionMNIST holds
        return gluon.data.ArrayDataset(np.array(images[..., None], dtype='uint8'),
                                       np.array(labels.astype('int32'), dtype='int32'))
    dataset = gluon.data.vision
    trans = dataset.transforms.Compose([dataset.transforms.ToTensor()])
    mnist_train = fashion_mnist(train_x, train_y).transform_first(trans)
    mnist_test = fashion_mnist(test_x, test_y).transform_first(trans)
    return (gluon.data.DataLoader(mnist_train, batch_size, shuffle=True,
                                  num_workers=d2l.get_dataloader_workers()),
            gluon.data.DataLoader(mnist_test, batch_size, shuffle=False,
                                  num_workers=d2l.get_dataloader_workers()))


class Timed:
    """A loader whose every pass is timed, from ``iter()`` to its end."""

    def __init__(self, loader):
        self.loader, self.seconds = loader, []

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        start = time.time()
        yield from self.loader
        self.seconds.append(time.time() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(ap)
    args = ap.parse_args(argv)
    import mxnet as mx
    import numpy as onp
    from d2l import mxnet as d2l
    from mxnet import npx
    from mxnet.gluon import nn
    npx.set_np()  # as every chapter of the book's MXNet edition starts
    mx.random.seed(args.seed)
    onp.random.seed(args.seed)  # the DataLoader's shuffle

    figures = []

    class Animator(d2l.Animator):
        def add(self, x, y):
            figures.append(y)
            with contextlib.redirect_stdout(io.StringIO()):  # IPython's display, as text
                super().add(x, y)
    d2l.Animator = Animator

    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, args.data_dir)
    train_iter, test_iter = Timed(train_iter), Timed(test_iter)
    net = nn.Sequential()  # the book's LeNet
    net.add(nn.Conv2D(channels=6, kernel_size=5, padding=2, activation='sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(channels=16, kernel_size=5, activation='sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation='sigmoid'),
            nn.Dense(84, activation='sigmoid'),
            nn.Dense(10))
    start, out = time.time(), io.StringIO()
    with contextlib.redirect_stdout(out):
        d2l.train_ch6(net, train_iter, test_iter, args.epochs, args.lr, d2l.try_gpu())
    print(out.getvalue(), end='', flush=True)
    own = float(re.search(r'([\d.]+) examples/sec', out.getvalue()).group(1))
    n = len(train_iter.loader._dataset)
    # Per epoch the Animator got (loss, train acc, None) at the last batch, then the test acc.
    epochs = [(figures[i - 1], y) for i, y in enumerate(figures) if y[0] is None]
    for epoch, (train, test) in enumerate(epochs):
        emit(kind='epoch', peer='d2l', epoch=epoch + 1, loss=train[0], train_acc=train[1],
             test_acc=test[2], examples=n, train_wall_s=train_iter.seconds[epoch],
             eval_s=test_iter.seconds[epoch], examples_per_sec=n / train_iter.seconds[epoch])
    emit(kind='run', peer='d2l', d2l_examples_per_sec=own, total_s=time.time() - start,
         omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


if __name__ == '__main__':
    main()
