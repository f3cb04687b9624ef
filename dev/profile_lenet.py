"""Where an epoch of LeNet training goes: step, data, bookkeeping, evaluation; and the
fast path's A/B.

    python -m dev.profile_lenet [--data-dir DIR] [--repeats 3] [--plain] [--no-kernel]
                                [--operators] [--torch] [--ab] [--num-examples N]

In one process, alternating, ``--repeats`` times (min / median printed):

  step        the bare training step on one fixed batch (objective under
              ``autograd.record``, ``backward``, ``trainer.step``), waited for
  data        one pass of the loader alone (gather, cast, scale), waited for
  epoch       train_ch5's training loop (one epoch, its evaluation timed apart): all of the
              above plus the sums, the NaN checks and the Python between them
  evaluation  ``evaluate_accuracy`` on the test set

"outside the step" is the epoch's wall time less the bare step's time for as many
batches. The main thread's CPU time per batch (``time.thread_time``, which other jobs on
the machine do not inflate) is split by part; ``--operators`` adds MXNet's profiler table
of one epoch. ``--plain`` profiles the plain static graph (``accel='off'``),
``--no-kernel`` the oneDNN-shaped one with MXNet's operators for LeNet's conv blocks
(``accel='graph'``) instead of our kernels (``accel='on'``). ``--torch`` also times eager
PyTorch's bare step (benchmarks/torch_peer.py's LeNet, in a child process of this module:
no MXNet there), once per repeat right after ours, and prints both in ms per step with
their ratio per repeat.

``--ab`` (``--kernel-ab`` too) instead times the bare step in the three settings of the
fast path, alternating in one process (``--repeats`` rounds of an epoch's worth of steps
each, the order reversed every other round): the A/B of our kernels and of the
oneDNN-shaped graph, free of the minute-to-minute drift between processes
(``python -m benchmarks.bench_lenet --ab`` measures the same between whole runs, one
process each). It
ends with ``kernel_vs_mxnet_ops=X.XX onednn_vs_plain=Y.YY``, the medians of the
rounds' ratios (``n/a`` for the kernels where they are not in use).
Threads: ``OMP_NUM_THREADS`` as set (MXNet's default is all cores).
"""
import argparse
import os
import statistics
import time

from benchmarks.common import (INSTALL_TORCH, add_data_argument, add_subset_argument, emit,
                               loadavg, machine_lines, module_argv, now, read_fashion_mnist,
                               run_peer, torch_installed, torch_threads)

BATCH = 256
CLOCK = time.thread_time  # the main thread's CPU time


class Parts:
    """LeNet, its loaders and trainer, one fixed batch, and each part of an epoch timed."""

    def __init__(self, data_dir, mode, num_examples=None):
        from gluon_classics import lenet, load_data_fashion_mnist, mx
        from mxnet import autograd, gluon, init
        self.mode, self.ctx = mode, mx.cpu()
        mx.random.seed(0)
        self.train_iter, self.test_iter = load_data_fashion_mnist(
            BATCH, root=data_dir, ctx=self.ctx, shuffle_seed=0)
        if num_examples:
            self.train_iter = self.train_iter.subset(num_examples, seed=0)
        self.net = lenet()
        self.net.initialize(init.Xavier(), ctx=self.ctx)
        self.trainer = gluon.Trainer(self.net.collect_params(), 'sgd', {'learning_rate': 0.9})
        self.X, self.y = next(iter(self.train_iter))
        with autograd.pause(train_mode=True):
            self.net(self.X)
        self.objective = self.graph(mode)
        self.batches = len(self.train_iter)

    def graph(self, mode):
        from gluon_classics.training import make_objective
        return make_objective(self.net, [self.ctx], accel=mode)

    def step(self, graph=None):
        """An epoch's worth of bare steps: wall seconds, CPU seconds of (objective call,
        backward call, trainer.step)."""
        from mxnet import autograd, nd
        graph = graph or self.objective
        nd.waitall()
        start, cpu = time.time(), [0.0] * 3
        for _ in range(self.batches):
            t0 = CLOCK()
            with autograd.record():
                loss, _ = graph(self.X, self.y)
            t1 = CLOCK()
            loss.backward()
            t2 = CLOCK()
            self.trainer.step(self.X.shape[0])
            t3 = CLOCK()
            cpu = [cpu[0] + t1 - t0, cpu[1] + t2 - t1, cpu[2] + t3 - t2]
        nd.waitall()
        return time.time() - start, cpu

    def data(self):
        from mxnet import nd
        nd.waitall()
        start, cpu = time.time(), CLOCK()
        for _ in self.train_iter:
            pass
        nd.waitall()
        return time.time() - start, CLOCK() - cpu

    def evaluation(self):
        from gluon_classics.training import evaluate_accuracy
        start, cpu = time.time(), CLOCK()
        evaluate_accuracy(self.test_iter, self.net, self.ctx)
        return time.time() - start, CLOCK() - cpu

    def epoch(self):
        """train_ch5's epoch without its evaluation: its training wall time, and the main
        thread's CPU time less the evaluation's (measured right after)."""
        from gluon_classics import train_ch5
        cpu = CLOCK()
        record, = train_ch5(self.net, self.train_iter, self.test_iter, BATCH, self.trainer,
                            self.ctx, 1, progress=False, log=lambda *a: None, accel=self.mode)
        cpu = CLOCK() - cpu - self.evaluation()[1]
        return self.train_iter.num_examples / record['examples_per_sec'], cpu

    def describe(self):
        from gluon_classics.accel import kernels
        if self.mode == 'off':
            return 'plain graph'
        # LeNet's conv blocks run on our operators wherever they load
        blocks = 'ours' if self.mode == 'on' and kernels.load() else "MXNet's operators"
        return f'oneDNN-shaped graph, conv blocks on {blocks} (our kernels: {kernels.status()})'


