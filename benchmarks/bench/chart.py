"""The LeNet speed logs as one chart: examples/s per peer, per CPU class and code stage.

The logs are in docs/measurements/, summarized in docs/speed.md.

    python benchmarks/classics_bench.py chart [--data docs/measurements/lenet_speed.json]
                                              [--out docs/speed.png]

Reads the runs (min / median examples/s per peer, as the speed logs give
them) and draws, per CPU class, code stage and thread count, a bar per peer at the
median of the runs' medians, a dot per run's median, and the ratios of ours.
"""
import argparse
import json
import os
import statistics

from bench.common import REPO as ROOT
PEERS = (('d2l', 'd2l train_ch6', '#9e9e9e'), ('torch', 'eager PyTorch', '#e07b39'),
         ('ours', 'gluon_classics train_ch5', '#2a7ab0'))
CPU = {'avx512-1206': 'AVX-512 CPU, after issues 32-36', 'avx512': 'AVX-512 CPU', 'avx2': 'AVX2 CPU'}


def groups(runs):
    """Runs grouped by (machine, stage, threads), in the order they first appear."""
    found = {}
    for run in runs:
        found.setdefault((run['machine'], run['stage'], run['threads']), []).append(run)
    return found


def draw(data, out):
    from gluon_classics.utils.outputs import save_figure
    from gluon_classics.utils.plots import _pyplot
    plt = _pyplot()
    grouped = groups(data['runs'])
    fig, ax = plt.subplots(figsize=(12, 1.35 * len(grouped) + 2.2))
    height, labels = 0.26, []
    for g, ((machine, stage, threads), runs) in enumerate(grouped.items()):
        medians = {p: [r[p][1] for r in runs] for p, _, _ in PEERS}
        value = {p: statistics.median(v) for p, v in medians.items()}
        for k, (peer, name, color) in enumerate(PEERS):
            y = g + (k - 1) * height
            ax.barh(y, value[peer], height=height * 0.9, color=color,
                    label=name if g == 0 else None)
            if len(runs) > 1:
                ax.plot(medians[peer], [y] * len(runs), 'o', color='black', ms=3, alpha=0.6)
        right = max([value['ours']] + medians['ours'])
        ax.text(right + 400, g + height,
                f"{value['ours'] / value['d2l']:.1f}x d2l, {value['ours'] / value['torch']:.1f}x "
                f"PyTorch", va='center', fontsize=10)
        when = sorted({r['date'] for r in runs})
        labels.append(f"{CPU[machine]}, {threads} thread{'s' * (threads > 1)}\n"
                      f"{data['stages'][stage]}\n"
                      f"{len(runs)} run{'s' * (len(runs) > 1)}, {', '.join(when)}")
    ax.set_yticks(range(len(grouped)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel('training examples/s (median over repeats; dots: each run)', fontsize=11)
    ax.set_xlim(0, max(max(r[p][1] for r in data['runs']) for p, _, _ in PEERS) * 1.3)
    ax.grid(axis='x', alpha=0.3)
    ax.legend(fontsize=10, loc='lower right')
    ax.xaxis.set_major_formatter(lambda x, _: f'{x:,.0f}')
    ax.set_title('LeNet on Fashion-MNIST (batch 256, 3 epochs a repeat): training speed, '
                 'from docs/measurements (docs/speed.md)', fontsize=12, loc='left')
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.text(0.01, 0.01, '\n'.join(f'{CPU[k]}: {v}' for k, v in data['machines'].items()),
             fontsize=8, color='#444444')
    save_figure(fig, out, dpi=110)
    plt.close(fig)
    return labels


def main(argv=None):
    parser = argparse.ArgumentParser(prog='classics_bench.py chart',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--data', default=os.path.join(ROOT, 'docs', 'measurements',
                                                       'lenet_speed.json'))
    parser.add_argument('--out', default=os.path.join(ROOT, 'docs', 'speed.png'))
    args = parser.parse_args(argv)
    with open(args.data) as f:
        draw(json.load(f), args.out)
    print(f'wrote {args.out}')
    return 0
