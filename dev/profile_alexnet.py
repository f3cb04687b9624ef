"""Where AlexNet's float32 training step goes, layer by layer, in MXNet and in eager PyTorch.

    python -m dev.profile_alexnet [--batch-size 32] [--reps 3] [--threads N] [--impl]

Each layer of ``alexnet('d2l')`` alone, on its training shapes at ``--batch-size``:
its forward under ``autograd.record()`` (dropout on) and its backward from a random
output gradient, the median of ``--reps`` after two untimed runs, waited for. MXNet's
layers are hybridized one by one (``static_alloc``, ``static_shape``); PyTorch's are its
eager modules, a conv or dense with its ReLU as one layer (Gluon's
``activation='relu'``). Neither the images nor their gradient are asked of the first
conv, as in training. Then the loss alone, the SGD update of the 46.8 M parameters
(``trainer.step`` / ``optimizer.step()``), and the whole step on one fixed batch (ours:
``make_objective``'s one static graph, what ``train`` runs; PyTorch: eager), no loader.

Layers alone are not the step: MXNet's static graph keeps oneDNN's blocked layouts
between its convolutions, while a layer alone reorders its input and output, so the
sum of MXNet's layers can exceed its whole step. The two last rows show how much.

``--impl`` adds, per layer, the oneDNN primitives each framework ran and their
milliseconds, from one more pass with oneDNN's verbose log on (``MKLDNN_VERBOSE=1`` for
MXNet's oneDNN 2.x, ``ONEDNN_VERBOSE=1`` for PyTorch's 3.x): which kernels (``jit:avx2``,
``gemm:jit``, ``brg:avx2``, ...) and which reorders. A layer with no line there ran off
oneDNN (PyTorch's dense layers: MKL's sgemm).

Each framework runs in its own process (MXNet's and PyTorch's OpenMP runtimes); MXNet
with ``OMP_NUM_THREADS``, PyTorch with ``torch.set_num_threads``, both ``--threads``.
Each side is a child of this module (``--child mxnet``, ``--child torch``: PyTorch's
AlexNet is benchmarks/torch_peer.py's); without PyTorch, MXNet's column alone.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from benchmarks.common import (INSTALL_TORCH, PREFIX, REPO, emit, format_table, loadavg,
                               machine_lines, module_argv, run_peer, threads as omp_threads,
                               torch_threads)

MARK = 'PROFILE_LAYER '  # a layer's name after it, before its verbose pass; empty after it


def _median_ms(values):
    return 1e3 * statistics.median(values)


def _time_mxnet_layer(forward, x, dy, params, reps, mark=None):
    """Median ms of ``forward(x)`` recorded and of its backward, each waited for."""
    from mxnet import autograd
    fwd, bwd = [], []
    for rep in range(reps + 2):
        if mark and rep == reps + 1:
            print(MARK + mark, flush=True)  # the verbose lines below are this layer's
        t0 = time.perf_counter()
        with autograd.record():
            y = forward(x)
        y.wait_to_read()
        t1 = time.perf_counter()
        y.backward(dy)
        for a in ([x.grad] if x.grad is not None else []) + [p.grad() for p in params]:
            a.wait_to_read()
        t2 = time.perf_counter()
        if rep >= 2:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    if mark:
        print(MARK, flush=True)
    return _median_ms(fwd), _median_ms(bwd)


def _layer_name(layer, counts):
    from mxnet.gluon import nn
    kinds = ((nn.Conv2D, 'conv'), (nn.MaxPool2D, 'pool'), (nn.Dense, 'dense'),
             (nn.Dropout, 'dropout'))
    kind = next(k for cls, k in kinds if isinstance(layer, cls))
    counts[kind] = counts.get(kind, 0) + 1
    return f'{kind}{counts[kind] - 1}'


def mxnet_layers(args):
    """MXNet's side (in its own process): one ``layers`` record."""
    from gluon_classics import alexnet, mx
    from gluon_classics.model_zoo import leaves
    from mxnet import gluon, init, nd
    b, size, reps, mark = args.batch_size, args.resize, args.reps, args.impl
    mx.random.seed(args.seed)
    net = alexnet(variant='d2l')
    net.initialize(init.Xavier())
    net(nd.zeros((1, 1, size, size)))
    rows, x_shape, counts = [], (b, 1, size, size), {}
    for i, layer in enumerate(leaves(net)):
        name = _layer_name(layer, counts)
        layer.hybridize(static_alloc=True, static_shape=True)
        x = nd.random.normal(shape=x_shape)
        if i > 0:  # the images need no gradient
            x.attach_grad()
        y_shape = layer(x).shape
        params = [p for p in layer.collect_params().values() if p.grad_req != 'null']
        fwd, bwd = _time_mxnet_layer(layer, x, nd.random.normal(shape=y_shape), params, reps,
                                     name if mark else None)
        rows.append(dict(name=name, shape=list(y_shape), fwd_ms=fwd, bwd_ms=bwd))
        x_shape = y_shape
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    loss.hybridize(static_alloc=True, static_shape=True)
    logits, labels = nd.random.normal(shape=(b, 10)), nd.array(list(range(10)) * b)[:b]
    logits.attach_grad()
    fwd, bwd = _time_mxnet_layer(lambda z: loss(z, labels), logits, nd.ones((b,)), [], reps,
                                 'loss' if mark else None)
    rows.append(dict(name='loss', shape=[], fwd_ms=fwd, bwd_ms=bwd))
    step_ms, update_ms = _mxnet_step(net, args)
    rows.append(dict(name='sgd update', shape=[], fwd_ms=0.0, bwd_ms=update_ms))
    emit(kind='layers', framework=f'MXNet {mx.__version__}', rows=rows, step_ms=step_ms)


