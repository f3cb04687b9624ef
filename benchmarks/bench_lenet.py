"""LeNet training speed on Fashion-MNIST: d2l vs PyTorch vs gluon_classics, in one run.

    python benchmarks/bench_lenet.py [--data-dir DIR] [--epochs 10] [--repeats 1]
                                     [--threads N] [--peers d2l,torch,ours]

Peers, all on the same data (the IDX files of ``--data-dir``), the same LeNet
(d2l variant: sigmoid, average pooling), Xavier init, softmax cross-entropy,
plain SGD with lr 0.9, batch 256 and the same number of epochs:

  d2l     d2l's ``train_ch6`` and ``load_data_fashion_mnist`` (MXNet edition, numpy
          mode, per-image ToTensor in a 4-worker DataLoader): d2l_reference.py
  torch   the same network and loop in PyTorch, batches from a uint8 tensor in
          memory: torch_reference.py (left out, with a line, if torch is missing)
  ours    gluon_classics: ``load_data_fashion_mnist`` + ``train_ch5``
  recipe  (opt-in) the research recipe of issue 5 behind train_ch5's call shape:
          one static graph with conv1 as a (5,1) conv over 5 shifted copies of the
          image and the 6-channel layer padded to 8 (see ``recipe_train_ch5``).
          train_ch5 now builds the same rewriting in general form
          (gluon_classics/training/onednn.py), so this peer is a cross-check; it
          also stands in for ``ours`` where gluon_classics lacks train_ch5.

Each peer runs in its own process (d2l's numpy mode is process-wide; torch and
MXNet bring different OpenMP runtimes), one after the other, in alternating
order across repeats (d2l, torch, ours, then ours, torch, d2l, ...). Every
process gets the same ``OMP_NUM_THREADS`` (``--threads``; default: the
environment's, else 2).

What is measured: training examples/s = all training examples of all epochs /
the wall time of the epochs' training loops, data loading included, test
evaluation excluded (d2l_reference.py and torch_reference.py time their loops;
for ``ours`` it is train_ch5's ``examples_per_sec``, which is that figure). d2l's
own printed figure times only its step (``Timer`` around the batch, not the
loader), so it is shown too, but never used for the ratios. The first epoch
(graph building, oneDNN primitive creation) is included for every peer.

The CPU is shared: the load average is printed before and after; with other
jobs on the two cores, OpenMP with 2 threads slows everything several-fold
(use ``--threads 1`` there).

Prints per-run ``BENCH_JSON`` lines, a table of min/median over repeats, and
as the last line ``speedup_vs_d2l=X.XX speedup_vs_torch=Y.YY`` (ratios of the
median examples/s of ``ours``; ``n/a`` where a peer did not run).
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import (DEFAULT_DATA_DIR, emit, format_table, run_peer,  # noqa: E402
                     summarize, wall_examples_per_sec)

PEERS = ('d2l', 'torch', 'ours', 'recipe')
LABELS = {'d2l': 'd2l train_ch6 + DataLoader', 'torch': 'PyTorch, same loop',
          'ours': 'gluon_classics train_ch5', 'recipe': 'issue-5 recipe (shift8+pad8)'}


# --------------------------------------------------------------------------------------
# The research recipe (issue 5, part A), with train_ch5's call shape. Stand-in for
# train_ch5 where gluon_classics does not provide it; opt-in peer 'recipe' otherwise.
# --------------------------------------------------------------------------------------
def _recipe_graph(net):
    """One static graph: LeNet(d2l) forward + summed softmax CE + correct count.

    Reads the Parameters of ``net`` (a gluon_classics ``lenet(variant='d2l')``) and
    computes the same function with oneDNN-friendly shapes:

    * conv1 (1->6, 5x5, pad 2) runs as a (5,1) convolution with 8 input channels:
      the image's 5 horizontal shifts (made by a constant one-hot (1,5) conv, whose
      output is already in oneDNN's blocked layout) + 3 zero maps. With one input
      channel oneDNN falls back to its slow gemm path for the weight gradient.
    * the 6-channel layer is computed with 8 (two zero filters, and zero input
      channels for conv2), so that conv, sigmoid and pooling stay on the AVX2 jit
      kernels and the blocked layout. The zero blocks are constants, not
      Parameters: they receive no gradient and stay zero.
    """
    from mxnet import gluon

    class RecipeObjective(gluon.HybridBlock):
        def __init__(self, net, **kwargs):
            super().__init__(**kwargs)
            self.net = net  # a child, so that its Parameters are this graph's inputs
            layers = list(net.features._children.values())
            convs = [b for b in layers if isinstance(b, gluon.nn.Conv2D)]
            dense = [b for b in layers if isinstance(b, gluon.nn.Dense)] + [net.output]
            if len(convs) != 2 or len(dense) != 3 or convs[0]._channels != 6:
                raise ValueError('the recipe graph is written for lenet(variant="d2l")')
            self.w1, self.b1 = convs[0].weight, convs[0].bias
            self.w2, self.b2 = convs[1].weight, convs[1].bias
            self.w3, self.b3 = dense[0].weight, dense[0].bias
            self.w4, self.b4 = dense[1].weight, dense[1].bias
            self.w5, self.b5 = dense[2].weight, dense[2].bias

        def hybrid_forward(self, F, x, y, w1, b1, w2, b2, w3, b3, w4, b4, w5, b5):
            sig = lambda h: F.Activation(h, act_type='sigmoid')  # noqa: E731 (oneDNN eltwise)
            pool = lambda h: F.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type='avg')  # noqa
            shifts = F.concat(F.reshape(F.eye(5), (5, 1, 1, 5)), F.zeros((3, 1, 1, 5)), dim=0)
            x8 = F.Convolution(x, shifts, kernel=(1, 5), pad=(0, 2), num_filter=8, no_bias=True)
            w1 = F.concat(F.transpose(w1, axes=(0, 3, 2, 1)), F.zeros((6, 3, 5, 1)), dim=1)
            w1 = F.concat(w1, F.zeros((2, 8, 5, 1)), dim=0)
            b1 = F.concat(b1, F.zeros((2,)), dim=0)
            w2 = F.concat(w2, F.zeros((16, 2, 5, 5)), dim=1)
            h = pool(sig(F.Convolution(x8, w1, b1, kernel=(5, 1), pad=(2, 0), num_filter=8)))
            h = pool(sig(F.Convolution(h, w2, b2, kernel=(5, 5), num_filter=16)))
            h = sig(F.FullyConnected(h, w3, b3, num_hidden=120))
            h = sig(F.FullyConnected(h, w4, b4, num_hidden=84))
            out = F.FullyConnected(h, w5, b5, num_hidden=10)
            y = F.cast(y, 'float32')
            loss = F.pick(-F.log_softmax(out, axis=-1), y, axis=-1)
            return F.sum(loss), F.sum(F.argmax(out, axis=1) == y)

    graph = RecipeObjective(net, prefix='recipe_')
    graph.hybridize(static_alloc=True, static_shape=True)
    return graph


def recipe_train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs,
                     log=print):
    """``train_ch5``'s call shape and records, with the recipe's graph; see _recipe_graph."""
    from mxnet import autograd, nd
    net(nd.zeros((1, 1, 28, 28), ctx=ctx))  # finish deferred initialization (conv2's in_channels)
    graph = _recipe_graph(net)
    history = []
    for epoch in range(num_epochs):
        start = time.time()
        loss_sum, correct = nd.zeros((1,), ctx=ctx), nd.zeros((1,), ctx=ctx)
        n = 0
        for X, y in train_iter:
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                l, c = graph(X, y)
            l.backward()
            trainer.step(X.shape[0])
            loss_sum += l
            correct += c
            n += X.shape[0]
        loss, train_acc = loss_sum.asscalar() / n, correct.asscalar() / n
        train_seconds = time.time() - start
        test_correct, m = nd.zeros((1,), ctx=ctx), 0
        for X, y in test_iter:
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            test_correct += (net(X).argmax(axis=1) == y.astype('float32')).sum()
            m += X.shape[0]
        record = dict(epoch=epoch + 1, loss=float(loss), train_acc=float(train_acc),
                      test_acc=float(test_correct.asscalar() / m),
                      seconds=time.time() - start, examples_per_sec=n / train_seconds)
        log('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec'
            % (record['epoch'], record['loss'], record['train_acc'], record['test_acc'],
               record['seconds']))
        history.append(record)
    return history


def _standin_loader(batch_size, root, ctx, shuffle_seed):
    """load_data_fashion_mnist's call shape: uint8 on ctx, take + cast + scale per batch."""
    import numpy as np
    import mxnet as mx
    from _common import read_fashion_mnist
    (tx, ty), (vx, vy) = read_fashion_mnist(root)

    class Loader:
        def __init__(self, images, labels, shuffle):
            self.X = mx.nd.array(images.reshape(-1, 1, 28, 28), ctx=ctx, dtype='uint8')
            self.y = mx.nd.array(labels, ctx=ctx, dtype='int32')
            self.n, self.shuffle, self.epoch = len(labels), shuffle, 0
            self.num_examples = self.n

        def __len__(self):
            return -(-self.n // batch_size)

        def __iter__(self):
            rng = np.random.RandomState((shuffle_seed or 0) + self.epoch)
            self.epoch += 1
            order = mx.nd.array(rng.permutation(self.n) if self.shuffle else np.arange(self.n),
                                ctx=ctx, dtype='int32')
            for s in range(0, self.n, batch_size):
                idx = order[s:s + batch_size]
                yield (mx.nd.take(self.X, idx).astype('float32') / 255,
                       mx.nd.take(self.y, idx))
    return Loader(tx, ty, True), Loader(vx, vy, False)


def run_mxnet_peer(args, peer):
    """Child process of peer 'ours' or 'recipe': train and print BENCH_JSON lines."""
    from gluon_classics import lenet, mx
    from mxnet import gluon, init
    standin = []
    try:
        from gluon_classics import load_data_fashion_mnist, train_ch5
    except ImportError:  # the package's trainer/loader not there yet: the recipe stands in
        load_data_fashion_mnist, train_ch5 = _standin_loader, recipe_train_ch5
        standin.append('train_ch5+load_data_fashion_mnist')
    if peer == 'recipe':
        train_ch5 = recipe_train_ch5
    ctx = mx.cpu()
    mx.random.seed(args.seed)
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, root=args.data_dir, ctx=ctx,
                                                    shuffle_seed=args.seed)
    net = lenet(variant='d2l')
    net.initialize(init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    start = time.time()
    examples = train_iter.num_examples

    def log(*a):
        print(*a, flush=True)

    history = train_ch5(net, train_iter, test_iter, args.batch_size, trainer, ctx,
                        args.epochs, log=log)
    for rec in history:
        emit(kind='epoch', peer=peer, epoch=rec['epoch'], loss=rec['loss'],
             train_acc=rec['train_acc'], test_acc=rec['test_acc'], examples=examples,
             train_wall_s=examples / rec['examples_per_sec'],
             eval_s=rec['seconds'] - examples / rec['examples_per_sec'],
             examples_per_sec=rec['examples_per_sec'])
    emit(kind='run', peer=peer, total_s=time.time() - start, standin=standin,
         omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


def _peer_argv(args, peer, seed):
    common = ['--data-dir', args.data_dir, '--epochs', str(args.epochs), '--lr', str(args.lr),
              '--batch-size', str(args.batch_size), '--seed', str(seed)]
    if peer == 'd2l':
        return [os.path.join(HERE, 'd2l_reference.py')] + common
    if peer == 'torch':
        return [os.path.join(HERE, 'torch_reference.py')] + common
    return [os.path.abspath(__file__), '--child', peer] + common


def _loadavg():
    try:
        return ' '.join(open('/proc/loadavg').read().split()[:3])
    except OSError:
        return 'n/a'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--lr', type=float, default=0.9)
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every peer (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--peers', default='d2l,torch,ours',
                    help=f'comma-separated, from {",".join(PEERS)}')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--child', choices=('ours', 'recipe'), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    if args.child:
        return run_mxnet_peer(args, args.child)

    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    unknown = set(peers) - set(PEERS)
    if unknown or not peers:
        ap.error(f'unknown peers {sorted(unknown)}: choose from {",".join(PEERS)}')
    threads = str(args.threads or os.environ.get('OMP_NUM_THREADS') or 2)
    env = {'OMP_NUM_THREADS': threads}
    print(f'bench_lenet: {args.epochs} epochs x {args.repeats} repeats, batch {args.batch_size}, '
          f'lr {args.lr}, OMP_NUM_THREADS={threads}, data {args.data_dir}')
    print(f'load average before: {_loadavg()} ({os.cpu_count()} CPUs)', flush=True)
    runs = {p: [] for p in peers}
    skipped = {}
    for r in range(args.repeats):
        order = peers if r % 2 == 0 else peers[::-1]
        for peer in order:
            if peer in skipped:
                continue
            print(f'--- repeat {r + 1}/{args.repeats}: {peer} ({LABELS[peer]})', flush=True)
            records = run_peer(_peer_argv(args, peer, args.seed + r), env=env)
            if any(rec['kind'] == 'skip' for rec in records):
                skipped[peer] = next(rec['reason'] for rec in records if rec['kind'] == 'skip')
                continue
            epochs = [rec for rec in records if rec['kind'] == 'epoch']
            run = next(rec for rec in records if rec['kind'] == 'run')
            result = dict(peer=peer, repeat=r + 1, threads=threads,
                          examples_per_sec=wall_examples_per_sec(epochs),
                          epoch_wall_s=statistics.mean(e['train_wall_s'] for e in epochs),
                          train_acc=epochs[-1]['train_acc'], test_acc=epochs[-1]['test_acc'],
                          loss=epochs[-1]['loss'], epochs=len(epochs))
            if peer == 'd2l':
                result['d2l_own_examples_per_sec'] = run['d2l_examples_per_sec']
            if run.get('standin'):
                result['standin'] = run['standin']
            runs[peer].append(result)
            print('BENCH_RUN ' + json.dumps(result), flush=True)
    print(f'load average after: {_loadavg()}')

    rows, medians = [], {}
    for peer in peers:
        if peer in skipped:
            rows.append([LABELS[peer], 'skipped: ' + skipped[peer]] + [''] * 5)
            continue
        res = runs[peer]
        lo, med, _ = summarize([x['examples_per_sec'] for x in res])
        medians[peer] = med
        wall = summarize([x['epoch_wall_s'] for x in res])
        train_acc = summarize([x['train_acc'] for x in res])
        test_acc = summarize([x['test_acc'] for x in res])
        own = ''
        if peer == 'd2l':
            o = summarize([x['d2l_own_examples_per_sec'] for x in res])
            own = f'{o[0]:.0f} / {o[1]:.0f}'
        rows.append([LABELS[peer] + (' [STAND-IN]' if any('standin' in x for x in res) else ''),
                     f'{lo:.0f} / {med:.0f}', f'{wall[0]:.2f} / {wall[1]:.2f}',
                     f'{train_acc[0]:.3f} / {train_acc[1]:.3f}',
                     f'{test_acc[0]:.3f} / {test_acc[1]:.3f}', own, str(len(res))])
    print()
    print(f'min / median over repeats; examples/s = training examples / training-loop wall time '
          f'(loading included, evaluation excluded); OMP_NUM_THREADS={threads}')
    print(format_table(rows, ['peer', 'examples/s', 'epoch wall s', 'final train acc',
                              'final test acc', "d2l's own ex/s", 'runs']))

    def ratio(other):
        if 'ours' not in medians or other not in medians:
            return 'n/a'
        return f'{medians["ours"] / medians[other]:.2f}'
    if 'recipe' in medians:
        for other in ('d2l', 'torch', 'ours'):
            if other in medians:
                print(f'recipe vs {other}: {medians["recipe"] / medians[other]:.2f}x')
    print(f'speedup_vs_d2l={ratio("d2l")} speedup_vs_torch={ratio("torch")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
