"""LeNet training speed on Fashion-MNIST: d2l vs PyTorch vs gluon_classics, in one run.

    python -m benchmarks.bench_lenet [--data-dir DIR] [--epochs 10] [--repeats 1]
                                     [--threads N] [--peers d2l,torch,ours] [--ab]
    python -m benchmarks lenet ...   (the same)

Every peer trains the same LeNet (d2l variant) on the same IDX files with Xavier init,
plain SGD at lr 0.9, batch 256, for the same epochs, each in its own process, one after
the other, in alternating order across repeats, all with the same ``OMP_NUM_THREADS``
(``--threads``; default: the environment's, else 2):

  d2l            ``d2l.mxnet.train_ch6`` itself with d2l's own loader (d2l_peer.py)
  torch          eager PyTorch, the same network and loop (torch_peer.py; left out, with
                 a line, if torch is missing)
  torch-compile  the same through ``torch.compile(net)``, compiling timed in epoch 1 (asked
                 for only: ``--peers torch,torch-compile,ours``)
  ours           gluon_classics's ``train_ch5`` (ours.py), our kernels compiled before the timer
  ours-plain     the same on the plain static graph (``--ab`` adds it)
  ours-mxnet-ops the oneDNN-shaped graph on MXNet's operators instead of our kernels (``--ab``
                 adds it; the same A/B of the bare step in one process: dev/profile_lenet.py)

Examples/s = all training examples of all epochs / the wall time of their training loops,
loading included, evaluation excluded, epoch 1 included ("after epoch 1": without it).
d2l's own printed figure times only its step; it is shown, never used for ratios. How and
why: docs/speed.md. The header names the CPU, its ISA and the MXNet, PyTorch and oneDNN
versions, and the load average is printed before and after (with other jobs on the cores,
``--threads 1``).

Prints per-run ``BENCH_RUN`` lines, a table of min / median over repeats, with
``--repeats`` > 1 the final test accuracy of every seed (repeat r uses seed ``--seed`` + r),
and as the last line ``speedup_vs_d2l=X.XX speedup_vs_torch=Y.YY
speedup_vs_torch_compile=Z.ZZ onednn_vs_plain=W.WW kernel_vs_mxnet_ops=V.VV`` (ratios of
the median examples/s of ``ours``; ``n/a`` where a peer did not run).
"""
import argparse
import json
import statistics

from .common import (add_data_argument, add_subset_argument, format_table, loadavg,
                     machine_lines, module_argv, now, peer_options, run_peer, summarize,
                     threads as omp_threads)

PEERS = ('d2l', 'torch', 'torch-compile', 'ours', 'ours-plain', 'ours-mxnet-ops')
LABELS = {'d2l': 'd2l.mxnet.train_ch6 + book DataLoader', 'torch': 'eager PyTorch, same loop',
          'torch-compile': 'torch.compile PyTorch, same loop',
          'ours': 'gluon_classics train_ch5', 'ours-plain': 'gluon_classics, plain graph',
          'ours-mxnet-ops': 'gluon_classics, no own kernel'}
ACCEL = {'ours': 'on', 'ours-plain': 'off', 'ours-mxnet-ops': 'graph'}  # accel's public switch
OPTIONAL = ('torch-compile',)  # a failure to run is reported, not fatal


def peer_argv(args, peer, seed):
    """The command line of ``peer``'s process for the repeat with ``seed``."""
    options = peer_options(argparse.Namespace(**dict(vars(args), seed=seed)), epochs=args.epochs)
    if peer == 'd2l':
        return module_argv(f'{__package__}.d2l_peer', 'lenet', *options)
    if peer.startswith('torch'):
        return module_argv(f'{__package__}.torch_peer', 'lenet', *options,
                           *(['--compile'] if peer == 'torch-compile' else []))
    return module_argv(f'{__package__}.ours', 'lenet', '--accel', ACCEL[peer], *options)


def wall_examples_per_sec(epochs):
    """All training examples over all training wall time (loading included, evaluation not)."""
    return sum(e['examples'] for e in epochs) / sum(e['train_wall_s'] for e in epochs)


def result(peer, repeat, threads, records):
    """One run's figures from its records."""
    epochs = [rec for rec in records if rec['kind'] == 'epoch']
    run = next(rec for rec in records if rec['kind'] == 'run')
    res = dict(peer=peer, repeat=repeat, threads=threads,
               examples_per_sec=wall_examples_per_sec(epochs),
               after_epoch1=wall_examples_per_sec(epochs[1:]) if epochs[1:] else None,
               epoch_wall_s=statistics.mean(e['train_wall_s'] for e in epochs),
               train_acc=epochs[-1]['train_acc'], test_acc=epochs[-1]['test_acc'],
               loss=epochs[-1]['loss'], epochs=len(epochs))
    if peer == 'd2l':
        res['d2l_own_examples_per_sec'] = run['d2l_examples_per_sec']
    return res