def _mxnet_step(net, args):
    """Median ms of ours's whole step on one batch, and of its SGD update alone."""
    from gluon_classics import mx
    from gluon_classics.training import make_objective
    from mxnet import autograd, gluon, nd
    b, size = args.batch_size, args.resize
    objective = make_objective(net, [mx.cpu()])
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    X, y = nd.random.uniform(shape=(b, 1, size, size)), nd.array(list(range(10)) * b)[:b]
    params = list(net.collect_params().values())
    steps, updates = [], []
    for rep in range(args.reps + 2):
        if args.impl and rep == args.reps + 1:
            print(MARK + 'whole step', flush=True)
        t0 = time.perf_counter()
        with autograd.record():
            l, c = objective(X, y)
        l.backward()
        for p in params:
            p.grad().wait_to_read()
        t1 = time.perf_counter()
        trainer.step(b)
        c.wait_to_read()
        for p in params:
            p.data().wait_to_read()
        t2 = time.perf_counter()
        if rep >= 2:
            steps.append(t2 - t0)
            updates.append(t2 - t1)
    if args.impl:
        print(MARK, flush=True)
    return _median_ms(steps), _median_ms(updates)


def _time_torch_layer(forward, params, x, dy, reps, mark=None):
    """Median ms of ``forward(x)`` and of its backward (gradients of ``params`` and, where
    it asks for one, of ``x``); eager PyTorch is done when its calls return."""
    fwd, bwd = [], []
    for rep in range(reps + 2):  # two untimed warm-ups
        if mark and rep == reps + 1:
            print(MARK + mark, flush=True)
        for p in params:
            p.grad = None  # zero_grad(set_to_none=True), as in the training step
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
    return _median_ms(fwd), _median_ms(bwd)


def _chain(modules):
    def forward(x):
        for m in modules:
            x = m(x)
        return x
    return forward


