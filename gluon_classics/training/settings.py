"""A run's settings, resolved once: given, else the checkpoint's, else the recipe's.

The one place that reconciles a resume. :func:`resolve_run` completes what
``fit`` was given from the checkpoint it resumes (refusing a contradiction,
applying and announcing a new epoch count, rate or data folder) and from the
model's recipe, and checks every value before anything is built.
:func:`trained_settings` does the same for a net to evaluate, whose ``params``
may be the run's checkpoint.
"""
import os

from ..errors import SettingError
from ..model_zoo import recipe
from .checkpoint import describe_run, is_checkpoint, load_checkpoint
from .recipes import OPTIMIZERS, RECIPES, SCHEDULES, check_lr, default_resize

__all__ = ['RUN_KEYS', 'OUTPUTS', 'resolve_run', 'trained_settings']

# What a checkpoint's config records. A given value that differs from the record is
# refused, except those in _APPLIED, which are applied and announced.
RUN_KEYS = ('model', 'variant', 'model_kwargs', 'dataset', 'resize', 'batch_size',
            'num_examples', 'seed', 'optimizer', 'schedule', 'dtype', 'epochs', 'lr', 'data_dir')
_APPLIED = {'epochs': 'training to {new} epochs (the run was started for {old})',
            'lr': 'learning rate {new} (the checkpoint had {old})',
            'data_dir': 'reading the data from {new} (the run read {old})'}

# The files a run writes besides its checkpoint, as the checkpoint records them.
OUTPUTS = {'save': 'the parameters', 'metrics': 'the metrics', 'plot': 'the plot'}


def resolve_run(given, resume=None, meta=None, log=print):
    """The run's settings (a dict of :data:`RUN_KEYS` and ``outputs``), checked.

    ``given``: the caller's values, None where not given (``outputs`` a dict
    of :data:`OUTPUTS` paths); ``meta``: the checkpoint ``resume`` names, read.
    """
    recorded = dict((meta or {}).get('config') or {})
    if meta is not None:
        recorded.setdefault('seed', meta.get('seed'))
    run = {key: _reconciled(key, given[key], recorded, resume, log) for key in RUN_KEYS}
    run['outputs'] = _outputs(given.get('outputs') or {}, recorded.get('outputs') or {}, log)
    _complete(run, resize_given=given['resize'] is not None or 'resize' in recorded)
    _check(run)
    return run


def _reconciled(key, value, recorded, resume, log):
    """One setting: the given value, else the record's; a contradiction is refused."""
    old = recorded.get(key)
    if key == 'model_kwargs' and value is not None and key in recorded:
        clash = {k: v for k, v in value.items() if (old or {}).get(k) != v}
        value = {**(old or {}), **clash}  # equal to the record unless an option differs
    if value is None:
        return old
    if key == 'resize':
        value = value or None  # 0: no resize
    if key not in recorded or value == old:
        return value
    if key in _APPLIED:
        log(_APPLIED[key].format(new=value, old=old))
        return value
    shown = ' '.join(f'[[{k}={v}]]' for k, v in value.items()) if key == 'model_kwargs' \
        else f'[[{key}={value}]]'
    # the model is a required argument of the command line: name the one to give
    fix = f'use [[model={old}]]' if key == 'model' else 'leave it out'
    raise SettingError(f'{shown} contradicts checkpoint {resume}, which records {old!r}: '
                       f'{fix} to finish that run, or start a new run without [[resume]]')


def _outputs(given, recorded, log):
    """The run's output paths: a bare resume writes what the run was asked to write."""
    outputs = {key: os.path.abspath(path) for key, path in given.items() if path}
    for key, what in OUTPUTS.items():
        if key not in outputs and recorded.get(key):
            outputs[key] = recorded[key]
            log(f'{what} to {recorded[key]}, as the run was started')
    return outputs


def _complete(run, resize_given):
    """Fill what is still unset from the model's recipe."""
    model = run['model'] = run['model'] or 'lenet'
    if model not in RECIPES:
        raise SettingError(f'unknown model {model!r}: choose one of {", ".join(sorted(RECIPES))}')
    run['variant'] = run['variant'] or 'd2l'
    chapter = recipe(model, run['variant'])
    run['model_kwargs'] = dict(run['model_kwargs'] or {})
    run['dataset'] = run['dataset'] or 'fashion-mnist'
    run['optimizer'] = run['optimizer'] or chapter.get('optimizer', 'sgd')
    if run['schedule'] is None:  # the recipe's with its optimizer, else the optimizer's own
        same = run['optimizer'] == chapter.get('optimizer', 'sgd')
        run['schedule'] = (same and chapter.get('schedule')) or \
            OPTIMIZERS.get(run['optimizer'], (None, None, 'none'))[2]
    for key in ('epochs', 'lr', 'batch_size'):
        run[key] = chapter[key] if run[key] is None else run[key]
    run['dtype'] = run['dtype'] or 'float32'
    if not resize_given:
        run['resize'] = default_resize(model, run['variant'])


def _check(run):
    if run['epochs'] < 1 or run['batch_size'] < 1:
        raise SettingError(f'[[epochs]] and [[batch_size]] must be at least 1; got '
                           f'{run["epochs"]} and {run["batch_size"]}')
    if run['num_examples'] is not None and run['num_examples'] < 1:
        raise SettingError(f'[[num_examples]] must be at least 1 (leave it out to train on the '
                           f'whole set); got {run["num_examples"]}')
    if isinstance(run['resize'], int) and run['resize'] < 1:
        raise SettingError(f'[[resize]] must be a positive size, or 0 for the images\' own; '
                           f'got {run["resize"]}')
    seed = run['seed']
    if seed is not None and not (isinstance(seed, int) and seed >= 0):
        raise SettingError(f'[[seed]] must be a non-negative integer; got {seed!r}')
    for key, names in (('optimizer', OPTIMIZERS), ('schedule', SCHEDULES)):
        if run[key] not in names:
            raise SettingError(f'unknown {key} {run[key]!r}: choose one of {", ".join(names)}')
    check_lr(run['lr'])


def trained_settings(params, given):
    """What rebuilds a trained net: ``given`` (model, variant, activation, pool, resize,
    dataset, data_dir; None where not given), completed from ``params`` where it is
    the run's checkpoint, which records them; a contradiction is refused."""
    settings = dict(given)
    config = (load_checkpoint(params).get('config') or {}) if is_checkpoint(params) else {}
    if config:
        recorded = dict(model=config['model'], variant=config['variant'],
                        activation=config['model_kwargs'].get('activation'),
                        pool=config['model_kwargs'].get('pool'),
                        resize=config['resize'] or 0, dataset=config['dataset'])
        for key, value in recorded.items():
            mine = settings.get(key)
            if mine is not None and mine != value and not (key == 'resize' and mine == 0 == value):
                fix = f'use [[model={value}]]' if key == 'model' else 'leave it out'
                raise SettingError(f'[[{key}={mine}]] contradicts the checkpoint {params}, '
                                   f'which holds {describe_run(config)}: {fix}')
            settings[key] = value
        if settings.get('data_dir') is None and config.get('data_dir') \
                and os.path.isdir(config['data_dir']):
            settings['data_dir'] = config['data_dir']
    settings['variant'] = settings.get('variant') or 'd2l'
    settings['dataset'] = settings.get('dataset') or 'fashion-mnist'
    if settings.get('resize') is None:
        settings['resize'] = default_resize(settings['model'], settings['variant'])
    settings['resize'] = settings['resize'] or None
    return settings
