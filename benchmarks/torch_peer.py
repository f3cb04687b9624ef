"""The PyTorch peers (CPU): the same networks, initialization, hyper-parameters and loops.

    python -m benchmarks.torch_peer lenet   [--compile] [--threads N] [recipe]
    python -m benchmarks.torch_peer alexnet [--bf16] [--threads N] [recipe]

No MXNet here (its OpenMP runtime is not PyTorch's). Networks: d2l's LeNet (sigmoid,
average pooling, padded first conv) and gluon_classics's ``alexnet('d2l')`` (first conv
unpadded; the parent checks the layer shapes printed here against MXNet's). Xavier uniform
weights and zero biases (MXNet's ``init.Xavier()`` and default bias init), plain SGD on
the batch-mean softmax cross-entropy (MXNet's summed loss with
``trainer.step(batch_size)``).

Data: the same IDX files, decoded once and kept as a uint8 tensor; each batch is an
``index_select`` + ``float() / 255`` (AlexNet: + one batched bilinear ``F.interpolate``,
half-pixel, as OpenCV's resize that gluon_classics uses), the counterpart of
gluon_classics's ``take`` + cast (+ resize) on the context: no DataLoader, no workers.
LeNet shuffles anew each epoch (``torch.randperm``) and keeps the last partial batch;
AlexNet takes the first epoch's order of gluon_classics's loader
(``default_rng([seed, 0]).permutation``). Loss sums and correct counts stay tensors.

``--compile``: LeNet through ``torch.compile(net)`` (compiling is timed in epoch 1).
``--bf16``: AlexNet's forward and loss under ``torch.autocast('cpu', dtype=bfloat16)``.
Exits 0 with a one-line notice and a ``skip`` record when PyTorch is not installed (never
a dependency of gluon_classics). dev/profile_lenet.py and dev/profile_alexnet.py time
these networks step by step and layer by layer.
"""
import argparse
import contextlib
import time

import numpy as np

from .common import (INSTALL_TORCH, add_peer_arguments, emit, read_fashion_mnist, recipe,
                     torch_threads)


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


def alexnet_torch(nn):
    """gluon_classics's alexnet('d2l'), as one nn.Sequential (d2l's PyTorch edition pads the
    first conv by 1, which gives the same 54x54 maps and FLOPs)."""
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 10))


def layer_groups(net, nn):
    """The net as MXNet's leaves: (name, modules), a conv or dense with its ReLU as one
    layer (Gluon's ``activation='relu'``), the Flatten inside the first dense (Gluon's
    Dense flattens its input)."""
    groups, counts, pending = [], {}, []
    kinds = ((nn.Conv2d, 'conv'), (nn.MaxPool2d, 'pool'), (nn.Linear, 'dense'),
             (nn.Dropout, 'dropout'))
    for module in net:
        if isinstance(module, nn.ReLU):
            groups[-1][1].append(module)
            continue
        if isinstance(module, nn.Flatten):
            pending.append(module)
            continue
        kind = next(k for cls, k in kinds if isinstance(module, cls))
        groups.append((f'{kind}{counts.get(kind, 0)}', pending + [module]))
        counts[kind] = counts.get(kind, 0) + 1
        pending = []
    return groups


def layer_shapes(torch, net, nn, image_shape):
    """[(name, output shape at batch 1)] of the MXNet-like layers."""
    x = torch.zeros((1,) + tuple(image_shape))
    shapes = []
    with torch.no_grad():
        for name, modules in layer_groups(net, nn):
            for m in modules:
                x = m(x)
            shapes.append((name, list(x.shape)))
    return shapes


def init_net(net, nn):
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def tensors(torch, args):
    """The training and test sets as uint8 image and int64 label tensors."""
    return [(torch.from_numpy(x.copy()), torch.from_numpy(y.astype('int64')))
            for x, y in read_fashion_mnist(args.data_dir, args.num_examples)]