def torch_layers(args):
    """PyTorch's side (in its own process, no MXNet): one ``layers`` record, or a ``skip``
    record without PyTorch. Its layers are MXNet's leaves (``layer_groups``)."""
    try:
        import torch
        from torch import nn
    except ImportError:
        print(f'profile_alexnet: PyTorch is not installed, MXNet alone ({INSTALL_TORCH})')
        emit(kind='skip', reason='torch not installed')
        return
    from benchmarks.torch_peer import alexnet_torch, init_net, layer_groups
    torch.set_num_threads(torch_threads(args.threads))
    torch.manual_seed(args.seed)
    b, size, reps, mark = args.batch_size, args.resize, args.reps, args.impl
    net = init_net(alexnet_torch(nn), nn)
    net.train()
    rows, x_shape = [], (b, 1, size, size)
    for i, (name, modules) in enumerate(layer_groups(net, nn)):
        x = torch.randn(x_shape, requires_grad=i > 0)  # the images need no gradient
        with torch.no_grad():
            y = _chain(modules)(x)
        params = [p for m in modules for p in m.parameters()]
        fwd, bwd = _time_torch_layer(_chain(modules), params, x, torch.randn(y.shape), reps,
                                     name if mark else None)
        rows.append(dict(name=name, shape=list(y.shape), fwd_ms=fwd, bwd_ms=bwd))
        x_shape = tuple(y.shape)
    loss = nn.CrossEntropyLoss()
    logits = torch.randn((b, 10), requires_grad=True)
    labels = torch.randint(0, 10, (b,))
    fwd, bwd = _time_torch_layer(lambda z: loss(z, labels), [], logits, torch.ones(()), reps,
                                 'loss' if mark else None)
    rows.append(dict(name='loss', shape=[], fwd_ms=fwd, bwd_ms=bwd))
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    X, y = torch.rand((b, 1, size, size)), torch.randint(0, 10, (b,))
    step_ms, update_ms = [], []
    for rep in range(reps + 2):
        if mark and rep == reps + 1:
            print(MARK + 'whole step', flush=True)
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss(net(X), y).backward()
        t1 = time.perf_counter()
        optimizer.step()
        t2 = time.perf_counter()
        if rep >= 2:
            step_ms.append(t2 - t0)
            update_ms.append(t2 - t1)
    if mark:
        print(MARK, flush=True)
    rows.append(dict(name='sgd update', shape=[], fwd_ms=0.0, bwd_ms=_median_ms(update_ms)))
    emit(kind='layers', framework=f'torch {torch.__version__}', rows=rows,
         step_ms=_median_ms(step_ms), threads=torch.get_num_threads())


def run_side(argv, env, impl):
    """The ``layers`` record of one framework's child and, with ``impl``, the oneDNN
    primitives per layer of its verbose pass: {layer: {(primitive, impl, kind): ms}}."""
    out = subprocess.run([sys.executable] + argv, capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, **env), timeout=1800)
    if out.returncode != 0:
        sys.exit(f'profile_alexnet: {" ".join(argv)} failed:\n{out.stderr[-2000:]}')
    record, prims, layer = None, {}, None
    for line in out.stdout.splitlines():
        if line.startswith(PREFIX):
            record = json.loads(line[len(PREFIX):])
        elif line.startswith(MARK.strip()):
            layer = line[len(MARK.strip()):].strip() or None
        elif impl and layer and ',exec,' in line:
            match = re.search(r',exec,cpu,([^,]+),([^,]+),([^,]+),.*,([\d.]+)$', line)
            if match:
                key = match.group(1, 2, 3)
                prims.setdefault(layer, {})
                prims[layer][key] = prims[layer].get(key, 0.0) + float(match.group(4))
        elif 'not installed' in line:
            print(line)
    return record, prims


