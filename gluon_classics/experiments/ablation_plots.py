"""The ablation's two figures, drawn from its results (``results.json``):

- ``ranking.png``: the variants ranked by final test accuracy, a bar for the
  mean over seeds, a whisker for the seeds' min..max and a dot per seed, the
  baseline and chance level marked;
- ``curves.png``: test accuracy per epoch, one colour per variant (variants
  stuck at chance level share one grey line and one legend entry).

Redraw them from a results folder without training again:

    python -m gluon_classics.experiments.ablation_plots docs/ablation
"""
import json
import os
import sys

import numpy as np

from ..utils.outputs import save_figure
from ..utils.plots import _pyplot

__all__ = ['plot_ranking', 'plot_curves', 'redraw', 'FIGURES']

FIGURES = ('ranking.png', 'curves.png')
BETTER, WORSE, BASE, STUCK = '#2a7ab0', '#e07b39', '#333333', '#b0b0b0'


def _chance(results, config):
    return 1 / ((config or {}).get('num_classes') or 10)


def _stuck(r, chance):
    """Finished at chance level (or diverged on every seed): nothing learned."""
    return r['test_acc_mean'] is None or r['test_acc_mean'] < 1.5 * chance


def _seed_note(config):
    seeds = (config or {}).get('seeds') or []
    return (f'{len(seeds)} seeds: bar = mean, whisker = min..max, dots = seeds'
            if len(seeds) > 1 else '1 seed: no spread (run with --seeds 3 for one)')


def _title(config, what):
    if not config:
        return what
    return (f'{what}: LeNet on {config["dataset"]}, {config["epochs"]} epochs, batch '
            f'{config["batch_size"]}, lr {config["lr"]:g} unless named\n'
            f'{_seed_note(config)}; {config["date"]}, {config["machine"]}')


def plot_ranking(results, path, config=None):
    """Horizontal bars of final test accuracy, best on top (see the module's docstring);
    returns the variants' names in that order."""
    plt = _pyplot()
    chance = _chance(results, config)
    base = next((r['test_acc_mean'] for r in results if r['name'] == 'baseline'), None)
    ranked = sorted(results, reverse=True,
                    key=lambda r: -1 if r['test_acc_mean'] is None else r['test_acc_mean'])
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(ranked) + 2.2))
    for y, r in enumerate(ranked):
        accs, mean = r['test_acc'], r['test_acc_mean'] or 0.0
        if r['name'] == 'baseline':
            color = BASE
        elif _stuck(r, chance):
            color = STUCK
        else:
            color = BETTER if base is None or mean >= base else WORSE
        ax.barh(y, mean, color=color, height=0.65)
        if len(accs) > 1:
            ax.errorbar(mean, y, xerr=[[mean - min(accs)], [max(accs) - mean]], color='black',
                        capsize=4, lw=1.2)
            ax.plot(accs, [y] * len(accs), 'o', color='black', ms=3.5, alpha=0.7)
        label = ('diverged' if r['test_acc_mean'] is None else
                 f'{mean:.3f}' + (f' ± {r["test_acc_std"]:.3f}' if r['test_acc_std'] else '')
                 + (' (chance level)' if _stuck(r, chance) else ''))
        ax.text(max(accs, default=mean) + 0.01, y, label, va='center', fontsize=10)
    ax.set_yticks(range(len(ranked)), [r['name'] for r in ranked], fontsize=11)
    ax.invert_yaxis()
    ax.axvline(chance, color='grey', ls=':', lw=1)
    ax.text(chance, -0.55, f' chance {chance:.2f}', color='grey', fontsize=9)
    if base is not None:
        ax.axvline(base, color=BASE, ls='--', lw=1)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel('test accuracy after the last epoch', fontsize=11)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (BASE, BETTER, WORSE, STUCK)]
    ax.legend(handles, ['baseline (dashed line)', 'at or above the baseline',
                        'below the baseline', 'chance level or diverged'],
              fontsize=10, loc='lower right', framealpha=0.95)
    ax.set_title(_title(config, 'Ablation ranking'), fontsize=11, loc='left')
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return [r['name'] for r in ranked]


def _mean_curve(r):
    curves = [[e['test_acc'] for e in run['history']] for run in r['runs']]
    n = max(map(len, curves), default=0)
    # mean over the seeds that reached each epoch, and the min..max band
    per_epoch = [[c[k] for c in curves if len(c) > k] for k in range(n)]
    return np.arange(1, n + 1), per_epoch


def plot_curves(results, path, config=None):
    """Test accuracy per epoch, mean over seeds with a min..max band per variant;
    returns the legend's entries."""
    plt = _pyplot()
    chance = _chance(results, config)
    fig, ax = plt.subplots(figsize=(11, 6))
    palette = plt.get_cmap('tab20').colors  # 10 strong, then 10 light; no greys (chance)
    colors = [c for i, c in enumerate(palette[::2] + palette[1::2]) if i not in (7, 17)]
    stuck = [r['name'] for r in results if _stuck(r, chance)]
    others = 0
    for r in results:
        x, per_epoch = _mean_curve(r)
        if not len(x):
            continue
        if r['name'] == 'baseline':
            style = dict(color='black', lw=3, marker='o', zorder=3, label='baseline')
        elif r['name'] in stuck:  # flat on top of each other: one entry names them all
            style = dict(color=STUCK, lw=2, ls='--', marker='x',
                         label=f'{", ".join(stuck)} (chance level)' if r['name'] == stuck[0]
                         else None)
        else:
            style = dict(color=colors[others % len(colors)], lw=1.8,
                         marker='osv^DPX*<>h'[others % 11], label=r['name'])
            others += 1
        ax.plot(x, [np.mean(v) for v in per_epoch], ms=5, **style)
        if len(r['runs']) > 1:
            ax.fill_between(x, [min(v) for v in per_epoch], [max(v) for v in per_epoch],
                            color=style['color'], alpha=0.12)
    ax.set_xlabel('epoch', fontsize=11)
    ax.set_ylabel('test accuracy', fontsize=11)
    ax.set_ylim(0, 1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=10, loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(_title(config, 'Test accuracy per epoch').replace(
        'bar = mean, whisker = min..max, dots = seeds', 'line = mean, band = min..max'),
        fontsize=11, loc='left')
    fig.tight_layout()
    save_figure(fig, path, dpi=110, bbox_inches='tight')
    plt.close(fig)
    return [t.get_text() for t in legend.get_texts()]


def redraw(folder):
    """Draw :data:`FIGURES` into ``folder`` from its ``results.json``."""
    with open(os.path.join(folder, 'results.json')) as f:
        saved = json.load(f)
    plot_ranking(saved['results'], os.path.join(folder, 'ranking.png'), saved['config'])
    plot_curves(saved['results'], os.path.join(folder, 'curves.png'), saved['config'])


if __name__ == '__main__':
    for folder in sys.argv[1:] or ['docs/ablation']:
        redraw(folder)
        print(f'wrote {", ".join(os.path.join(folder, f) for f in FIGURES)}')