def lenet(torch, nn, args):
    """Train LeNet; an epoch record per epoch, then a run record."""
    peer = 'torch-compile' if args.compile else 'torch'
    torch.manual_seed(args.seed)
    (train_x, train_y), (test_x, test_y) = tensors(torch, args)
    net = init_net(lenet_torch(nn), nn)
    train_net = torch.compile(net) if args.compile else net
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss = nn.CrossEntropyLoss()
    n, b = len(train_x), args.batch_size
    gen = torch.Generator().manual_seed(args.seed)
    print(f'training on cpu, torch {torch.__version__}, {torch.get_num_threads()} threads, '
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
        train_wall = time.time() - wall_start
        eval_start = time.time()
        net.eval()
        with torch.no_grad():
            test_acc = sum(int((net(test_x[i:i + b].float() / 255).argmax(dim=1)
                                == test_y[i:i + b]).sum())
                           for i in range(0, len(test_x), b)) / len(test_x)
        record = dict(epoch=epoch + 1, loss=loss_sum.item() / n, train_acc=correct.item() / n,
                      test_acc=test_acc, examples=n, train_wall_s=train_wall,
                      eval_s=time.time() - eval_start, examples_per_sec=n / train_wall)
        print(f'epoch {epoch + 1}, loss {record["loss"]:.4f}, train acc '
              f'{record["train_acc"]:.3f}, test acc {test_acc:.3f}, '
              f'{n / train_wall:.0f} examples/s', flush=True)
        emit(kind='epoch', peer=peer, **record)
    emit(kind='run', peer=peer, total_s=time.time() - start, threads=torch.get_num_threads(),
         torch_version=torch.__version__)


def alexnet(torch, nn, args):
    """1 warm-up + ``args.steps`` timed steps; a steps record with the layer shapes."""
    import torch.nn.functional as F
    torch.manual_seed(args.seed)
    (train_x, train_y), _ = tensors(torch, args)
    order = torch.from_numpy(np.random.default_rng([args.seed, 0]).permutation(len(train_x)))
    net = init_net(alexnet_torch(nn), nn)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss = nn.CrossEntropyLoss()
    autocast = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if args.bf16 else \
        contextlib.nullcontext
    loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    peer, b, size = ('torch_bf16' if args.bf16 else 'torch'), args.batch_size, args.resize
    times = []
    for step in range(1 + args.steps):
        t = time.perf_counter()
        idx = order[step * b:(step + 1) * b]
        X = train_x.index_select(0, idx).float().div_(255)
        X = F.interpolate(X, size=(size, size), mode='bilinear', align_corners=False)
        y = train_y.index_select(0, idx)
        optimizer.zero_grad()
        with autocast():
            y_hat = net(X)
            l = loss(y_hat, y)
        l.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += l.detach().float() * y.shape[0]
            correct += (y_hat.argmax(dim=1) == y).sum()
        times.append(time.perf_counter() - t)
        print(f'{peer} step {step} ({"warm-up" if step == 0 else "timed"}): '
              f'{times[-1]:.2f} s', flush=True)
    emit(kind='steps', peer=peer, times=times[1:], batch_size=b,
         loss=loss_sum.item() / (1 + args.steps) / b,
         shapes=layer_shapes(torch, net, nn, (1, size, size)),
         parameters=sum(p.numel() for p in net.parameters()),
         torch_version=torch.__version__, threads=torch.get_num_threads())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_peer_arguments(ap)
    ap.add_argument('--threads', type=int, default=None,
                    help='torch.set_num_threads (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--compile', action='store_true', help='LeNet through torch.compile(net)')
    ap.add_argument('--bf16', action='store_true', help='AlexNet under bfloat16 autocast')
    args = recipe(ap.parse_args(argv))
    try:
        import torch
        from torch import nn
    except ImportError:
        print(f'torch_peer: PyTorch is not installed, skipping the torch peers '
              f'({INSTALL_TORCH}; never a dependency of gluon_classics)', flush=True)
        emit(kind='skip', reason='torch not installed')
        return 0
    torch.set_num_threads(torch_threads(args.threads))
    (lenet if args.model == 'lenet' else alexnet)(torch, nn, args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
