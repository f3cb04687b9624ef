"""Where an epoch of LeNet training goes: step, data, bookkeeping, evaluation.

    python benchmarks/profile_lenet.py [--data-dir DIR] [--repeats 3] [--plain] [--no-kernel]
                                       [--operators] [--torch] [--kernel-ab]

In one process, alternating, ``--repeats`` times (min / median printed):

  step        the bare training step on one fixed batch (objective under
              ``autograd.record``, ``backward``, ``trainer.step``), waited for
  data        one pass of the loader alone (gather, cast, scale), waited for
  epoch       train_ch5's training loop (one epoch, its evaluation timed apart): all of the above
              plus the sums, the NaN checks and the Python between them
  evaluation  ``evaluate_accuracy`` on the test set

"outside the step" is the epoch's wall time less the bare step's time for as
many batches. The main thread's CPU time per batch (``time.thread_time``,
which other jobs on the machine do not inflate) is split by part, and
``--operators`` adds MXNet's profiler table of one epoch (aggregate stats).
``--plain`` uses the plain static graph instead of the oneDNN-shaped one;
``--no-kernel`` the oneDNN-shaped one with MXNet's operators for LeNet's conv
blocks instead of our kernels (training/conv_pool.cc). ``--kernel-ab`` instead
times the bare step with and without our kernels, alternating in one process
(``--repeats`` rounds of an epoch's worth of steps each), and prints both
and their ratio per round: the A/B of the kernels, free of the minute-to-minute
drift between processes.
``--torch`` also times eager PyTorch's bare step on the same batch size
(torch_reference.py ``--bare-steps``, in a child process: torch and MXNet bring
different OpenMP runtimes), once per repeat right after ours, and prints both
in ms per step with their ratio per repeat: the steps alone, compared in the
same minutes.
Threads: ``OMP_NUM_THREADS`` as set (MXNet's default is all cores).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import DEFAULT_DATA_DIR, machine_lines  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--plain', action='store_true', help='the plain static graph')
    ap.add_argument('--no-kernel', action='store_true',
                    help="MXNet's operators for LeNet's conv blocks, not our kernels")
    ap.add_argument('--operators', action='store_true', help="MXNet profiler's operator table")
    ap.add_argument('--kernel-ab', action='store_true',
                    help='the bare step with and without our kernels, alternating')
    ap.add_argument('--torch', action='store_true',
                    help="eager PyTorch's bare step beside ours, alternating")
    args = ap.parse_args(argv)
    if args.kernel_ab and (args.plain or args.no_kernel):
        ap.error("--kernel-ab compares our kernels with MXNet's operators in the oneDNN-shaped "
                 "graph itself: leave out --plain and --no-kernel")
    for line in machine_lines():
        print(line)
    print(f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, load average '
          f'{" ".join(open("/proc/loadavg").read().split()[:3])}, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}', flush=True)

    from gluon_classics import lenet, load_data_fashion_mnist, mx, train_ch5
    from gluon_classics.accel import kernels
    from gluon_classics.training import evaluate_accuracy, make_objective
    from mxnet import autograd, gluon, init, nd
    mode = 'off' if args.plain else 'graph' if args.no_kernel else 'on'  # the public switch
    ctx = mx.cpu()
    mx.random.seed(0)
    train_iter, test_iter = load_data_fashion_mnist(256, root=args.data_dir, ctx=ctx,
                                                    shuffle_seed=0)
    net = lenet()
    net.initialize(init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.9})
    X, y = next(iter(train_iter))
    with autograd.pause(train_mode=True):
        net(X)
    objective = make_objective(net, [ctx], accel=mode)
    batches = len(train_iter)
    clock = time.thread_time

    def step(graph=objective):
        nd.waitall()
        start, cpu = time.time(), [0.0] * 3
        for _ in range(batches):
            t0 = clock()
            with autograd.record():
                loss, _ = graph(X, y)
            t1 = clock()
            loss.backward()
            t2 = clock()
            trainer.step(X.shape[0])
            t3 = clock()
            cpu = [cpu[0] + t1 - t0, cpu[1] + t2 - t1, cpu[2] + t3 - t2]
        nd.waitall()
        return time.time() - start, cpu

    def data():
        nd.waitall()
        start, cpu = time.time(), clock()
        for _ in train_iter:
            pass
        nd.waitall()
        return time.time() - start, clock() - cpu

    def evaluation():
        start, cpu = time.time(), clock()
        evaluate_accuracy(test_iter, net, ctx)
        return time.time() - start, clock() - cpu

    def epoch():
        """train_ch5's epoch without its evaluation: its training wall time, and the
        main thread's CPU time less the evaluation's (measured right after)."""
        cpu = clock()
        record, = train_ch5(net, train_iter, test_iter, 256, trainer, ctx, 1, progress=False,
                            log=lambda *a: None, accel=mode)
        cpu = clock() - cpu - evaluation()[1]
        return train_iter.num_examples / record['examples_per_sec'], cpu

    if args.kernel_ab:
        return _kernel_ab(step, make_objective(net, [ctx], accel='graph'), objective, X,
                          batches, args.repeats)
    epoch()  # warm-up: graph building, oneDNN primitives
    walls = {k: [] for k in ('step', 'data', 'epoch', 'evaluation')}
    torch_ms = []
    for _ in range(args.repeats):
        walls['step'].append(step()[0])
        if args.torch:
            torch_ms.append(_torch_bare_step(args.data_dir, batches))
        walls['data'].append(data()[0])
        walls['epoch'].append(epoch()[0])
        walls['evaluation'].append(evaluation()[0])
    _, (fwd, bwd, upd) = step()
    _, data_cpu = data()
    _, epoch_cpu = epoch()
    n = train_iter.num_examples
    ops = [op['op'] for op in objective.graph(X)._ops] if not args.plain else []
    graph = 'plain graph' if args.plain else (
        f'oneDNN-shaped graph, conv blocks on {ops[0]}'
        f'{" + " + ops[1] if ops[0] == "conv_pool" else ""}'
        f' (our kernels: {kernels.status()})')
    print(f'\n{batches} batches of 256 ({n} examples), wall seconds min / median over '
          f'{args.repeats}, {graph}:')
    for name, values in walls.items():
        lo, med = min(values), statistics.median(values)
        rate = f'  ({n / med:,.0f} examples/s)' if name != 'evaluation' else ''
        print(f'  {name:<11} {lo:6.2f} / {med:6.2f} s{rate}')
    outside = statistics.median(walls['epoch']) - statistics.median(walls['step'])
    print(f'  outside the step: {outside:.2f} s of the epoch '
          f'({100 * outside / statistics.median(walls["epoch"]):.0f}%)')
    print('main thread CPU time per batch (Python and operator pushing; the kernels run on '
          "MXNet's engine threads):")
    parts = {'objective call': fwd, 'backward call': bwd, 'trainer.step': upd,
             'loader': data_cpu, 'whole epoch loop': epoch_cpu}
    for name, seconds in parts.items():
        print(f'  {name:<17} {1e6 * seconds / batches:5.0f} us')
    if torch_ms:
        ours_ms = [1e3 * w / batches for w in walls['step']]
        print(f'bare step, ms per batch of 256, per repeat: ours '
              f'{" ".join(f"{v:.1f}" for v in ours_ms)}; eager PyTorch '
              f'{" ".join(f"{v:.1f}" for v in torch_ms)}; PyTorch / ours '
              f'{" ".join(f"{t / o:.2f}" for t, o in zip(torch_ms, ours_ms))}')
    if args.operators:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.devnull)
        mx.profiler.set_state('run')
        epoch()
        mx.profiler.set_state('stop')
        print(mx.profiler.dumps(reset=True))


def _kernel_ab(step, without, objective, X, batches, repeats):
    """Alternate the bare step with our kernels (``objective``) and without them."""
    if objective.graph(X)._ops[0]['op'] != 'conv_pool':
        raise SystemExit('profile_lenet: our kernels are not in use here, nothing to compare '
                         '(gluon-classics doctor says why)')
    step(objective), step(without)  # warm-up
    ms = {'with': [], 'without': []}
    for r in range(repeats):
        for name in (('with', 'without') if r % 2 == 0 else ('without', 'with')):
            ms[name].append(1e3 * step(objective if name == 'with' else without)[0] / batches)
    ratios = [b / a for a, b in zip(ms['with'], ms['without'])]
    print(f'\nbare step, ms per batch of 256, {repeats} rounds of {batches} steps each, '
          f'alternating in one process:')
    print(f'  with our kernels     {" ".join(f"{v:5.1f}" for v in ms["with"])}')
    print(f"  with MXNet's ops     {' '.join(f'{v:5.1f}' for v in ms['without'])}")
    print(f'  without / with       {" ".join(f"{v:5.2f}" for v in ratios)}  '
          f'(median {statistics.median(ratios):.2f})')


def _torch_bare_step(data_dir, steps):
    """Eager PyTorch's bare step in ms, from a child process with this process's threads."""
    out = subprocess.run([sys.executable, os.path.join(HERE, 'torch_reference.py'),
                          '--data-dir', data_dir, '--bare-steps', str(steps)],
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith('BARE_STEP_MS ')]
    if not lines:
        raise SystemExit(f'profile_lenet: torch_reference.py gave no step time: {out.strip()}')
    return float(lines[0].split()[1])


if __name__ == '__main__':
    main()