def profile(parts, args):
    """The parts of an epoch, ``--repeats`` times, and where the main thread's time goes."""
    parts.epoch()  # warm-up: graph building, oneDNN primitives
    walls = {k: [] for k in ('step', 'data', 'epoch', 'evaluation')}
    torch_ms = []
    for _ in range(args.repeats):
        walls['step'].append(parts.step()[0])
        if args.torch:
            torch_ms.append(torch_bare_step(args.data_dir, parts.batches))
        for name in ('data', 'epoch', 'evaluation'):
            walls[name].append(getattr(parts, name)()[0])
    _, (fwd, bwd, upd) = parts.step()
    n, batches = parts.train_iter.num_examples, parts.batches
    print(f'\n{batches} batches of {BATCH} ({n} examples), wall seconds min / median over '
          f'{args.repeats}, {parts.describe()}:')
    for name, values in walls.items():
        lo, med = min(values), statistics.median(values)
        rate = f'  ({n / med:,.0f} examples/s)' if name != 'evaluation' else ''
        print(f'  {name:<11} {lo:6.2f} / {med:6.2f} s{rate}')
    epoch = statistics.median(walls['epoch'])
    outside = epoch - statistics.median(walls['step'])
    print(f'  outside the step: {outside:.2f} s of the epoch ({100 * outside / epoch:.0f}%)')
    print('main thread CPU time per batch (Python and operator pushing; the kernels run on '
          "MXNet's engine threads):")
    cpu = {'objective call': fwd, 'backward call': bwd, 'trainer.step': upd,
           'loader': parts.data()[1], 'whole epoch loop': parts.epoch()[1]}
    for name, seconds in cpu.items():
        print(f'  {name:<17} {1e6 * seconds / batches:5.0f} us')
    if torch_ms:
        ours_ms = [1e3 * w / batches for w in walls['step']]
        print(f'bare step, ms per batch of {BATCH}, per repeat: ours '
              f'{" ".join(f"{v:.1f}" for v in ours_ms)}; eager PyTorch '
              f'{" ".join(f"{v:.1f}" for v in torch_ms)}; PyTorch / ours '
              f'{" ".join(f"{t / o:.2f}" for t, o in zip(torch_ms, ours_ms))}')
    if args.operators:
        from gluon_classics import mx
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
        mx.profiler.set_state('run')
        parts.epoch()
        mx.profiler.set_state('stop')
        print(mx.profiler.dumps(reset=True))


AB = (('on', 'our kernels'), ('graph', "MXNet's ops"), ('off', 'plain graph'))


