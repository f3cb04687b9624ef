"""The d2l peer: what a reader of the book's MXNet edition runs, d2l 1.0.3's own code.

    python -m benchmarks.d2l_peer lenet   [--data-dir DIR] [--epochs 10] [--lr 0.9]
                                          [--batch-size 256]
    python -m benchmarks.d2l_peer alexnet [--data-dir DIR] [--steps 3] [--lr 0.01]
                                          [--batch-size 128] [--resize 224]

(bench_lenet and bench_alexnet start it.) Numpy mode (``npx.set_np()``, process-wide,
hence a process of its own), ``from d2l import mxnet as d2l``, and d2l's own
``load_data_fashion_mnist`` (per-image ``ToTensor``, and ``Resize``, through
``transform_first`` and a ``DataLoader`` with ``get_dataloader_workers()`` = 4 processes).

One change, outside d2l's code: the dataset it reads. ``gluon.data.vision.FashionMNIST``
checks the official SHA-1 of each file and downloads again on a mismatch, so it cannot
read the shared offline copy without network. :func:`book_data` puts in its place, while
d2l's loader runs, a dataset of the same items over the local IDX files (an
``(N, 28, 28, 1)`` uint8 array and int32 labels: what Gluon's would hold).

lenet: ``d2l.train_ch6`` itself (the book's ``nn.Sequential`` LeNet, Animator, Timer,
per-batch ``float()``), timed around it: each pass of the loaders is timed from ``iter()``
to its end, and the Animator records the figures it is given (it still draws, off screen;
its text output is dropped). d2l's own printed examples/sec times only its step (its
Timer does not see the loader); it is reported, never used for ratios.

alexnet: train_ch6's step, as bench_alexnet times it (loading, resizing, forward,
backward, update, ``d2l.Accumulator`` and ``d2l.accuracy``), on ``alexnet('d2l')``.
"""
import argparse
import contextlib
import io
import os
import re
import time

os.environ.setdefault('MPLBACKEND', 'Agg')  # the Animator draws, off screen

from .common import add_peer_arguments, emit, read_fashion_mnist, recipe  # noqa: E402


@contextlib.contextmanager
def book_data(data_dir, workers=None, num_examples=None):
    """While inside, d2l's ``load_data_fashion_mnist`` reads the IDX files of ``data_dir``
    (``workers``: its DataLoader's processes instead of ``get_dataloader_workers()``;
    ``num_examples``: see ``common.read_fashion_mnist``)."""
    from d2l import mxnet as d2l
    from mxnet import gluon, nd, np, npx
    vision = gluon.data.vision
    splits = dict(zip((True, False), read_fashion_mnist(data_dir, num_examples)))

    def fashion_mnist(train=True):  # gluon.data.vision.FashionMNIST's items
        images, labels = splits[train]
        array = np.array if npx.is_np_array() else nd.array
        return gluon.data.ArrayDataset(array(images.transpose(0, 2, 3, 1), dtype='uint8'),
                                       array(labels, dtype='int32'))

    saved = vision.FashionMNIST, d2l.get_dataloader_workers
    vision.FashionMNIST = fashion_mnist
    if workers is not None:
        d2l.get_dataloader_workers = lambda: workers
    try:
        yield d2l.load_data_fashion_mnist
    finally:
        vision.FashionMNIST, d2l.get_dataloader_workers = saved


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


def book_lenet():
    from mxnet.gluon import nn
    net = nn.Sequential()
    net.add(nn.Conv2D(channels=6, kernel_size=5, padding=2, activation='sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(channels=16, kernel_size=5, activation='sigmoid'),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation='sigmoid'),
            nn.Dense(84, activation='sigmoid'),
            nn.Dense(10))
    return net


def lenet(args):
    """``d2l.train_ch6`` on the book's LeNet; an epoch record per epoch, then a run record."""
    from d2l import mxnet as d2l
    figures = []

    class Animator(d2l.Animator):
        def add(self, x, y):
            figures.append(y)
            with contextlib.redirect_stdout(io.StringIO()):  # IPython's display, as text
                super().add(x, y)
    d2l.Animator = Animator
    with book_data(args.data_dir, num_examples=args.num_examples) as load_data_fashion_mnist:
        train_iter, test_iter = load_data_fashion_mnist(args.batch_size)
    train_iter, test_iter = Timed(train_iter), Timed(test_iter)
    start, out = time.time(), io.StringIO()
    with contextlib.redirect_stdout(out):
        d2l.train_ch6(book_lenet(), train_iter, test_iter, args.epochs, args.lr, d2l.try_gpu())
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


def alexnet(args):
    """1 warm-up + ``args.steps`` timed steps of train_ch6's loop body; a steps record."""
    from d2l import mxnet as d2l
    from gluon_classics import alexnet as make_alexnet, mx
    from mxnet import autograd, gluon, init
    device = mx.cpu()  # a CPU benchmark: every peer's step on the CPU
    with book_data(args.data_dir, num_examples=args.num_examples) as load_data_fashion_mnist:
        train_iter, _ = load_data_fashion_mnist(args.batch_size, resize=args.resize)
    net = make_alexnet(variant='d2l')
    net.initialize(force_reinit=True, ctx=device, init=init.Xavier())
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    metric, times, it = d2l.Accumulator(3), [], iter(train_iter)
    for step in range(1 + args.steps):
        t = time.perf_counter()
        X, y = next(it)
        X, y = X.as_in_ctx(device), y.as_in_ctx(device)
        with autograd.record():
            y_hat = net(X)
            l = loss(y_hat, y)
        l.backward()
        trainer.step(X.shape[0])
        metric.add(l.sum(), d2l.accuracy(y_hat, y), X.shape[0])  # waits for the forward only
        for p in net.collect_params().values():  # ... so the update is waited for here
            p.data().wait_to_read()
        times.append(time.perf_counter() - t)
        print(f'd2l step {step} ({"warm-up" if step == 0 else "timed"}): {times[-1]:.2f} s',
              flush=True)
    emit(kind='steps', peer='d2l', times=times[1:], batch_size=args.batch_size,
         mxnet_version=mx.__version__)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_peer_arguments(ap)
    args = recipe(ap.parse_args(argv))
    import numpy as onp
    from gluon_classics import mx  # first: the import guard and the OpenMP setting
    from mxnet import npx
    npx.set_np()  # as every chapter of the book's MXNet edition starts
    mx.random.seed(args.seed)
    onp.random.seed(args.seed)  # the DataLoader's shuffle
    (lenet if args.model == 'lenet' else alexnet)(args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
