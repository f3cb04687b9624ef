"""AlexNet (d2l, 1x224x224) training-step speed on a CPU: d2l's, gluon_classics's and PyTorch's.

    python benchmarks/bench_alexnet.py [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--threads N]
                                       [--peers d2l,ours,bf16,torch,torch_bf16]

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
  torch eager PyTorch (torch_alexnet.py, ``torch.set_num_threads(--threads)``): the same
        network, init, loss and SGD; the same batches, taken from a uint8 tensor in
        memory with ``index_select`` + ``float() / 255`` + one batched bilinear
        ``F.interpolate`` per batch (ours's ``take`` + cast + resize), then
        ``zero_grad``, forward, loss, backward, ``optimizer.step()`` and the loss sum
        and correct count added to tensors. Left out, in one line, without PyTorch
        (never a dependency of gluon_classics: ``pip install torch==2.13.0``).
  torch_bf16  the same under ``torch.autocast('cpu', dtype=torch.bfloat16)``; shown
        only on CPUs with avx512_bf16 or AMX.

All: ``alexnet(variant='d2l')`` (PyTorch's layer shapes and parameter count are checked
against it), Xavier init, SGD lr 0.01, one warm-up step, then ``--steps`` timed steps.
A step's time runs from asking the loader for the batch until the SGD update of every
parameter is done (``wait_to_read`` on each; eager PyTorch is done when its calls
return), so loading, resizing, forward, backward and update are all inside, for every
peer. (The book's ``float()`` calls wait only for the forward pass; its own Timer lets
the backward pass and the update run on into the next step.) Each peer runs in its
own process, in the order given.

Achieved GFLOP/s = examples/s x training FLOPs per image, where the training
FLOPs are 3x the forward multiply-adds x 2 of the convolution and dense layers
(forward, gradient of the input, gradient of the weights; the first conv has no
input gradient, so 2x), pooling, activations, loss and update left out. The
peak is the best GEMM this CPU was seen to run, each sampled in its own process
before, between and after the peers (the CPU may be shared: the best sample is
used): ``mx.nd.FullyConnected`` on 2048x2048 float32 matrices (oneDNN's sgemm,
what ours's dense layers run) and, where PyTorch is installed, ``torch.matmul``
(MKL). ``mx.nd.dot`` is not a peak: it ran at 49 GFLOP/s where torch.matmul ran
290 on one Xeon. Rows in bfloat16 are set against the same GEMMs in bfloat16. A
step above 100% of its peak is printed as measured with a line naming the peak's
source: the GEMM samples met a busier CPU than the step, or no sampled GEMM reaches the
hardware; either way the column is not to be quoted until that is found.

The last line: every peer's ratio to d2l, bf16's to ours, and
``ours_vs_torch_fp32=X.XX`` (ours / torch examples/s) and ``ours_vs_torch_bf16=X.XX``
(bf16 / torch_bf16), each only where both peers ran.
"""
import argparse
import datetime
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import DEFAULT_DATA_DIR, emit, format_table, run_peer  # noqa: E402
from gemm_peak import Peaks, sample  # noqa: E402
from gluon_classics import alexnet, mx  # noqa: E402  (the import guard first)
from gluon_classics.utils.devices import cpu_info  # noqa: E402
from gluon_classics.model_zoo import leaves  # noqa: E402
from mxnet import autograd, gluon, init, nd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

PEERS = {'d2l': "d2l: the book's per-image Resize DataLoader + step",
         'ours': 'gluon_classics: batched resize + one static graph',
         'bf16': 'gluon_classics graph in bfloat16 (train --dtype bfloat16)',
         'torch': 'eager PyTorch float32, batched resize',
         'torch_bf16': 'eager PyTorch, bfloat16 autocast'}
TORCH_PEERS = ('torch', 'torch_bf16')
BF16_PEERS = ('bf16', 'torch_bf16')
TORCH_SCRIPT = os.path.join(HERE, 'torch_alexnet.py')
ISA = ('avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16',
       'amx_tile', 'amx_bf16')


def cpu_description():
    """CPU model, logical CPUs and the ISA extensions oneDNN picks its kernels by."""
    model, cpus, flags = cpu_info()
    isa = ' '.join(flag for flag in ISA if flag in flags) or 'unknown'
    return model, cpus, isa, flags


