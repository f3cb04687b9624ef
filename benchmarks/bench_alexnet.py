"""AlexNet (d2l, 1x224x224) training-step speed on a CPU: d2l's pipeline vs gluon_classics's.

    python benchmarks/bench_alexnet.py [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--threads N] [--peers d2l,ours,bf16]

  d2l   the book's pipeline: d2l_reference.py's ``load_data_fashion_mnist(batch_size,
        resize=224)`` (the book's per-image ``Resize`` + ``ToTensor`` in a 4-worker
        DataLoader, numpy mode, read from the local IDX files: d2l 1.0.3's own loader
        insists on the official checksums and would download) and ``train_ch6``'s step
        with the real ``from d2l import mxnet as d2l`` (``d2l.accuracy``,
        ``d2l.Accumulator``: ``float()`` of the loss sum and of the correct count after
        every batch); the network is not hybridized, as in the book.
  ours  gluon_classics: ``load_data_fashion_mnist(batch_size, resize=224)`` (uint8 on
        the context, ``take`` + cast + batched bilinear resize per batch) and
        train_ch5's step: forward, summed softmax cross-entropy and correct count in
        one static graph (``make_objective``), ``trainer.step``, sums kept on the context.
  bf16  ours in bfloat16: ``train --dtype bfloat16`` (``make_objective(...,
        dtype='bfloat16')``): convolutions, dense layers, ReLU and pooling on oneDNN's
        avx512_bf16 kernels, float32 weights cast in the graph, dropout and the loss
        in float32, float32 gradients and update. Opt-in: bfloat16 rounding changes
        the function. Shown only on CPUs with avx512_bf16.

All: ``alexnet(variant='d2l')``, Xavier init, SGD lr 0.01, one warm-up step, then
``--steps`` timed steps. A step's time runs from asking the loader for the batch
until the SGD update of every parameter is done (``wait_to_read`` on each), so
loading, resizing, forward, backward and update are all inside, for every peer.
(The book's ``float()`` calls wait only for the forward pass; its own Timer lets
the backward pass and the update run on into the next step.) Each peer runs in
its own process, in the order given.

Achieved GFLOP/s = examples/s x training FLOPs per image, where the training
FLOPs are 3x the forward multiply-adds x 2 of the convolution and dense layers
(forward, gradient of the input, gradient of the weights; the first conv has no
input gradient, so 2x), pooling, activations, loss and update left out. The
peak is the best of a few ``mx.nd.dot`` of two 2048x2048 float32 matrices in the
same process settings, sampled before, between and after the peers (the CPU may
be shared: the best sample is used; a busy CPU during all samples inflates the
percentages). bf16 peaks are about twice float32's on CPUs that have them.
"""
import argparse
import datetime
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import DEFAULT_DATA_DIR, emit, format_table, run_peer  # noqa: E402
from gluon_classics import alexnet, mx  # noqa: E402  (the import guard first)
from gluon_classics.utils.devices import cpu_info  # noqa: E402
from gluon_classics.model_zoo import leaves  # noqa: E402
from mxnet import autograd, gluon, init, nd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

PEERS = {'d2l': "d2l: the book's per-image Resize DataLoader + step",
         'ours': 'gluon_classics: batched resize + one static graph',
         'bf16': 'gluon_classics graph in bfloat16 (train --dtype bfloat16)'}
ISA = ('avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16',
       'amx_tile', 'amx_bf16')


def cpu_description():
    """CPU model, logical CPUs and the ISA extensions oneDNN picks its kernels by."""
    model, cpus, flags = cpu_info()
    isa = ' '.join(flag for flag in ISA if flag in flags) or 'unknown'
    return model, cpus, isa, flags


def training_flops(net, image_shape):
    """Training FLOPs per image of the conv and dense layers (see module docstring)."""
    x = nd.zeros((1,) + tuple(image_shape))
    total, first = 0.0, True
    for layer in leaves(net):
        x = layer(x)
        if isinstance(layer, (nn.Conv2D, nn.Dense)):
            w = layer.weight.shape
            per_output = 1
            for d in w[1:]:
                per_output *= d
            outputs = x.size if isinstance(layer, nn.Conv2D) else w[0]
            fwd = 2.0 * per_output * outputs
            total += fwd * (2 if first else 3)
            first = False
    return total


def sgemm_peak(n=2048, repeats=10):
    """Best GFLOP/s of ``mx.nd.dot`` on two n x n float32 matrices."""
    a = mx.nd.random.uniform(shape=(n, n))
    b = mx.nd.random.uniform(shape=(n, n))
    mx.nd.dot(a, b).wait_to_read()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        mx.nd.dot(a, b).wait_to_read()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def _wait_for_update(net):
    for p in net.collect_params().values():
        p.data().wait_to_read()


def _report(peer, step, seconds):
    print(f'{peer} step {step} ({"warm-up" if step == 0 else "timed"}): {seconds:.2f} s',
          flush=True)


