"""AlexNet (d2l variant, 1x224x224) training-step speed: d2l's pipeline vs gluon_classics's.

    python benchmarks/bench_alexnet.py [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--threads N]

  d2l   d2l's ``load_data_fashion_mnist(batch_size, resize=224)`` (per-image
        ``Resize`` + ``ToTensor`` in a 4-worker DataLoader, numpy mode) and
        ``train_ch6``'s step (not hybridized; ``float()`` of the loss sum and of
        the correct count after every batch): d2l_reference.py's functions.
  ours  gluon_classics's ``load_data_fashion_mnist(batch_size, resize=224)`` (uint8
        on the context, ``take`` + cast + batched bilinear resize per batch) and
        train_ch5's step: forward, summed softmax cross-entropy and correct count
        in one static graph (``hybridize(static_alloc=True, static_shape=True)``),
        ``trainer.step``, sums kept on the context.

Both: ``alexnet(variant='d2l')``, Xavier init, SGD lr 0.01, one warm-up step,
then ``--steps`` timed steps; a step's time runs from asking the loader for
the batch to the step's results being computed (``wait_to_read``), so loading
and resizing are included. Each peer runs in its own process, d2l first.

Achieved GFLOP/s = examples/s x training FLOPs per image, where the training
FLOPs are 3x the forward multiply-adds x 2 of the convolution and dense layers
(forward, gradient of the input, gradient of the weights; the first conv has no
input gradient, so 2x), pooling, activations, loss and update left out. The
peak is the best of a few ``mx.nd.dot`` of two 2048x2048 float32 matrices
(SGEMM through OpenBLAS) in the same process settings, sampled before,
between and after the peers (the CPU is shared: the best sample is used, and
a busy CPU during all samples makes the percentages too high).

On the 2-core CPU, AlexNet at 224 runs at about 11 images/s: the defaults
(batch 128, 1 + 3 steps per peer) take about 2 minutes per peer.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import DEFAULT_DATA_DIR, emit, format_table, run_peer  # noqa: E402


def training_flops(net, image_shape):
    """Training FLOPs per image of the conv and dense layers (see module docstring)."""
    from gluon_classics.model_zoo import leaves
    from mxnet import gluon, nd
    x = nd.zeros((1,) + tuple(image_shape))
    total, first = 0.0, True
    for layer in leaves(net):
        x = layer(x)
        if isinstance(layer, (gluon.nn.Conv2D, gluon.nn.Dense)):
            w = layer.weight.shape
            per_output = 1
            for d in w[1:]:
                per_output *= d
            outputs = x.size if isinstance(layer, gluon.nn.Conv2D) else w[0]
            fwd = 2.0 * per_output * outputs
            total += fwd * (2 if first else 3)
            first = False
    return total


def sgemm_peak(n=2048, repeats=10):
    """Best GFLOP/s of ``mx.nd.dot`` on two n x n float32 matrices."""
    import mxnet as mx
    a = mx.nd.random.uniform(shape=(n, n))
    b = mx.nd.random.uniform(shape=(n, n))
    mx.nd.dot(a, b).wait_to_read()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        mx.nd.dot(a, b).wait_to_read()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def child_d2l(args):
    import d2l_reference as d2l
    from gluon_classics import alexnet, mx
    from mxnet import autograd, gluon, init, npx
    npx.set_np()
    mx.random.seed(args.seed)
    device = mx.cpu()
    train_iter, _ = d2l.load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                                data_dir=args.data_dir)
    net = alexnet(variant='d2l')
    net.initialize(force_reinit=True, ctx=device, init=init.Xavier())
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    metric = d2l.Accumulator(3)
    times = []
    it = iter(train_iter)
    for step in range(1 + args.steps):
        t = time.perf_counter()
        X, y = next(it)
        X, y = X.as_in_ctx(device), y.as_in_ctx(device)
        with autograd.record():
            y_hat = net(X)
            l = loss(y_hat, y)
        l.backward()
        trainer.step(X.shape[0])
        metric.add(l.sum(), d2l.accuracy(y_hat, y), X.shape[0])  # float(): waits for the step
        times.append(time.perf_counter() - t)
        print(f'd2l step {step} ({"warm-up" if step == 0 else "timed"}): {times[-1]:.2f} s',
              flush=True)
    emit(kind='steps', peer='d2l', times=times[1:], batch_size=args.batch_size)


def child_ours(args):
    from gluon_classics import alexnet, load_data_fashion_mnist, mx
    from gluon_classics.training import make_objective
    from mxnet import autograd, gluon, init, nd
    ctx = mx.cpu()
    mx.random.seed(args.seed)
    train_iter, _ = load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                            root=args.data_dir, ctx=ctx, shuffle_seed=args.seed)
    net = alexnet(variant='d2l')
    net.initialize(init.Xavier(), ctx=ctx)

    net(nd.zeros((1, 1, args.resize, args.resize), ctx=ctx))  # finish deferred shapes
    objective = make_objective(net, [ctx])  # train_ch5's own training graph
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    loss_sum, correct = nd.zeros((1,), ctx=ctx), nd.zeros((1,), ctx=ctx)
    times = []
    it = iter(train_iter)
    for step in range(1 + args.steps):
        t = time.perf_counter()
        X, y = next(it)
        with autograd.record():
            l, c = objective(X, y)
        l.backward()
        trainer.step(X.shape[0])
        loss_sum += l
        correct += c
        correct.wait_to_read()  # the step's results, and the SGD update:
        for p in net.collect_params().values():
            p.data().wait_to_read()
        times.append(time.perf_counter() - t)
        print(f'ours step {step} ({"warm-up" if step == 0 else "timed"}): {times[-1]:.2f} s',
              flush=True)
    flops = training_flops(net, (1, args.resize, args.resize))
    emit(kind='steps', peer='ours', times=times[1:], batch_size=args.batch_size,
         flops_per_image=flops)


def child_gemm(args):
    emit(kind='gemm', gflops=sgemm_peak())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--steps', type=int, default=3, help='timed steps per peer (after 1 warm-up)')
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every process (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--child', choices=('d2l', 'ours', 'gemm'), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    if args.child:
        return {'d2l': child_d2l, 'ours': child_ours, 'gemm': child_gemm}[args.child](args)

    threads = str(args.threads or os.environ.get('OMP_NUM_THREADS') or 2)
    env = {'OMP_NUM_THREADS': threads}
    base = [os.path.abspath(__file__), '--data-dir', args.data_dir, '--steps', str(args.steps),
            '--batch-size', str(args.batch_size), '--resize', str(args.resize),
            '--lr', str(args.lr), '--seed', str(args.seed)]
    load = ' '.join(open('/proc/loadavg').read().split()[:3]) if os.path.exists('/proc/loadavg') \
        else 'n/a'
    print(f'bench_alexnet: AlexNet (d2l) at {args.resize}, batch {args.batch_size}, 1 warm-up + '
          f'{args.steps} timed steps per peer, OMP_NUM_THREADS={threads}, load average {load}',
          flush=True)
    start = time.time()
    peaks = [run_peer(base + ['--child', 'gemm'], env=env)[0]['gflops']]
    results = {}
    for peer in ('d2l', 'ours'):
        print(f'--- {peer}', flush=True)
        results[peer] = next(r for r in run_peer(base + ['--child', peer], env=env)
                             if r['kind'] == 'steps')
        # The CPU is shared: the peak is sampled before, between and after the peers.
        peaks.append(run_peer(base + ['--child', 'gemm'], env=env)[0]['gflops'])
    peak = max(peaks)
    flops = results['ours']['flops_per_image']
    rows = []
    rates = {}
    for peer, label in (('d2l', 'd2l: per-image Resize in DataLoader + step'),
                        ('ours', 'gluon_classics: batched resize on ctx + step')):
        times = results[peer]['times']
        rate = args.batch_size * len(times) / sum(times)
        rates[peer] = rate
        gflops = rate * flops / 1e9
        rows.append([label, f'{min(times):.2f} / {sorted(times)[len(times) // 2]:.2f}',
                     f'{rate:.1f}', f'{gflops:.1f}', f'{100 * gflops / peak:.0f}%'])
    print()
    print(f'training FLOPs per image (conv + dense): {flops / 1e9:.2f} GFLOP; '
          f'SGEMM peak (mx.nd.dot 2048^2, {threads} threads, best of '
          f'{" / ".join(f"{p:.1f}" for p in peaks)} sampled before/between/after): '
          f'{peak:.1f} GFLOP/s')
    print(format_table(rows, ['pipeline', 'step s (min / median)', 'examples/s', 'GFLOP/s',
                              'of peak']))
    print(f'ours vs d2l: {rates["ours"] / rates["d2l"]:.2f}x  (total {time.time() - start:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
