"""The article's AlexNet run beside the d2l authors' published one, from its record.

    python benchmarks/classics_bench.py article-chart
        [--data docs/measurements/alexnet-article.json]
        [--out docs/measurements/alexnet-article.png]

Our curve is drawn as the CLI's ``--plot`` draws it (``plot_history``); the published run's
printed epochs go on the same axes, in the same colours, faded and with open markers.
"""
import argparse
import json
import os

from bench.common import REPO as ROOT


def draw(record, out):
    """Save the figure to ``out``; return its legend's labels."""
    from gluon_classics.utils.outputs import save_figure
    from gluon_classics.utils.plots import HISTORY_CURVES, _pyplot, plot_history
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
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
    save_figure(fig, out, bbox_inches='tight', dpi=120)
    plt.close(fig)
    return ax.get_legend_handles_labels()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='classics_bench.py article-chart',
                                     description=__doc__.split('\n')[0])
    here = os.path.join(ROOT, 'docs', 'measurements')
    parser.add_argument('--data', default=os.path.join(here, 'alexnet-article.json'))
    parser.add_argument('--out', default=os.path.join(here, 'alexnet-article.png'))
    args = parser.parse_args(argv)
    with open(args.data) as f:
        draw(json.load(f), args.out)
    print(f'wrote {args.out}')
    return 0