def child_d2l(args):
    import d2l_reference
    from d2l import mxnet as d2l
    from mxnet import npx
    npx.set_np()
    mx.random.seed(args.seed)
    device = mx.cpu()
    train_iter, _ = d2l_reference.load_data_fashion_mnist(args.batch_size, resize=args.resize,
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
        metric.add(l.sum(), d2l.accuracy(y_hat, y), X.shape[0])  # waits for the forward only
        _wait_for_update(net)
        times.append(time.perf_counter() - t)
        _report('d2l', step, times[-1])
    emit(kind='steps', peer='d2l', times=times[1:], batch_size=args.batch_size)


def child_ours(args, bf16=False):
    from gluon_classics import load_data_fashion_mnist
    from gluon_classics.training import make_objective
    ctx = mx.cpu()
    mx.random.seed(args.seed)
    train_iter, _ = load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                            root=args.data_dir, ctx=ctx, shuffle_seed=args.seed)
    net = alexnet(variant='d2l')
    net.initialize(init.Xavier(), ctx=ctx)
    net(nd.zeros((1, 1, args.resize, args.resize), ctx=ctx))  # finish deferred shapes
    # train_ch5's own training graph, in float32 or (--dtype bfloat16) in bfloat16
    objective = make_objective(net, [ctx], dtype='bfloat16' if bf16 else 'float32')
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    loss_sum, correct = nd.zeros((1,), ctx=ctx), nd.zeros((1,), ctx=ctx)
    peer = 'bf16' if bf16 else 'ours'
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
        correct.wait_to_read()
        _wait_for_update(net)
        times.append(time.perf_counter() - t)
        _report(peer, step, times[-1])
    flops = training_flops(net, (1, args.resize, args.resize))
    emit(kind='steps', peer=peer, times=times[1:], batch_size=args.batch_size,
         flops_per_image=flops, loss=loss_sum.asscalar() / (1 + args.steps) / args.batch_size)


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
    ap.add_argument('--peers', default='d2l,ours,bf16',
                    help='comma-separated, run in this order (default d2l,ours,bf16; bf16 is '
                         'left out on CPUs without avx512_bf16)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--child', choices=('d2l', 'ours', 'bf16', 'gemm'), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    if args.child:
        return {'d2l': child_d2l, 'ours': child_ours, 'bf16': lambda a: child_ours(a, bf16=True),
                'gemm': child_gemm}[args.child](args)

    model, cpus, isa, flags = cpu_description()
    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        ap.error(f'unknown peer(s) {", ".join(unknown) or "(none given)"}: '
                 f'choose from {", ".join(PEERS)}')
    if 'bf16' in peers and 'avx512_bf16' not in flags:
        print('bench_alexnet: this CPU has no avx512_bf16: leaving out the bf16 peer')
        peers.remove('bf16')
    threads = str(args.threads or os.environ.get('OMP_NUM_THREADS') or 2)
    env = {'OMP_NUM_THREADS': threads}
    base = [os.path.abspath(__file__), '--data-dir', args.data_dir, '--steps', str(args.steps),
            '--batch-size', str(args.batch_size), '--resize', str(args.resize),
            '--lr', str(args.lr), '--seed', str(args.seed)]

    def load():
        return ' '.join(open('/proc/loadavg').read().split()[:3]) \
            if os.path.exists('/proc/loadavg') else 'n/a'
    onednn = 'oneDNN' if mx.runtime.Features().is_enabled('MKLDNN') else 'no oneDNN'
    print(f'bench_alexnet {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n'
          f'CPU: {model}, {cpus} logical CPUs; ISA: {isa}\n'
          f'MXNet {mx.__version__} ({onednn}), OMP_NUM_THREADS={threads}, '
          f'load average {load()}\n'
          f'AlexNet (d2l) at {args.resize}, batch {args.batch_size}, 1 warm-up + {args.steps} '
          f'timed steps per peer: {", ".join(peers)}', flush=True)
    start = time.time()
    peaks = [run_peer(base + ['--child', 'gemm'], env=env)[0]['gflops']]
    results = {}
    for peer in peers:
        print(f'--- {peer}', flush=True)
        results[peer] = next(r for r in run_peer(base + ['--child', peer], env=env)
                             if r['kind'] == 'steps')
        # The CPU may be shared: the peak is sampled before, between and after the peers.
        peaks.append(run_peer(base + ['--child', 'gemm'], env=env)[0]['gflops'])
    peak = max(peaks)
    flops = next((r['flops_per_image'] for r in results.values() if 'flops_per_image' in r),
                 None)
    if flops is None:  # d2l alone: count in this process
        net = alexnet()
        net.initialize(init.Xavier())
        flops = training_flops(net, (1, args.resize, args.resize))
    rows, rates = [], {}
    for peer in peers:
        times = results[peer]['times']
        rates[peer] = rate = args.batch_size * len(times) / sum(times)
        gflops = rate * flops / 1e9
        rows.append([PEERS[peer], f'{min(times):.2f} / {sorted(times)[len(times) // 2]:.2f}',
                     f'{rate:.1f}', f'{gflops:.1f}', f'{100 * gflops / peak:.0f}%'])
    print()
    print(f'training FLOPs per image (conv + dense): {flops / 1e9:.2f} GFLOP; float32 GEMM peak '
          f'(mx.nd.dot 2048^2, {threads} threads, best of '
          f'{" / ".join(f"{p:.1f}" for p in peaks)} sampled before/between/after): '
          f'{peak:.1f} GFLOP/s; load average now {load()}')
    print(format_table(rows, ['pipeline', 'step s (min / median)', 'examples/s', 'GFLOP/s',
                              'of fp32 peak']))
    ratios = [f'{p} vs d2l: {rates[p] / rates["d2l"]:.2f}x' for p in peers
              if p != 'd2l' and 'd2l' in rates]
    if 'bf16' in rates and 'ours' in rates:
        ratios.append(f'bf16 vs ours: {rates["bf16"] / rates["ours"]:.2f}x')
    print(f'{"  ".join(ratios)}  (total {time.time() - start:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
