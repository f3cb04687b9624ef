"""The LeNet chapter's exercises, trained side by side with one budget.

Each ablation is the d2l LeNet with some model options changed (activation,
pooling, kernel size, channels, depth, dense widths), never a copy of the
model. All are trained with the same epochs, batch size, learning rate and
seeds, and tabulated with their parameter counts and speed.
"""
import datetime
import json
import math
import os
import platform

import mxnet as mx
import numpy as np

from ..data import load_data
from ..model_zoo import LENET_VARIANTS, count_parameters, model_for_data, recipe
from ..training import TrainingDiverged, fit
from ..utils.outputs import check_output_dir, write_text

__all__ = ['ABLATIONS', 'ABLATION_LR', 'ablate', 'lenet_options', 'results_table']

# name -> (what changed relative to the d2l LeNet, lenet() keyword arguments).
# The first conv keeps the map size ('same' padding: kernel_size // 2), so
# kernels 3 and 7 still fit 28x28 inputs; extra conv layers are padded too.
# (The CLI's ``ablate --variants`` takes these names.)
ABLATIONS = {
    'baseline': ('d2l LeNet: sigmoid, avg pool, 5x5, channels 6-16, dense 120-84', {}),
    'max-pool': ('max instead of average pooling', dict(pool='max')),
    'relu': ('ReLU instead of sigmoid', dict(activation='relu')),
    'relu+max': ('ReLU and max pooling', dict(activation='relu', pool='max')),
    'relu-lr0.1': ('ReLU, at lr 0.1', dict(activation='relu')),
    'relu+max-lr0.1': ('ReLU and max pooling, at lr 0.1', dict(activation='relu', pool='max')),
    'kernel-3': ('3x3 kernels (first conv padded 1)', dict(kernel_size=3)),
    'kernel-7': ('7x7 kernels (first conv padded 3)', dict(kernel_size=7)),
    'wide-channels': ('channels 16-32 instead of 6-16', dict(channels=(16, 32))),
    'extra-conv': ('a third conv layer (16 channels, padded, no pooling)',
                   dict(channels=(6, 16, 16))),
    'dense-wide': ('dense 240-168 instead of 120-84', dict(dense_units=(240, 168))),
    'dense-narrow': ('dense 60-42 instead of 120-84', dict(dense_units=(60, 42))),
}

# Learning rates that differ from the shared one. At the chapter's lr 0.9 the
# ReLU nets do not produce NaNs, they collapse to chance level in the first
# epoch; 'relu' and 'relu+max' show that, these two show ReLU at a rate it
# trains with.
ABLATION_LR = {'relu-lr0.1': 0.1, 'relu+max-lr0.1': 0.1}

# The names these tables had before; model variants are ``model_zoo.VARIANTS``.
VARIANTS, VARIANT_LR = ABLATIONS, ABLATION_LR

# the last two: ablation_plots.FIGURES (imported on use: `python -m` runs that module)
RESULT_FILES = ('results.md', 'results.json', 'ranking.png', 'curves.png')

_RESERVED = ('model_kwargs', 'seed', 'checkpoint', 'resume', 'callbacks')


def lenet_options(name):
    """``(lenet variant, model kwargs)`` for an ablation or a LeNet variant name.

    ``'relu'`` gives ``('d2l', {'activation': 'relu'})``; ``'gluon'`` gives
    ``('gluon', {})``.
    """
    if name in ABLATIONS:
        return 'd2l', dict(ABLATIONS[name][1])
    if name in LENET_VARIANTS:
        return name, {}
    raise ValueError(f'unknown variant {name!r}: choose one of '
                     f'{", ".join(list(ABLATIONS) + sorted(LENET_VARIANTS))}')


def _check_names(variants):
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown or not variants:
        names = ", ".join(map(repr, unknown)) or "(none given)"
        raise ValueError(f'unknown ablation variant(s) {names}: choose from {", ".join(ABLATIONS)}')


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN
    return obj