def bf16_missing(peer, flags):
    """Why ``peer`` cannot run in bfloat16 on a CPU with ``flags``, or None."""
    if peer == 'bf16' and 'avx512_bf16' not in flags:
        return 'no avx512_bf16 (MXNet\'s oneDNN has bfloat16 kernels only there)'
    if peer == 'torch_bf16' and not {'avx512_bf16', 'amx_bf16'} & set(flags):
        return 'neither avx512_bf16 nor AMX'
    return None


def layer_table(image_shape):
    """Training FLOPs per image of the conv and dense layers (see the module docstring),
    the output shape at batch 1 of each of ``alexnet('d2l')``'s layers, and its parameter
    count."""
    net = alexnet(variant='d2l')
    net.initialize(init.Xavier())
    x = nd.zeros((1,) + tuple(image_shape))
    total, first, shapes = 0.0, True, []
    for layer in leaves(net):
        x = layer(x)
        shapes.append(list(x.shape))
        if isinstance(layer, (nn.Conv2D, nn.Dense)):
            w = layer.weight.shape
            per_output = 1
            for d in w[1:]:
                per_output *= d
            outputs = x.size if isinstance(layer, nn.Conv2D) else w[0]
            fwd = 2.0 * per_output * outputs
            total += fwd * (2 if first else 3)
            first = False
    params = sum(p.data().size for p in net.collect_params().values())
    return total, shapes, params


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
    emit(kind='steps', peer=peer, times=times[1:], batch_size=args.batch_size,
         loss=loss_sum.asscalar() / (1 + args.steps) / args.batch_size)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--steps', type=int, default=3, help='timed steps per peer (after 1 warm-up)')
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every process and torch.set_num_threads '
                         '(default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--peers', default='d2l,ours,bf16,torch,torch_bf16',
                    help='comma-separated, run in this order (default d2l,ours,bf16,torch,'
                         'torch_bf16; the bf16 ones are left out on CPUs without bfloat16 '
                         'instructions, the torch ones without PyTorch)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--child', choices=('d2l', 'ours', 'bf16'), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    return ap, args


def select_peers(ap, args, flags, have_torch):
    """The peers asked for, less those this CPU or this environment cannot run (one line
    each)."""
    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        ap.error(f'unknown peer(s) {", ".join(unknown) or "(none given)"}: '
                 f'choose from {", ".join(PEERS)}')
    for peer in [p for p in peers if p in BF16_PEERS]:
        why = bf16_missing(peer, flags)
        if why:
            print(f'bench_alexnet: this CPU has {why}: leaving out the {peer} peer')
            peers.remove(peer)
    torch_peers = [p for p in peers if p in TORCH_PEERS]
    if torch_peers and not have_torch:
        them = 'them' if len(torch_peers) > 1 else 'it'
        print(f'bench_alexnet: PyTorch is not installed: leaving out {", ".join(torch_peers)} '
              f'(pip install torch==2.13.0 to include {them}; never a dependency of '
              f'gluon_classics)')
        peers = [p for p in peers if p not in TORCH_PEERS]
    return peers


def peer_argv(peer, args, threads):
    common = ['--data-dir', args.data_dir, '--steps', str(args.steps),
              '--batch-size', str(args.batch_size), '--resize', str(args.resize),
              '--lr', str(args.lr), '--seed', str(args.seed)]
    if peer in TORCH_PEERS:
        return [TORCH_SCRIPT, '--threads', threads] + common + \
            (['--bf16'] if peer == 'torch_bf16' else [])
    return [os.path.abspath(__file__), '--child', peer] + common


def check_torch_net(peer, record, shapes, params):
    """Stop if PyTorch's network is not gluon_classics's alexnet('d2l')."""
    theirs = [shape for _, shape in record['shapes']]
    if theirs != shapes or record['parameters'] != params:
        sys.exit(f'bench_alexnet: the {peer} peer\'s network is not alexnet(\'d2l\'): layer '
                 f'shapes {theirs} and {record["parameters"]} parameters against {shapes} and '
                 f'{params}; fix alexnet_torch in torch_alexnet.py')


