"""The d2l AlexNet's training step in eager PyTorch (CPU): bench_alexnet.py's torch peers.

    python benchmarks/torch_alexnet.py [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--lr 0.01] [--threads 2] [--bf16]
    python benchmarks/torch_alexnet.py --layers K [--batch-size 128] [--threads 2]

The network is gluon_classics's ``alexnet('d2l')`` (the MXNet edition of the book):
convs 96 k11 s4 (no padding: d2l's PyTorch edition pads it by 1, which gives the same
54x54 maps and FLOPs), 256 k5 p2, 384/384/256 k3 p1, each with ReLU, 3x3 stride-2 max
pooling after the 1st, 2nd and 5th, dense 6400->4096->4096 with ReLU and dropout 0.5,
dense 4096->10. Xavier uniform weights and zero biases (MXNet's ``init.Xavier()`` and
its default bias init), plain SGD (lr 0.01) on the batch-mean softmax cross-entropy
(MXNet's summed loss with ``trainer.step(batch_size)``). The parent checks the layer
shapes this prints against MXNet's.

Data, the same batches as gluon_classics's loader: the IDX files decoded once and kept
as a uint8 tensor, the first epoch's order ``default_rng([seed, 0]).permutation`` (the
loader's ``epoch_permutation``). A step's timed region: ``index_select`` of the batch,
``float() / 255``, one batched ``F.interpolate`` (bilinear, half-pixel, as OpenCV's
resize that gluon_classics uses on a CPU), ``zero_grad``, forward, loss, backward,
``optimizer.step()``, and the loss sum and correct count added to tensors: the
counterpart of ours's ``take`` + cast + resize, graph, update and sums. Eager PyTorch
on a CPU computes synchronously, so the step is done when these return.

``--bf16``: forward and loss under ``torch.autocast('cpu', dtype=torch.bfloat16)``
(float32 weights, gradients and update). ``--layers K`` times each layer's forward and
backward alone, K times (profile_alexnet.py's torch side).

No MXNet here: MXNet and PyTorch bring different OpenMP runtimes. Prints ``BENCH_JSON``
lines (``_common.py``); exits 0 with a one-line notice when PyTorch is not installed (it
is never a dependency of gluon_classics).
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_DATA_DIR, emit, read_fashion_mnist  # noqa: E402

MARK = 'PROFILE_LAYER '  # profile_alexnet.py's marker

def alexnet_torch(nn):
    """The d2l AlexNet (see the module docstring), as one nn.Sequential."""
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


def train_steps(torch, nn, args):
    """1 warm-up + ``args.steps`` timed steps (see the module docstring); a steps record."""
    import torch.nn.functional as F
    torch.manual_seed(args.seed)
    (images, labels), _ = read_fashion_mnist(args.data_dir)
    order = torch.from_numpy(np.random.default_rng([args.seed, 0]).permutation(len(images)))
    train_x = torch.from_numpy(images.copy()).unsqueeze(1)  # uint8 (N, 1, 28, 28)
    train_y = torch.from_numpy(labels.astype('int64'))
    net = alexnet_torch(nn)
    init_net(net, nn)
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


def _time_layer(forward, params, x, dy, reps, mark=None):
    """Median ms of ``forward(x)`` and of its backward (gradients of ``params`` and, where
    it asks for one, of ``x``). ``mark``: print it before the last run, and an empty mark
    after it (profile_alexnet.py ``--impl`` reads oneDNN's verbose lines between)."""
    fwd, bwd = [], []
    for rep in range(reps + 2):  # two untimed warm-ups
        if mark and rep == reps + 1:
            print(MARK + mark, flush=True)
        for p in params:
            p.grad = None  # zero_grad(set_to_none=True), as in the training step
        if x.grad is not None:
            x.grad = None
        t0 = time.perf_counter()
        y = forward(x)
        t1 = time.perf_counter()
        y.backward(dy)
        t2 = time.perf_counter()
        if rep >= 2:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    if mark:
        print(MARK, flush=True)
    return 1e3 * statistics.median(fwd), 1e3 * statistics.median(bwd)


def _chain(modules):
    def forward(x):
        for m in modules:
            x = m(x)
        return x
    return forward


def profile_layers(torch, nn, args):
    """Per layer, forward and backward alone on the training shapes; then the loss, the
    SGD update and the whole eager step on one fixed batch. One ``layers`` record."""
    torch.manual_seed(args.seed)
    b, size, reps = args.batch_size, args.resize, args.layers
    net = alexnet_torch(nn)
    init_net(net, nn)
    net.train()
    rows, x_shape = [], (b, 1, size, size)
    for i, (name, modules) in enumerate(layer_groups(net, nn)):
        x = torch.randn(x_shape, requires_grad=i > 0)  # the images need no gradient
        with torch.no_grad():
            y = _chain(modules)(x)
        params = [p for m in modules for p in m.parameters()]
        fwd, bwd = _time_layer(_chain(modules), params, x, torch.randn(y.shape), reps,
                               name if args.impl else None)
        rows.append(dict(name=name, shape=list(y.shape), fwd_ms=fwd, bwd_ms=bwd))
        x_shape = tuple(y.shape)
    loss = nn.CrossEntropyLoss()
    logits = torch.randn((b, 10), requires_grad=True)
    labels = torch.randint(0, 10, (b,))
    fwd, bwd = _time_layer(lambda z: loss(z, labels), [], logits, torch.ones(()), reps,
                           'loss' if args.impl else None)
    rows.append(dict(name='loss', shape=[], fwd_ms=fwd, bwd_ms=bwd))
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    X, y = torch.rand((b, 1, size, size)), torch.randint(0, 10, (b,))
    step_ms, update_ms = [], []
    for rep in range(reps + 2):
        if args.impl and rep == reps + 1:
            print(MARK + 'whole step', flush=True)
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss(net(X), y).backward()
        t1 = time.perf_counter()
        optimizer.step()
        t2 = time.perf_counter()
        if rep >= 2:
            step_ms.append(1e3 * (t2 - t0))
            update_ms.append(1e3 * (t2 - t1))
    if args.impl:
        print(MARK, flush=True)
    rows.append(dict(name='sgd update', shape=[], fwd_ms=0.0,
                     bwd_ms=statistics.median(update_ms)))
    emit(kind='layers', framework=f'torch {torch.__version__}', rows=rows,
         step_ms=statistics.median(step_ms), threads=torch.get_num_threads())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None,
                    help='torch.set_num_threads (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--bf16', action='store_true', help='under bfloat16 autocast')
    ap.add_argument('--layers', type=int, metavar='K', help='per-layer times, K repeats')
    ap.add_argument('--impl', action='store_true',
                    help='with --layers: mark each layer\'s last run (oneDNN verbose pass)')
    args = ap.parse_args(argv)
    try:
        import torch
        from torch import nn
    except ImportError:
        print('torch_alexnet: PyTorch is not installed, skipping the torch peers '
              '(pip install torch==2.13.0; never a dependency of gluon_classics)', flush=True)
        emit(kind='skip', reason='torch not installed')
        return 0
    torch.set_num_threads(args.threads or int(os.environ.get('OMP_NUM_THREADS') or 2))
    if args.layers:
        profile_layers(torch, nn, args)
    else:
        args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
        train_steps(torch, nn, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
