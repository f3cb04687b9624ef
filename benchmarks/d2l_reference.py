"""d2l's LeNet training and loader, as the book's MXNet edition runs them.

    python benchmarks/d2l_reference.py [--data-dir DIR] [--epochs 10] [--lr 0.9]
                                       [--batch-size 256] [--resize N] [--num-workers 4]

Source: "Dive into Deep Learning", MXNet edition, sections "Image Classification
Dataset" (``get_dataloader_workers``, ``load_data_fashion_mnist``), "Softmax
Regression from Scratch" (``Accumulator``, ``accuracy``), "Linear Regression"
(``Timer``) and "Convolutional Neural Networks (LeNet)" (``evaluate_accuracy_gpu``,
``train_ch6``), i.e. ``d2l/mxnet.py`` of d2l 0.17.x (github.com/d2l-ai/d2l-en,
d2l-zh ``chapter_convolutional-neural-networks/lenet.md``). d2l 1.0.3 does ship
``d2l/mxnet.py``, and ``bench_lenet.py`` now runs its real ``train_ch6`` (``d2l_peer.py``);
this copy remains for ``bench_alexnet.py``'s d2l pipeline, because d2l's own
``load_data_fashion_mnist`` re-downloads on a checksum mismatch and cannot read the
shared (non-official) copy offline.

Faithful to the book: numpy mode (``npx.set_np()``, process-wide, which is why
this runs in its own process), per-image ``ToTensor`` (and ``Resize``) through
``transform_first`` and a Gluon ``DataLoader`` with 4 worker processes, Xavier
init, ``SoftmaxCrossEntropyLoss``, plain SGD ``Trainer``, ``trainer.step(X.shape[0])``
and a ``float()`` of the loss sum and of the correct count after every batch;
the network is not hybridized (the book's ``nn.Sequential`` cannot be).

Changes, none inside the timed step:
  * the ``Animator`` drawing is dropped (nothing is plotted);
  * the dataset is built from the decoded IDX files (see :func:`load_data_fashion_mnist`);
  * the network is ``gluon_classics.lenet(variant='d2l')``, the same layers as the
    book's ``nn.Sequential`` (so that all peers of the benchmark train one network);
  * per epoch, the wall time of the training loop (``for X, y in train_iter``,
    data loading included, evaluation excluded) is measured around the book's
    loop, and one ``BENCH_JSON`` line is printed per epoch and per run.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA_DIR, add_run_arguments, emit, read_fashion_mnist  # noqa: E402
from gluon_classics import lenet, mx  # noqa: E402  (the import guard first)
from mxnet import autograd, gluon, init, np, npx  # noqa: E402


# ---- d2l/mxnet.py (0.17.x), "Linear Regression" ---------------------------------
class Timer:  #@save
    """Record multiple running times."""
    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        """Start the timer."""
        self.tik = time.time()

    def stop(self):
        """Stop the timer and record the time in a list."""
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        """Return the average time."""
        return sum(self.times) / len(self.times)

    def sum(self):
        """Return the sum of time."""
        return sum(self.times)

    def cumsum(self):
        """Return the accumulated time."""
        return np.array(self.times).cumsum().tolist()


# ---- "Image Classification Dataset" -------------------------------------------------
def get_dataloader_workers():  #@save
    """Use 4 processes to read the data except for Windows."""
    return 0 if sys.platform.startswith('win') else 4


def load_data_fashion_mnist(batch_size, resize=None, data_dir=DEFAULT_DATA_DIR,
                            num_workers=None):  #@save
    """Download the Fashion-MNIST dataset and then load it into memory.

    The book writes ``dataset.FashionMNIST(train=True).transform_first(trans)``.
    Gluon's ``FashionMNIST`` checks the official SHA-1 of each file and
    downloads again on a mismatch, so it cannot read a local copy that is not
    the official one (such as the shared offline copy) without network. We
    therefore build the very dataset it would hold: Gluon's ``_get_data``
    decodes the IDX files into an ``(N, 28, 28, 1)`` uint8 array (``np.array``
    in numpy mode) and int32 labels, and serves ``(image, label)`` pairs, which
    is what this ``ArrayDataset`` serves; the per-image transforms are the book's.
    """
    (train_x, train_y), (test_x, test_y) = read_fashion_mnist(data_dir)

    def gluon_fashion_mnist(images, labels):
        return gluon.data.ArrayDataset(np.array(images.reshape(-1, 28, 28, 1), dtype='uint8'),
                                       np.array(labels.astype('int32'), dtype='int32'))

    dataset = gluon.data.vision
    trans = [dataset.transforms.ToTensor()]
    if resize:
        trans.insert(0, dataset.transforms.Resize(resize))
    trans = dataset.transforms.Compose(trans)
    mnist_train = gluon_fashion_mnist(train_x, train_y).transform_first(trans)
    mnist_test = gluon_fashion_mnist(test_x, test_y).transform_first(trans)
    workers = get_dataloader_workers() if num_workers is None else num_workers
    return (gluon.data.DataLoader(mnist_train, batch_size, shuffle=True,
                                  num_workers=workers),
            gluon.data.DataLoader(mnist_test, batch_size, shuffle=False,
                                  num_workers=workers))


# ---- "Softmax Regression from Scratch" ----------------------------------------------
def accuracy(y_hat, y):  #@save
    """Compute the number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.astype(y.dtype) == y
    return float(cmp.astype(y.dtype).sum())