def _summarize(name, lr, parameters, runs):
    finished = [r for r in runs if r['diverged'] is None]
    accs = [r['history'][-1]['test_acc'] for r in finished]
    epochs = [e for r in runs for e in r['history']]
    return {
        'name': name, 'description': ABLATIONS[name][0], 'model_kwargs': ABLATIONS[name][1],
        'lr': lr, 'parameters': parameters, 'seeds': [r['seed'] for r in runs],
        'test_acc': accs,
        'test_acc_mean': float(np.mean(accs)) if accs else None,
        # sample standard deviation over seeds; None with fewer than two
        'test_acc_std': float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
        'diverged': len(runs) - len(finished),
        'seconds_per_epoch': float(np.mean([e['seconds'] for e in epochs])) if epochs else None,
        'examples_per_sec': float(np.mean([e['examples_per_sec'] for e in epochs]))
        if epochs else None,
        'runs': runs,
    }


def _accuracy_cell(r, num_classes=None):
    if r['test_acc_mean'] is None:
        epochs = sorted({run['diverged']['epoch'] for run in r['runs']})
        return f'diverged (NaN loss, epoch {", ".join(map(str, epochs))})'
    cell = f'{r["test_acc_mean"]:.3f}'
    if r['test_acc_std'] is not None:
        cell += f' ± {r["test_acc_std"]:.3f}'
    if r['diverged']:
        cell += f' ({r["diverged"]} of {len(r["runs"])} seeds diverged)'
    if num_classes and r['test_acc_mean'] < 1.5 / num_classes:
        cell += ' (chance level)'
    return cell


def results_table(results, config=None):
    """The markdown table of :func:`ablate`'s results, with a header line."""
    base = next((r['test_acc_mean'] for r in results if r['name'] == 'baseline'), None)
    lines = []
    if config:
        seeds, epochs = config['seeds'], config['epochs']
        lines += [f'LeNet ablation on {config["dataset"]}: {epochs} epoch{"s" * (epochs > 1)}, '
                  f'batch {config["batch_size"]}, lr {config["lr"]:g} unless stated, '
                  f'{config["train_examples"]:,} training / {config["test_examples"]:,} test '
                  f'examples, seed{"s" * (len(seeds) > 1)} {", ".join(map(str, seeds))}. '
                  f'{config["date"]}, {config["machine"]}.', '',
                  'Test accuracy after the last epoch'
                  + (', mean ± sample std over seeds' if len(seeds) > 1 else '')
                  + '; seconds per epoch include evaluation and depend on machine load.', '']
    lines += ['| variant | what changed | parameters | test acc | vs baseline | s/epoch |',
              '|---|---|---:|---:|---:|---:|']
    for r in results:
        delta = (f'{r["test_acc_mean"] - base:+.3f}'
                 if base is not None and r['test_acc_mean'] is not None else '')
        secs = f'{r["seconds_per_epoch"]:.1f}' if r['seconds_per_epoch'] is not None else ''
        lines.append(f'| {r["name"]} | {r["description"]} | {r["parameters"]:,} | '
                     f'{_accuracy_cell(r, (config or {}).get("num_classes"))} | {delta} | {secs} |')
    return '\n'.join(lines) + '\n'


def _write(out, results, config):
    from .ablation_plots import plot_curves, plot_ranking
    write_text(os.path.join(out, 'results.md'), results_table(results, config))
    write_text(os.path.join(out, 'results.json'),
               json.dumps(_jsonable({'config': config, 'results': results}), indent=1) + '\n')
    plot_ranking(results, os.path.join(out, 'ranking.png'), config)
    plot_curves(results, os.path.join(out, 'curves.png'), config)


def _machine():
    return (f'{platform.machine()} {os.cpu_count()}-core CPU, {platform.system()}, '
            f'MXNet {mx.__version__}')