def table(mx_rec, torch_rec):
    """Rows of the side-by-side table, with totals and the whole steps."""
    by_name = {r['name']: r for r in (torch_rec or {}).get('rows', [])}
    rows, sums = [], [0.0] * 4
    for r in mx_rec['rows']:
        t = by_name.get(r['name'])
        cells = [r['fwd_ms'], r['bwd_ms']] + ([t['fwd_ms'], t['bwd_ms']] if t else [None] * 2)
        for i, v in enumerate(cells):
            sums[i] += v or 0.0
        ratio = (f'{(r["fwd_ms"] + r["bwd_ms"]) / (t["fwd_ms"] + t["bwd_ms"]):.2f}'
                 if t and t['fwd_ms'] + t['bwd_ms'] > 0 else '')
        rows.append([r['name'], 'x'.join(map(str, r['shape'])) or '-'] +
                    [f'{v:.1f}' if v is not None else '' for v in cells] + [ratio])
    total = f'{(sums[0] + sums[1]) / (sums[2] + sums[3]):.2f}' if torch_rec else ''
    rows.append(['sum of the above', ''] + [f'{v:.1f}' if torch_rec or i < 2 else ''
                                            for i, v in enumerate(sums)] + [total])
    step_t = torch_rec['step_ms'] if torch_rec else None
    rows.append(['whole step (graph / eager)', '', f'{mx_rec["step_ms"]:.1f}', '',
                 f'{step_t:.1f}' if step_t else '', '',
                 f'{mx_rec["step_ms"] / step_t:.2f}' if step_t else ''])
    return rows


def print_impl(sides, top=8):
    """Per layer, then for the whole step, each side's oneDNN primitives by time
    (``sides``: {framework: its primitives per layer})."""
    print('\noneDNN primitives per layer (verbose pass, one run; ms as oneDNN logged them; '
          '"whole step" is in the graph, the rest alone):')
    for layer in dict.fromkeys(name for prims in sides.values() for name in prims):
        for side, prims in sides.items():
            got = sorted(prims.get(layer, {}).items(), key=lambda kv: -kv[1])
            shown = got if layer == 'whole step' else got[:top]
            text = ', '.join(f'{p} {impl} {kind} {ms:.1f}' for (p, impl, kind), ms in shown)
            if len(got) > len(shown):
                text += f', ... {len(got) - len(shown)} more'
            total = f'[{sum(ms for _, ms in got):.1f} ms] ' if got else ''
            print(f'  {layer:10s} {side:5s} {total}{text or "none (off oneDNN)"}')


def parse_args(argv):
    ap = argparse.ArgumentParser(prog='python -m dev.profile_alexnet',
                                 description=__doc__.split('\n')[0])
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--reps', type=int, default=3, help='timed runs per layer (after 2 untimed)')
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=None,
                    help='threads of both frameworks (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--impl', action='store_true', help="oneDNN's primitives per layer")
    ap.add_argument('--child', choices=('mxnet', 'torch'), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        (mxnet_layers if args.child == 'mxnet' else torch_layers)(args)
        return 0
    threads = omp_threads(args.threads)
    env = {'OMP_NUM_THREADS': threads}
    common = ['--batch-size', args.batch_size, '--resize', args.resize, '--lr', args.lr,
              '--seed', args.seed]
    for line in machine_lines():
        print(line)
    print(f'AlexNet (d2l) float32 at {args.resize}, batch {args.batch_size}, {threads} threads, '
          f'median of {args.reps} runs; load average {loadavg()}', flush=True)

    def child(side, reps, *extra):
        return module_argv(f'{__package__}.profile_alexnet', '--child', side, '--reps', reps,
                           '--threads', threads, *common, *extra)
    mx_rec, _ = run_side(child('mxnet', args.reps), env, False)
    torch_rec = next((r for r in run_peer(child('torch', args.reps), env=env)
                      if r['kind'] == 'layers'), None)
    print(format_table(table(mx_rec, torch_rec),
                       ['layer', 'output', 'MXNet fwd ms', 'MXNet bwd ms', 'torch fwd ms',
                        'torch bwd ms', 'MXNet / torch']))
    if args.impl:  # one more pass with oneDNN's verbose log: the last of 3 runs is logged
        sides = {'MXNet': run_side(child('mxnet', 1, '--impl'),
                                   dict(env, MKLDNN_VERBOSE='1', DNNL_VERBOSE='1'), True)[1]}
        if torch_rec:
            sides['torch'] = run_side(child('torch', 1, '--impl'),
                                      dict(env, ONEDNN_VERBOSE='1', DNNL_VERBOSE='1'), True)[1]
        print_impl(sides)
    return 0


if __name__ == '__main__':
    sys.exit(main())