class Accumulator:  #@save
    """For accumulating sums over `n` variables."""
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


# ---- "Convolutional Neural Networks (LeNet)" ----------------------------------------
def evaluate_accuracy_gpu(net, data_iter, device=None):  #@save
    """Compute the accuracy for a model on a dataset using a GPU."""
    if not device:  # Query the first device where the first parameter is on
        device = list(net.collect_params().values())[0].list_ctx()[0]
    metric = Accumulator(2)  # No. of correct predictions, no. of predictions
    for X, y in data_iter:
        X, y = X.as_in_ctx(device), y.as_in_ctx(device)
        metric.add(accuracy(net(X), y), y.size)
    return metric[0] / metric[1]


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device, on_epoch=None):
    """Train a model with a GPU (defined in Chapter 6).

    The book's code, less the Animator; ``on_epoch(record)`` receives the
    benchmark's per-epoch figures (wall times measured around the book's loop).
    """
    net.initialize(force_reinit=True, ctx=device, init=init.Xavier())
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(),
                            'sgd', {'learning_rate': lr})
    timer, num_batches = Timer(), len(train_iter)  # noqa: F841 (the Animator used it)
    for epoch in range(num_epochs):
        # Sum of training loss, sum of training accuracy, no. of examples
        metric = Accumulator(3)
        timed_before = timer.sum()
        wall_start = time.time()  # benchmark: the loop's wall time, loading included
        for i, (X, y) in enumerate(train_iter):
            timer.start()
            # Here is the major difference from `d2l.train_epoch_ch3`
            X, y = X.as_in_ctx(device), y.as_in_ctx(device)
            with autograd.record():
                y_hat = net(X)
                l = loss(y_hat, y)
            l.backward()
            trainer.step(X.shape[0])
            metric.add(l.sum(), accuracy(y_hat, y), X.shape[0])
            timer.stop()
            train_l = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
        train_wall = time.time() - wall_start
        eval_start = time.time()
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        if on_epoch is not None:
            on_epoch(dict(epoch=epoch + 1, loss=train_l, train_acc=train_acc, test_acc=test_acc,
                          examples=int(metric[2]), train_wall_s=train_wall,
                          d2l_timer_s=timer.sum() - timed_before,
                          eval_s=time.time() - eval_start,
                          examples_per_sec=metric[2] / train_wall))
    print(f'loss {train_l:.3f}, train acc {train_acc:.3f}, '
          f'test acc {test_acc:.3f}')
    print(f'{metric[2] * num_epochs / timer.sum():.1f} examples/sec '
          f'on {str(device)}')
    return metric[2] * num_epochs / timer.sum()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(ap)
    ap.add_argument('--resize', type=int, default=None)
    ap.add_argument('--num-workers', type=int, default=None,
                    help='DataLoader workers (default: the book\'s get_dataloader_workers() = 4)')
    args = ap.parse_args(argv)

    npx.set_np()
    mx.random.seed(args.seed)
    import numpy as onp
    onp.random.seed(args.seed)  # the DataLoader's shuffle
    device = mx.cpu()  # d2l.try_gpu() on this CPU-only build
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                                    data_dir=args.data_dir,
                                                    num_workers=args.num_workers)
    net = lenet(variant='d2l')
    start = time.time()

    def on_epoch(record):
        print(f"epoch {record['epoch']}, loss {record['loss']:.4f}, train acc "
              f"{record['train_acc']:.3f}, test acc {record['test_acc']:.3f}, "
              f"{record['examples_per_sec']:.0f} examples/s wall "
              f"({record['examples'] / record['d2l_timer_s']:.0f} by d2l's Timer)", flush=True)
        emit(kind='epoch', peer='d2l', **record)

    d2l_rate = train_ch6(net, train_iter, test_iter, args.epochs, args.lr, device, on_epoch)
    emit(kind='run', peer='d2l', d2l_examples_per_sec=d2l_rate, total_s=time.time() - start,
         omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


if __name__ == '__main__':
    main()
