"""The figures drawn from docs/measurements/'s records.

    python -m benchmarks chart [--data docs/measurements/lenet_speed.json]
                               [--out docs/speed.png]
    python -m benchmarks article-chart [--data docs/measurements/alexnet-article.json]
                                       [--out docs/measurements/alexnet-article.png]

chart: the LeNet speed logs (docs/speed.md) as one chart. Per CPU class (its label in the
record), code stage and thread count, a bar per peer at the median of the runs' medians, a
dot per run's median, and the ratios of ours.

article-chart: the article's AlexNet run beside the d2l authors' published one. Our curve
is drawn as the CLI's ``--plot`` draws it (``plot_history``); the published run's printed
epochs go on the same axes, in the same colours, faded and with open markers.
"""
import argparse
import json
import os
import statistics

from .common import REPO

MEASUREMENTS = os.path.join(REPO, 'docs', 'measurements')
PEERS = (('d2l', 'd2l train_ch6', '#9e9e9e'), ('torch', 'eager PyTorch', '#e07b39'),
         ('ours', 'gluon_classics train_ch5', '#2a7ab0'))


def _figure(**kwargs):
    """A matplotlib Figure of its own: no pyplot, so no backend to choose (it is only saved)."""
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def groups(runs):
    """Runs grouped by (machine, stage, threads), in the order they first appear."""
    found = {}
    for run in runs:
        found.setdefault((run['machine'], run['stage'], run['threads']), []).append(run)
    return found


def draw_speed(data, out):
    """Save the LeNet speed chart of ``data`` (lenet_speed.json) to ``out``; return its
    y labels."""
    from gluon_classics.utils.outputs import save_figure
    grouped, cpu = groups(data['runs']), data['labels']
    fig = _figure(figsize=(12, 1.35 * len(grouped) + 2.2))
    ax = fig.subplots()
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
        labels.append(f"{cpu[machine]}, {threads} thread{'s' * (threads > 1)}\n"
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
    fig.text(0.01, 0.01, '\n'.join(f'{cpu[k]}: {v}' for k, v in data['machines'].items()),
             fontsize=8, color='#444444')
    save_figure(fig, out, dpi=110)
    return labels


def draw_article(record, out):
    """Save the article's chart of ``record`` (alexnet-article.json) to ``out``; return its
    legend's labels."""
    from gluon_classics.utils.outputs import save_figure
    from gluon_classics.utils.plots import HISTORY_CURVES, plot_history
    ax = _figure(figsize=(6, 4)).subplots()
    plot_history(record['history'], ax=ax)
    for line, (_, _, name) in zip(ax.get_lines(), HISTORY_CURVES):
        line.set_label(f'ours: {name}')
    reference = record['reference']['history']
    for key, (color, _), name in HISTORY_CURVES:
        ax.plot([r['epoch'] for r in reference], [r[key] for r in reference], ':', color=color,
                alpha=0.55, marker='o', markersize=4, markerfacecolor='none',
                label=f'published (GPU): {name}')
    epochs = [r['epoch'] for r in record['history'] + reference]
    ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)
    ax.set_xticks(sorted(set(epochs)))
    ax.legend(fontsize=8, ncol=2, loc='upper center', bbox_to_anchor=(0.5, -0.14))  # off the curves
    recipe = record['recipe']
    ax.set_title(f"AlexNet, the article's recipe: lr {recipe['lr']}, batch "
                 f"{recipe['batch_size']}, {recipe['resize']}x{recipe['resize']}, "
                 f"{recipe['dtype']}", fontsize=10)
    save_figure(ax.figure, out, bbox_inches='tight', dpi=120)
    return ax.get_legend_handles_labels()[1]


def _main(argv, mode, draw, data, out):
    parser = argparse.ArgumentParser(prog=f'python -m benchmarks {mode}',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--data', default=data)
    parser.add_argument('--out', default=out)
    args = parser.parse_args(argv)
    with open(args.data) as f:
        draw(json.load(f), args.out)
    print(f'wrote {args.out}')
    return 0


def speed(argv=None):
    """``python -m benchmarks chart``."""
    return _main(argv, 'chart', draw_speed, os.path.join(MEASUREMENTS, 'lenet_speed.json'),
                 os.path.join(REPO, 'docs', 'speed.png'))


def article(argv=None):
    """``python -m benchmarks article-chart``."""
    return _main(argv, 'article-chart', draw_article,
                 os.path.join(MEASUREMENTS, 'alexnet-article.json'),
                 os.path.join(MEASUREMENTS, 'alexnet-article.png'))