def report(args, peers, results, peaks, flops, threads, load):
    rows, rates, warnings = [], {}, []
    for peer in peers:
        times = results[peer]['times']
        rates[peer] = rate = args.batch_size * len(times) / sum(times)
        gflops = rate * flops / 1e9
        peak, source = peaks.best('bfloat16' if peer in BF16_PEERS else 'float32')
        if peak and gflops > peak:  # printed as measured, never clamped
            warnings.append(f'NOTE: {peer} ran {gflops:.1f} GFLOP/s, above the {peak:.1f} of its '
                            f'peak ({source}): the GEMM samples met a busier CPU than the '
                            f'steps, or no sampled GEMM reaches this CPU; find which before '
                            f'quoting that column')
        rows.append([PEERS[peer], f'{min(times):.2f} / {sorted(times)[len(times) // 2]:.2f}',
                     f'{rate:.1f}', f'{gflops:.1f}', f'{100 * gflops / peak:.0f}%' if peak
                     else 'n/a'])
    print(f'\ntraining FLOPs per image (conv + dense): {flops / 1e9:.2f} GFLOP; '
          f'{threads} threads; load average now {load()}')
    for dtype in ['float32'] + (['bfloat16'] if set(peers) & set(BF16_PEERS) else []):
        print(peaks.describe(dtype))
    print(format_table(rows, ['pipeline', 'step s (min / median)', 'examples/s', 'GFLOP/s',
                              'of GEMM peak']))
    for line in warnings:
        print(line)
    ratios = [f'{p} vs d2l: {rates[p] / rates["d2l"]:.2f}x' for p in peers
              if p != 'd2l' and 'd2l' in rates]
    if 'bf16' in rates and 'ours' in rates:
        ratios.append(f'bf16 vs ours: {rates["bf16"] / rates["ours"]:.2f}x')
    if 'ours' in rates and 'torch' in rates:
        ratios.append(f'ours_vs_torch_fp32={rates["ours"] / rates["torch"]:.2f}')
    if 'bf16' in rates and 'torch_bf16' in rates:
        ratios.append(f'ours_vs_torch_bf16={rates["bf16"] / rates["torch_bf16"]:.2f}')
    return '  '.join(ratios)


def torch_installed():
    """Whether PyTorch can be found, without importing it (its OpenMP is not MXNet's)."""
    try:
        return importlib.util.find_spec('torch') is not None
    except (ImportError, ValueError):
        return False


def _load():
    return ' '.join(open('/proc/loadavg').read().split()[:3]) \
        if os.path.exists('/proc/loadavg') else 'n/a'


def main(argv=None):
    ap, args = parse_args(argv)
    if args.child:
        return {'d2l': child_d2l, 'ours': child_ours,
                'bf16': lambda a: child_ours(a, bf16=True)}[args.child](args)

    model, cpus, isa, flags = cpu_description()
    have_torch = torch_installed()
    peers = select_peers(ap, args, flags, have_torch)
    threads = str(args.threads or os.environ.get('OMP_NUM_THREADS') or 2)
    onednn = 'oneDNN' if mx.runtime.Features().is_enabled('MKLDNN') else 'no oneDNN'
    print(f'bench_alexnet {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n'
          f'CPU: {model}, {cpus} logical CPUs; ISA: {isa}\n'
          f'MXNet {mx.__version__} ({onednn}), PyTorch '
          f'{"installed" if have_torch else "not installed"}, OMP_NUM_THREADS={threads}, '
          f'load average {_load()}\n'
          f'AlexNet (d2l) at {args.resize}, batch {args.batch_size}, 1 warm-up + {args.steps} '
          f'timed steps per peer: {", ".join(peers) or "(none left)"}', flush=True)
    if not peers:
        return 1
    start = time.time()
    flops, shapes, params = layer_table((1, args.resize, args.resize))
    dtypes = ['float32'] + (['bfloat16'] if set(peers) & set(BF16_PEERS) else [])
    frameworks = ['mxnet', 'torch'] if have_torch else ['mxnet']
    peaks = Peaks()
    sample(peaks, dtypes, threads, frameworks)
    results = {}
    for peer in peers:
        print(f'--- {peer}', flush=True)
        records = run_peer(peer_argv(peer, args, threads), env={'OMP_NUM_THREADS': threads})
        steps = [r for r in records if r['kind'] == 'steps']
        if not steps:  # the child said why in its line (torch missing, say)
            continue
        results[peer] = steps[0]
        if peer in TORCH_PEERS:
            check_torch_net(peer, results[peer], shapes, params)
        # The CPU may be shared: the peaks are sampled before, between and after the peers.
        sample(peaks, dtypes, threads, frameworks)
    last = report(args, [p for p in peers if p in results], results, peaks, flops, threads,
                  _load)
    print('  '.join(filter(None, [last, f'(total {time.time() - start:.0f} s)'])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