def run_all(args, peers, threads):
    """Every peer, ``--repeats`` times in alternating order: ({peer: [result]}, {peer: why})."""
    runs, skipped = {p: [] for p in peers}, {}
    for r in range(args.repeats):
        for peer in peers if r % 2 == 0 else peers[::-1]:
            if peer in skipped:
                continue
            print(f'--- repeat {r + 1}/{args.repeats}: {peer} ({LABELS[peer]})', flush=True)
            try:
                records = run_peer(peer_argv(args, peer, args.seed + r),
                                   env={'OMP_NUM_THREADS': threads})
            except RuntimeError as err:
                if peer not in OPTIONAL:
                    raise
                records = [dict(kind='skip', reason=str(err).strip().splitlines()[-1][:100])]
            skip = [rec['reason'] for rec in records if rec['kind'] == 'skip']
            if skip:
                skipped[peer] = skip[0]
                continue
            runs[peer].append(result(peer, r + 1, threads, records))
            print('BENCH_RUN ' + json.dumps(runs[peer][-1]), flush=True)
    return runs, skipped


def print_tables(args, peers, runs, skipped, threads):
    """The table of min / median over repeats (and of accuracy by seed); the medians."""
    rows, medians = [], {}
    for peer in peers:
        if peer in skipped:
            rows.append([LABELS[peer], 'skipped: ' + skipped[peer]] + [''] * 6)
            continue
        res = runs[peer]
        lo, medians[peer], _ = summarize([x['examples_per_sec'] for x in res])
        pair = lambda key, fmt: '{0:{f}} / {1:{f}}'.format(  # noqa: E731
            *summarize([x[key] for x in res if x.get(key) is not None])[:2], f=fmt)
        later = pair('after_epoch1', '.0f') if any(x['after_epoch1'] for x in res) else ''
        own = pair('d2l_own_examples_per_sec', '.0f') if peer == 'd2l' else ''
        rows.append([LABELS[peer], f'{lo:.0f} / {medians[peer]:.0f}', later,
                     pair('epoch_wall_s', '.2f'), pair('train_acc', '.3f'),
                     pair('test_acc', '.3f'), own, str(len(res))])
    print()
    print(f'min / median over repeats; examples/s = training examples / training-loop wall time '
          f'(loading included, evaluation excluded); OMP_NUM_THREADS={threads}')
    print(format_table(rows, ['peer', 'examples/s', 'after epoch 1', 'epoch wall s',
                              'final train acc', 'final test acc', "d2l's own ex/s", 'runs']))
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
    return medians


def last_line(medians):
    """``speedup_vs_d2l=... kernel_vs_mxnet_ops=...``: ours's median over each peer's."""
    def ratio(other):
        if 'ours' not in medians or other not in medians:
            return 'n/a'
        return f'{medians["ours"] / medians[other]:.2f}'
    return (f'speedup_vs_d2l={ratio("d2l")} speedup_vs_torch={ratio("torch")} '
            f'speedup_vs_torch_compile={ratio("torch-compile")} '
            f'onednn_vs_plain={ratio("ours-plain")} '
            f'kernel_vs_mxnet_ops={ratio("ours-mxnet-ops")}')


def parse_args(argv):
    ap = argparse.ArgumentParser(prog='python -m benchmarks.bench_lenet',
                                 description=__doc__.split('\n')[0])
    add_data_argument(ap)
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--lr', type=float, default=0.9)
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--seed', type=int, default=0, help='repeat r uses seed + r')
    add_subset_argument(ap)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every peer (default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--peers', default='d2l,torch,ours',
                    help=f'comma-separated, from {",".join(PEERS)}')
    ap.add_argument('--ab', action='store_true',
                    help='add ours-plain (the plain static graph) and ours-mxnet-ops (no own '
                         'kernel) beside ours')
    args = ap.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    if args.ab:
        peers += [p for p in ('ours-plain', 'ours-mxnet-ops') if p not in peers]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown or not peers:
        ap.error(f'unknown peers {unknown}: choose from {",".join(PEERS)}')
    if 'd2l' in peers and args.num_examples and args.num_examples < 5 * args.batch_size:
        ap.error(f"--num-examples {args.num_examples} is under 5 batches: d2l's train_ch6 "
                 f"draws its Animator every fifth of an epoch; give at least "
                 f"{5 * args.batch_size}")
    return args, peers


def main(argv=None):
    args, peers = parse_args(argv)
    threads = omp_threads(args.threads)
    print(f'bench_lenet: {args.epochs} epochs x {args.repeats} repeats, batch {args.batch_size}, '
          f'lr {args.lr}, OMP_NUM_THREADS={threads}, data {args.data_dir}'
          + (f', {args.num_examples} training examples' if args.num_examples else ''))
    for line in machine_lines():
        print(line)
    print(f'{now()}; load average before: {loadavg()}', flush=True)
    runs, skipped = run_all(args, peers, threads)
    print(f'load average after: {loadavg()}')
    medians = print_tables(args, peers, runs, skipped, threads)
    if 'ours' in medians and 'd2l' in medians:
        diff = (statistics.mean(x['test_acc'] for x in runs['ours'])
                - statistics.mean(x['test_acc'] for x in runs['d2l']))
        print(f'mean final test accuracy, ours minus d2l: {100 * diff:+.1f} points')
    print(last_line(medians))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
