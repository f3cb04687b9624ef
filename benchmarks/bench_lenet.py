"""LeNet training speed on Fashion-MNIST: d2l vs PyTorch vs gluon_classics, in one run.

    python benchmarks/bench_lenet.py [--data-dir DIR] [--epochs 10] [--repeats 1]
                                     [--threads N] [--peers d2l,torch,ours] [--ab]

Peers, all on the same data (the IDX files of ``--data-dir``), the same LeNet
(d2l variant: sigmoid, average pooling), Xavier init, softmax cross-entropy,
plain SGD with lr 0.9, batch 256 and the same number of epochs:

  d2l            ``d2l.mxnet.train_ch6`` itself (d2l 1.0.3, numpy mode, the book's
                 ``nn.Sequential``), fed by a DataLoader built the book's way (per-image
                 ToTensor, 4 workers) over the same arrays: d2l_peer.py. d2l's own
                 ``load_data_fashion_mnist`` cannot be used offline: Gluon's FashionMNIST
                 re-downloads any file whose SHA-1 is not the official one.
  torch          eager PyTorch, the same network and loop, batches from a uint8 tensor in
                 memory: torch_reference.py (left out, with a line, if torch is missing)
  torch-compile  the same with ``torch.compile(net)``; not run by default: compiling
                 takes minutes here and is timed in epoch 1 (``--peers torch,torch-compile,ours``)
  ours           gluon_classics: ``load_data_fashion_mnist`` + ``train_ch5`` (on CPUs
                 the oneDNN-shaped training graph of accel/graph.py, with our kernels
                 for LeNet's conv blocks; their one-time compilation, about 10 s the first
                 time on a machine, happens before the timer starts)
  ours-plain     the same with the plain static graph (``--ab`` adds it): the A/B of
                 the oneDNN-shaped graph, measured in the same run
  ours-mxnet-ops the oneDNN-shaped graph with MXNet's operators for LeNet's conv
                 blocks instead of our kernels (``accel='graph'``; ``--ab``
                 adds it too): the A/B of training/conv_pool.cc

Each peer runs in its own process (d2l's numpy mode is process-wide; torch and
MXNet bring different OpenMP runtimes), one after the other, in alternating
order across repeats (d2l, torch, ours, then ours, torch, d2l, ...). Every
process gets the same ``OMP_NUM_THREADS`` (``--threads``; default: the
environment's, else 2). The header names the CPU, its ISA (AVX2, AVX-512,
AVX512_BF16, AMX) and the MXNet, PyTorch and oneDNN versions.

What is measured: training examples/s = all training examples of all epochs /
the wall time of the epochs' training loops, data loading included, test
evaluation excluded (each peer's script times its loops; for ``ours`` it is
train_ch5's ``examples_per_sec``, which is that figure). The first epoch
(graph building, oneDNN primitive creation, torch.compile) is included for
every peer; "after epoch 1" gives the same figure without it. d2l's own
printed figure times only its step (``Timer`` inside the loop, not the
loader), so it is shown too, but never used for the ratios.

The CPU is shared: the load average is printed before and after; with other
jobs on the two cores, OpenMP with 2 threads slows everything several-fold
(use ``--threads 1`` there).

Prints per-run ``BENCH_JSON`` lines, a table of min/median over repeats, with
``--repeats`` > 1 the final test accuracy of every seed (repeat r uses seed
``--seed`` + r), and as the last line ``speedup_vs_d2l=X.XX speedup_vs_torch=Y.YY
speedup_vs_torch_compile=Z.ZZ onednn_vs_plain=W.WW kernel_vs_mxnet_ops=V.VV`` (ratios
of the median examples/s of ``ours``; ``n/a`` where a peer did not run).
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

from _common import (add_run_arguments, emit, format_table, machine_lines,  # noqa: E402
                     run_peer, summarize, wall_examples_per_sec)

PEERS = ('d2l', 'torch', 'torch-compile', 'ours', 'ours-plain', 'ours-mxnet-ops')
LABELS = {'d2l': 'd2l.mxnet.train_ch6 + book DataLoader', 'torch': 'eager PyTorch, same loop',
          'torch-compile': 'torch.compile PyTorch, same loop',
          'ours': 'gluon_classics train_ch5', 'ours-plain': 'gluon_classics, plain graph',
          'ours-mxnet-ops': 'gluon_classics, no own kernel'}
OPTIONAL = ('torch-compile',)  # a failure to run is reported, not fatal


# --------------------------------------------------------------------------------------
def run_mxnet_peer(args, peer):
    """Child process of peer 'ours': train and print BENCH_JSON lines."""
    from gluon_classics import accel, lenet, load_data_fashion_mnist, mx, train_ch5
    from gluon_classics.accel import kernels
    from mxnet import gluon, init
    # the fast path's public switch: ours-plain trains on the plain static graph,
    # ours-mxnet-ops on the rewritten graph with MXNet's operators for LeNet's conv blocks
    mode = {'ours': 'on', 'ours-plain': 'off', 'ours-mxnet-ops': 'graph'}[peer]
    if mode == 'on':
        kernels.load()  # compiled once per machine, like an install step: not in the timed epochs
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
                        args.epochs, log=log, accel=mode)
    for rec in history:
        emit(kind='epoch', peer=peer, epoch=rec['epoch'], loss=rec['loss'],
             train_acc=rec['train_acc'], test_acc=rec['test_acc'], examples=examples,
             train_wall_s=examples / rec['examples_per_sec'],
             eval_s=rec['seconds'] - examples / rec['examples_per_sec'],
             examples_per_sec=rec['examples_per_sec'])
    emit(kind='run', peer=peer, total_s=time.time() - start,
         omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


def _peer_argv(args, peer, seed):
    common = ['--data-dir', args.data_dir, '--epochs', str(args.epochs), '--lr', str(args.lr),
              '--batch-size', str(args.batch_size), '--seed', str(seed)]
    if peer == 'd2l':
        return [os.path.join(HERE, 'd2l_peer.py')] + common
    if peer == 'torch':
        return [os.path.join(HERE, 'torch_reference.py')] + common
    if peer == 'torch-compile':
        return [os.path.join(HERE, 'torch_reference.py'), '--compile'] + common
    return [os.path.abspath(__file__), '--child', peer] + common


def _loadavg():
    try:
        return ' '.join(open('/proc/loadavg').read().split()[:3])
    except OSError:
        return 'n/a'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(ap)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every peer (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--peers', default='d2l,torch,ours',
                    help=f'comma-separated, from {",".join(PEERS)}')
    ap.add_argument('--ab', action='store_true',
                    help='add ours-plain (the plain static graph) and ours-mxnet-ops (no own '
                         'kernel) beside ours')
    ap.add_argument('--child', choices=('ours', 'ours-plain', 'ours-mxnet-ops'),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    if args.child:
        return run_mxnet_peer(args, args.child)

    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    if args.ab:
        peers += [p for p in ('ours-plain', 'ours-mxnet-ops') if p not in peers]
    unknown = set(peers) - set(PEERS)
    if unknown or not peers:
        ap.error(f'unknown peers {sorted(unknown)}: choose from {",".join(PEERS)}')
    threads = str(args.threads or os.environ.get('OMP_NUM_THREADS') or 2)
    env = {'OMP_NUM_THREADS': threads}
    print(f'bench_lenet: {args.epochs} epochs x {args.repeats} repeats, batch {args.batch_size}, '
          f'lr {args.lr}, OMP_NUM_THREADS={threads}, data {args.data_dir}')
    for line in machine_lines():
        print(line)
    print(f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; load average before: '
          f'{_loadavg()} ({os.cpu_count()} CPUs)', flush=True)
    runs = {p: [] for p in peers}
    skipped = {}
    for r in range(args.repeats):
        order = peers if r % 2 == 0 else peers[::-1]
        for peer in order:
            if peer in skipped:
                continue
            print(f'--- repeat {r + 1}/{args.repeats}: {peer} ({LABELS[peer]})', flush=True)
            try:
                records = run_peer(_peer_argv(args, peer, args.seed + r), env=env)
            except RuntimeError as err:
                if peer not in OPTIONAL:
                    raise
                records = [dict(kind='skip', reason=str(err).strip().splitlines()[-1][:100])]
            if any(rec['kind'] == 'skip' for rec in records):
                skipped[peer] = next(rec['reason'] for rec in records if rec['kind'] == 'skip')
                continue
            epochs = [rec for rec in records if rec['kind'] == 'epoch']
            run = next(rec for rec in records if rec['kind'] == 'run')
            result = dict(peer=peer, repeat=r + 1, threads=threads,
                          examples_per_sec=wall_examples_per_sec(epochs),
                          after_epoch1=wall_examples_per_sec(epochs[1:]) if epochs[1:] else None,
                          epoch_wall_s=statistics.mean(e['train_wall_s'] for e in epochs),
                          train_acc=epochs[-1]['train_acc'], test_acc=epochs[-1]['test_acc'],
                          loss=epochs[-1]['loss'], epochs=len(epochs))
            if peer == 'd2l':
                result['d2l_own_examples_per_sec'] = run['d2l_examples_per_sec']
            runs[peer].append(result)
            print('BENCH_RUN ' + json.dumps(result), flush=True)
    print(f'load average after: {_loadavg()}')

    rows, medians = [], {}
    for peer in peers:
        if peer in skipped:
            rows.append([LABELS[peer], 'skipped: ' + skipped[peer]] + [''] * 6)
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
        later = [x['after_epoch1'] for x in res if x['after_epoch1']]
        later = '{:.0f} / {:.0f}'.format(*summarize(later)) if later else ''
        rows.append([LABELS[peer],
                     f'{lo:.0f} / {med:.0f}', later, f'{wall[0]:.2f} / {wall[1]:.2f}',
                     f'{train_acc[0]:.3f} / {train_acc[1]:.3f}',
                     f'{test_acc[0]:.3f} / {test_acc[1]:.3f}', own, str(len(res))])
    print()
    print(f'min / median over repeats; examples/s = training examples / training-loop wall time '
          f'(loading included, evaluation excluded); OMP_NUM_THREADS={threads}')
    print(format_table(rows, ['peer', 'examples/s', 'after epoch 1', 'epoch wall s',
                              'final train acc',
                              'final test acc', "d2l's own ex/s", 'runs']))

    if args.repeats > 1:
        # Final test accuracy at lr 0.9 swings by several points between seeds, so the
        # accuracy comparison is between distributions, not single runs.
        seeds = [args.seed + r for r in range(args.repeats)]
        acc_rows = [[LABELS[p]] + [f"{x['test_acc']:.3f}" for x in runs[p]]
                    + [f"{statistics.mean(x['test_acc'] for x in runs[p]):.3f}"]
                    for p in peers if p not in skipped]
        print()
        print('final test accuracy by seed (each peer draws its own init and order from the seed)')
        print(format_table(acc_rows, ['peer'] + [f'seed {s}' for s in seeds] + ['mean']))

    def ratio(other):
        if 'ours' not in medians or other not in medians:
            return 'n/a'
        return f'{medians["ours"] / medians[other]:.2f}'
    if 'ours' in medians and 'd2l' in medians:
        diff = (statistics.mean(x['test_acc'] for x in runs['ours'])
                - statistics.mean(x['test_acc'] for x in runs['d2l']))
        print(f'mean final test accuracy, ours minus d2l: {100 * diff:+.1f} points')
    print(f'speedup_vs_d2l={ratio("d2l")} speedup_vs_torch={ratio("torch")} '
          f'speedup_vs_torch_compile={ratio("torch-compile")} '
          f'onednn_vs_plain={ratio("ours-plain")} '
          f'kernel_vs_mxnet_ops={ratio("ours-mxnet-ops")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