def ab(parts, repeats):
    """The bare step in each setting of the fast path, alternating in one process."""
    from gluon_classics.accel import kernels
    graphs = {mode: parts.graph(mode) for mode, _ in AB}
    own = kernels.load()  # LeNet's conv blocks run on our operators wherever they load
    modes = [mode for mode, _ in AB if own or mode != 'on']
    for mode in modes:  # warm-up
        parts.step(graphs[mode])
    ms = {mode: [] for mode in modes}
    for r in range(repeats):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            ms[mode].append(1e3 * parts.step(graphs[mode])[0] / parts.batches)
    print(f'\nbare step, ms per batch of {BATCH}, {repeats} rounds of {parts.batches} steps '
          f'each, alternating in one process:')
    for mode, name in AB:
        if mode in ms:
            print(f'  {name:<20} {" ".join(f"{v:5.1f}" for v in ms[mode])}')
    if not own:
        print('  our kernels are not in use here (python -m gluon_classics doctor says why)')

    def ratio(slow, fast):
        if slow not in ms or fast not in ms:
            return 'n/a'
        ratios = [b / a for a, b in zip(ms[fast], ms[slow])]
        print(f'  {slow} / {fast:<14} {" ".join(f"{v:5.2f}" for v in ratios)}')
        return f'{statistics.median(ratios):.2f}'
    print(f'kernel_vs_mxnet_ops={ratio("graph", "on")} '
          f'onednn_vs_plain={ratio("off", "on" if own else "graph")}')


def torch_bare_step(data_dir, steps):
    """Eager PyTorch's bare step in ms, from a child process with this process's threads."""
    records = run_peer(module_argv(f'{__package__}.profile_lenet', '--data-dir', data_dir,
                                   '--torch-child', steps), echo=False)
    return next(r['ms'] for r in records if r['kind'] == 'bare_step')


def torch_child(data_dir, steps):
    """Wall ms per eager PyTorch LeNet step on one batch, after 5 untimed (no MXNet here)."""
    import torch
    from torch import nn

    from benchmarks.torch_peer import init_net, lenet_torch
    torch.set_num_threads(torch_threads(None))  # OMP_NUM_THREADS, as the parent's MXNet
    torch.manual_seed(0)
    (images, labels), _ = read_fashion_mnist(data_dir)
    X = torch.from_numpy(images[:BATCH].copy()).float().div_(255)
    y = torch.from_numpy(labels[:BATCH].astype('int64'))
    net = init_net(lenet_torch(nn), nn)
    optimizer, loss = torch.optim.SGD(net.parameters(), lr=0.9), nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()  # eager PyTorch computes synchronously: done when it returns
    emit(kind='bare_step', ms=(time.perf_counter() - start) / steps * 1e3, steps=steps)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m dev.profile_lenet',
                                 description=__doc__.split('\n')[0])
    add_data_argument(ap)
    ap.add_argument('--repeats', type=int, default=3)
    add_subset_argument(ap)
    ap.add_argument('--plain', action='store_true', help='the plain static graph')
    ap.add_argument('--no-kernel', action='store_true',
                    help="MXNet's operators for LeNet's conv blocks, not our kernels")
    ap.add_argument('--operators', action='store_true', help="MXNet profiler's operator table")
    ap.add_argument('--ab', '--kernel-ab', dest='ab', action='store_true',
                    help='the bare step with our kernels, with MXNet\'s operators and on the '
                         'plain graph, alternating in one process')
    ap.add_argument('--torch', action='store_true',
                    help="eager PyTorch's bare step beside ours, alternating")
    ap.add_argument('--torch-child', type=int, metavar='K', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.torch_child:
        return torch_child(args.data_dir, args.torch_child)
    if args.torch and not torch_installed():
        ap.error(f'--torch times eager PyTorch beside ours: {INSTALL_TORCH} first')
    if args.ab and (args.plain or args.no_kernel):
        ap.error('--ab compares the settings of the fast path itself: leave out --plain and '
                 '--no-kernel')
    for line in machine_lines():
        print(line)
    print(f'{now()}, load average {loadavg()}, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}', flush=True)
    parts = Parts(args.data_dir, 'off' if args.plain else 'graph' if args.no_kernel else 'on',
                  args.num_examples)
    if args.ab:
        ab(parts, args.repeats)
    else:
        profile(parts, args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
