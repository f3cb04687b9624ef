"""PyTorch's AlexNet layer by layer: profile-alexnet's other side
(``python -m bench.torch_peer alexnet --layers K``).

Each layer alone on its training shapes, MXNet's leaves as groups (a conv or dense with its
ReLU as one layer, Gluon's ``activation='relu'``; the Flatten inside the first dense), its
forward and its backward from a random output gradient, the median of K runs after two
untimed; then the loss, the SGD update and the whole eager step on one fixed batch.
``--impl`` marks each layer's last run, so that profile-alexnet can read oneDNN's verbose
lines between the marks. No MXNet here.
"""
import statistics
import time

from bench.common import emit
from bench.torch_peer import alexnet_torch, init_net

MARK = 'PROFILE_LAYER '  # profile_alexnet.py reads it


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
    net = init_net(alexnet_torch(nn), nn)
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