def ablate(variants=None, epochs=None, seeds=1, out=None, *, model='lenet', log=print,
           **fit_kwargs):
    """Train the d2l LeNet and its exercise variants with one budget and compare them.

    Parameters
    ----------
    variants : sequence of str, optional
        Names from :data:`ABLATIONS`; all of them when None.
    epochs : int, optional
        Epochs per run; the LeNet recipe's 10 when None.
    seeds : int or sequence of int, default 1
        ``K`` runs every variant with seeds ``0 .. K-1``; a sequence gives them.
    out : str, optional
        Folder for ``results.md``, ``results.json``, ``ranking.png`` and ``curves.png``,
        rewritten after every variant so an interrupted run keeps what finished.
    model : {'lenet'}
        The only model with exercise variants.
    log : callable, default print
        Gets the trainer's lines, prefixed with variant and seed.
    **fit_kwargs
        Passed to :func:`~gluon_classics.training.fit` (``dataset``,
        ``data_dir``, ``lr``, ``batch_size``, ``ctx``, ``num_examples``...).
        ``lr`` is shared by all variants except those in :data:`ABLATION_LR`.

    Returns
    -------
    list of dict
        One per variant, in order: ``name``, ``description``, ``model_kwargs``,
        ``lr``, ``parameters``, ``seeds``, ``test_acc`` (final, per finished
        seed), ``test_acc_mean``, ``test_acc_std``, ``diverged`` (number of
        seeds whose loss became NaN), ``seconds_per_epoch``,
        ``examples_per_sec`` and ``runs`` (per seed: ``seed``, ``history``,
        ``diverged``: None or ``{'epoch', 'message'}``).
    """
    if model != 'lenet':
        raise ValueError(f'ablate has variants for lenet only, not {model!r}')
    variants = list(ABLATIONS) if variants is None else list(variants)
    _check_names(variants)
    clash = sorted(set(fit_kwargs) & set(_RESERVED))
    if clash:
        raise ValueError(f'ablate sets {", ".join(clash)} itself')
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seeds:
        raise ValueError('ablate needs at least one seed')
    if out:  # before hours of training, not after the first variant
        check_output_dir(out, RESULT_FILES)
    chapter = recipe(model)
    epochs = chapter['epochs'] if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f'epochs must be at least 1; got {epochs}')
    # None means the recipe's value, as in fit (the CLI passes unset options as None)
    fit_kwargs = {k: v for k, v in fit_kwargs.items() if v is not None}
    lr = fit_kwargs.pop('lr', chapter['lr'])
    fit_kwargs.setdefault('batch_size', chapter['batch_size'])
    fit_kwargs.setdefault('progress', False)
    train, test = _data(fit_kwargs)  # also fails early on a bad dataset or folder
    config = {'model': model, 'dataset': fit_kwargs.get('dataset', 'fashion-mnist'),
              'epochs': epochs, 'lr': lr, 'batch_size': fit_kwargs['batch_size'],
              'seeds': seeds, 'num_classes': train.num_classes,
              'train_examples': fit_kwargs.get('num_examples') or train.num_examples,
              'test_examples': test.num_examples,
              'date': datetime.date.today().isoformat(), 'machine': _machine()}
    results = []
    for name in variants:
        model_kwargs = ABLATIONS[name][1]
        parameters = count_parameters(model_for_data(model, train, variant='d2l',
                                                     **model_kwargs))
        variant_lr = ABLATION_LR.get(name, lr)
        runs = []
        for seed in seeds:
            history = []

            def keep(record, trainer, history=history):  # survives a TrainingDiverged
                history.append(record)

            def prefixed(*args, name=name, seed=seed):
                log(f'[{name} seed {seed}]', *args)
            diverged = None
            try:
                fit(model, 'd2l', epochs=epochs, lr=variant_lr, seed=seed,
                    model_kwargs=model_kwargs, callbacks=[keep], log=prefixed, **fit_kwargs)
            except TrainingDiverged as err:
                diverged = {'epoch': len(history) + 1, 'message': str(err)}
                prefixed(f'diverged: {err}')
            runs.append({'seed': seed, 'history': history, 'diverged': diverged})
        results.append(_summarize(name, variant_lr, parameters, runs))
        if out:
            _write(out, results, config)
    return results


def _data(fit_kwargs):
    return load_data(fit_kwargs.get('dataset', 'fashion-mnist'), 1024,
                     resize=fit_kwargs.get('resize'), root=fit_kwargs.get('data_dir'),
                     ctx=mx.cpu())
