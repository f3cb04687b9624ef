"""The same LeNet, initialization, hyper-parameters and loop in PyTorch (CPU): a peer of bench_lenet.py.

    python benchmarks/torch_reference.py [--data-dir DIR] [--epochs 10] [--lr 0.9]
                                         [--batch-size 256] [--threads 2] [--compile]
                                         [--bare-steps K]

Eager PyTorch by default; ``--compile`` trains through ``torch.compile(net)``
(TorchInductor's C++ kernels; compiling happens in the first epoch and is timed
with it, as graph building is for the MXNet peers; evaluation runs the eager net).

d2l's PyTorch LeNet (sigmoid, average pooling, padded first conv), Xavier
uniform weights and zero biases (MXNet's ``init.Xavier()`` and default bias
init), plain SGD with lr 0.9 on the batch-mean softmax cross-entropy (MXNet's
summed loss with ``trainer.step(batch_size)``), batch 256, a new shuffle every
epoch, the last partial batch kept.

Data: the same IDX files, decoded once and kept in memory as a uint8 tensor;
each batch is an ``index_select`` + ``float() / 255``, the counterpart of
gluon_classics's ``take`` + cast on the context (no DataLoader, no workers).
The epoch's loss sum and correct count stay tensors until the epoch ends.

``--bare-steps K`` times the bare training step instead (profile_lenet.py's
``--torch``): K steps (zero_grad, forward, loss, backward, SGD) on the first
batch, after 5 untimed ones, and prints ``BARE_STEP_MS <ms per step>``.

Prints a line per epoch and ``BENCH_JSON`` lines (see ``_common.py``). Exits 0
with a one-line notice when PyTorch is not installed (it is never a dependency
of gluon_classics: ``pip install torch`` to include this peer).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import add_run_arguments, emit, read_fashion_mnist  # noqa: E402


def lenet_torch(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(ap)
    ap.add_argument('--threads', type=int, default=None,
                    help='torch.set_num_threads (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--compile', action='store_true', help='train through torch.compile(net)')
    ap.add_argument('--bare-steps', type=int, metavar='K',
                    help='time K bare training steps on one batch instead of training')
    args = ap.parse_args(argv)
    peer = 'torch-compile' if args.compile else 'torch'
    try:
        import torch
        from torch import nn
    except ImportError:
        print('torch_reference: PyTorch is not installed, skipping (pip install torch)')
        emit(kind='skip', peer=peer, reason='torch not installed')
        return 0

    threads = args.threads or int(os.environ.get('OMP_NUM_THREADS') or 2)
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    (train_x, train_y), (test_x, test_y) = read_fashion_mnist(args.data_dir)
    train_x = torch.from_numpy(train_x.copy()).unsqueeze(1)  # uint8 (N, 1, 28, 28)
    train_y = torch.from_numpy(train_y.astype('int64'))
    test_x = torch.from_numpy(test_x.copy()).unsqueeze(1)
    test_y = torch.from_numpy(test_y.astype('int64'))

    net = lenet_torch(nn)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    train_net = torch.compile(net) if args.compile else net
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss = nn.CrossEntropyLoss()
    n, b = len(train_x), args.batch_size
    if args.bare_steps:
        return _bare_steps(train_net, optimizer, loss, train_x[:b].float().div_(255),
                           train_y[:b], args.bare_steps)
    gen = torch.Generator().manual_seed(args.seed)
    print(f'training on cpu, torch {torch.__version__}, {threads} threads, '
          f'{"torch.compile" if args.compile else "eager"}', flush=True)
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        wall_start = time.time()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, b):
            idx = order[i:i + b]
            X = train_x.index_select(0, idx).float().div_(255)
            y = train_y.index_select(0, idx)
            optimizer.zero_grad()
            y_hat = train_net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += l.detach() * y.shape[0]
                correct += (y_hat.argmax(dim=1) == y).sum()
        train_loss, train_acc = loss_sum.item() / n, correct.item() / n
        train_wall = time.time() - wall_start
        eval_start = time.time()
        net.eval()
        with torch.no_grad():
            test_correct = sum(int((net(test_x[i:i + b].float() / 255).argmax(dim=1)
                                    == test_y[i:i + b]).sum())
                               for i in range(0, len(test_x), b))
        test_acc = test_correct / len(test_x)
        record = dict(epoch=epoch + 1, loss=train_loss, train_acc=train_acc, test_acc=test_acc,
                      examples=n, train_wall_s=train_wall, eval_s=time.time() - eval_start,
                      examples_per_sec=n / train_wall)
        print(f'epoch {epoch + 1}, loss {train_loss:.4f}, train acc {train_acc:.3f}, '
              f'test acc {test_acc:.3f}, {n / train_wall:.0f} examples/s', flush=True)
        emit(kind='epoch', peer=peer, **record)
    emit(kind='run', peer=peer, total_s=time.time() - start, threads=threads,
         torch_version=torch.__version__)
    return 0


def _bare_steps(net, optimizer, loss, X, y, steps):
    """Wall ms per training step on one fixed batch (the counterpart of profile_lenet's step)."""
    def step():
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()  # eager PyTorch computes synchronously: done when it returns
    print(f'BARE_STEP_MS {(time.perf_counter() - start) / steps * 1e3:.3f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
