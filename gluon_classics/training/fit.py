"""``fit``: the chapters' whole recipe (data, model, init, trainer, loop) in one call.

This is what ``gluon-classics train`` and ``ablate`` run; it is nothing but
the chapter's cells put together, with the chapter's defaults per model from
the model registry. The notebooks write those cells out and call
``train_ch5`` themselves.
"""
import math
import os
import random
import warnings

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from ..data import load_data
from ..model_zoo import MODELS, get_model, recipe
from ..utils.devices import loader_ctx, resolve_ctx
from ..utils.outputs import check_output
from .checkpoint import load_checkpoint
from ..distributed import (checkpoint_path, connect, default_kvstore, is_distributed,
                          shard_for_worker, worker_batch_size)
from ..accel import check_dtype, resolve_mode
from .trainer import train_ch5

__all__ = ['fit', 'RECIPES', 'OPTIMIZERS', 'SCHEDULES', 'ReduceLROnPlateau', 'CosineSchedule',
           'make_trainer', 'seed_everything', 'check_lr', 'build_model', 'default_resize']

# The default variant's recipe per model (a view of the model registry).
RECIPES = {name: recipe(name) for name in MODELS}

# name -> (what it is, gluon 'sgd' arguments besides the learning rate, its schedule
# unless the recipe or the caller names one).
OPTIMIZERS = {
    'sgd': ("the chapters' plain SGD", {}, 'none'),
    'momentum': ('momentum 0.9, weight decay 5e-4', dict(momentum=0.9, wd=5e-4), 'plateau'),
}

# The learning rate by epoch: name -> what it is.
SCHEDULES = {
    'none': 'constant',
    'plateau': 'lr / 10 when test accuracy stops improving',
    'cosine': 'cosine decay from lr towards 0 over the epochs',
}


class ReduceLROnPlateau:
    """Divide the learning rate by ``1 / factor`` when test accuracy stops improving.

    The schedule of the "momentum" recipe (momentum 0.9, weight decay 5e-4,
    lr / 10 on plateau). Use as a ``train_ch5`` callback.
    """

    def __init__(self, factor=0.1, patience=1, min_lr=1e-6):
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.best, self.wait = -1.0, 0

    def observe(self, record):
        """Update the state from one epoch; True when the rate should drop."""
        if record['test_acc'] > self.best:
            self.best, self.wait = record['test_acc'], 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return True
        return False

    def __call__(self, record, trainer):
        if self.observe(record):
            trainer.set_learning_rate(max(trainer.learning_rate * self.factor, self.min_lr))


class CosineSchedule:
    """Cosine decay of the learning rate, epoch by epoch, from ``base_lr`` towards 0.

    Epoch ``e`` (1-based) of ``epochs`` trains at ``base_lr * (1 + cos(pi * (e - 1) /
    epochs)) / 2``. Use as a ``train_ch5`` callback; it depends on the epoch only, so a
    resumed run continues the same schedule.
    """

    def __init__(self, base_lr, epochs):
        self.base_lr, self.epochs = base_lr, epochs

    def __call__(self, record, trainer):
        done = min(record['epoch'], self.epochs)
        trainer.set_learning_rate(self.base_lr * (1 + math.cos(math.pi * done / self.epochs)) / 2)


def seed_everything(seed):
    """Seed MXNet's, numpy's and Python's generators."""
    mx.random.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def make_trainer(net, lr, optimizer='sgd', kvstore=None):
    """``gluon.Trainer`` for the chapters' plain SGD or the momentum recipe.

    ``kvstore`` None picks 'local' for CPU contexts, 'device' for GPU ones
    (:func:`~gluon_classics.distributed.default_kvstore`); a
    ``'dist_*'`` name joins the parameter server; a
    :class:`~gluon_classics.distributed.ParallelContext` trains
    with the KVStore it holds.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {optimizer!r}: choose one of {", ".join(OPTIMIZERS)}')
    check_lr(lr)
    params = dict(OPTIMIZERS[optimizer][1], learning_rate=lr)
    if kvstore is None:
        kvstore = default_kvstore(next(iter(net.collect_params().values())).list_ctx())
    kvstore, update_on_kvstore = connect(kvstore).kvstore, None
    if is_distributed(kvstore) and 'async' not in kvstore.type:
        # Workers pull the gradients summed over all of them and update
        # locally; rescaled by the workers' count they are the mean over the
        # job's batch, whatever size the last batch has.
        params['rescale_grad'] = 1.0 / kvstore.num_workers
        update_on_kvstore = False
    return gluon.Trainer(net.collect_params(), 'sgd', params, kvstore=kvstore,
                         update_on_kvstore=update_on_kvstore)


def check_lr(lr):
    """Raise a one-line ValueError unless ``lr`` is a usable learning rate."""
    # MXNet keeps the rate as float32: 1e39 is inf there and fails deep in the optimizer
    if not (isinstance(lr, (int, float)) and 0 < lr <= _FLOAT32_MAX):
        raise ValueError(f'learning rate must be a positive number up to 3.4e38 (float32); '
                         f'got {lr}: pass e.g. --lr 0.1')


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def build_model(model, variant='d2l', **kwargs):
    """``get_model`` with one line for an option the model does not take."""
    try:
        return get_model(model, variant=variant, **kwargs)
    except TypeError as err:  # e.g. AlexNet(activation=...): it has no such option
        options = ', '.join(f'{k}={v!r}' for k, v in kwargs.items()
                            if k not in ('num_classes', 'in_channels'))
        raise ValueError(f'{model} does not take {options or "these options"} ({err}); '
                         f'--activation and --pool are LeNet options') from None


def default_resize(model, variant='d2l'):
    """The resize a model trains with by default: the recipe's (224 for AlexNet), else the
    variant's own input size where it is not (Fashion-)MNIST's 28 (32 for LeNet-5)."""
    chapter = recipe(model, variant)
    if chapter['resize']:
        return chapter['resize']
    side = build_model(model, variant).input_shape[-1]
    return None if side == 28 else side


# What a checkpoint's config records, in the words of the CLI's options. An
# explicit option that differs from the record is refused, except those in
# _APPLIED, which are applied and announced: epochs, the rate, the data's place.
_RUN_KEYS = {'model': 'MODEL', 'variant': '--variant', 'model_kwargs': '--activation/--pool',
             'dataset': '--dataset', 'resize': '--resize', 'batch_size': '--batch-size',
             'num_examples': '--num-examples', 'seed': '--seed', 'optimizer': '--optimizer',
             'schedule': '--schedule', 'dtype': '--dtype',
             'epochs': '--epochs', 'lr': '--lr', 'data_dir': '--data-dir'}
_APPLIED = {'epochs': 'training to {new} epochs (the run was started for {old})',
            'lr': 'learning rate {new} from --lr (the checkpoint had {old})',
            'data_dir': 'reading the data from {new} (the run read {old})'}


def _resolve_run(given, resume, meta, log):
    """The run's settings: the given ones, completed from the checkpoint or the recipe."""
    recorded = dict((meta or {}).get('config') or {})
    if meta is not None:
        recorded.setdefault('seed', meta.get('seed'))
    run = {}
    for key, flag in _RUN_KEYS.items():
        value, old = given[key], recorded.get(key)
        if key == 'model_kwargs' and value is not None and key in recorded:
            clash = {k: v for k, v in value.items() if (old or {}).get(k) != v}
            value = {**(old or {}), **clash}  # equal to the record unless an option differs
        if value is None:
            run[key] = old
            continue
        if key == 'resize':
            value = value or None  # 0: no resize
        if key not in recorded or value == old:
            run[key] = value
        elif key in _APPLIED:
            run[key] = value
            log(_APPLIED[key].format(new=value, old=old))
        else:
            shown = ' '.join(f'--{k} {v}' for k, v in value.items()) if key == 'model_kwargs' \
                else value
            raise ValueError(f'{flag} {shown} contradicts checkpoint {resume}, which records '
                             f'{old!r}: leave it out to finish that run, or start a new run '
                             f'without --resume')
    model = run['model'] = run['model'] or 'lenet'
    if model not in RECIPES:
        raise ValueError(f'unknown model {model!r}: choose one of {", ".join(sorted(RECIPES))}')
    chapter = recipe(model, run['variant'] or 'd2l')
    run['variant'] = run['variant'] or 'd2l'
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
    if given['resize'] is None and 'resize' not in recorded:
        run['resize'] = default_resize(model, run['variant'])
    return run


def fit(model=None, variant=None, *, dataset=None, epochs=None, lr=None, batch_size=None,
        resize=None, data_dir=None, ctx=None, seed=None, optimizer=None, schedule=None,
        num_examples=None, checkpoint=None, resume=None, hybridize=True, progress=None,
        kvstore=None, callbacks=(), model_kwargs=None, outputs=None, dtype=None, accel=None,
        log=print):
    """Train a model the way its chapter does, with the chapter's defaults.

    Parameters
    ----------
    model : str, default 'lenet'
        A name of :data:`~gluon_classics.model_zoo.MODELS` (``'lenet'``, ``'alexnet'``).
    variant : str, default 'd2l'
        See :func:`~gluon_classics.lenet` and :func:`~gluon_classics.alexnet`.
    dataset : str, default 'fashion-mnist'
        Any name :func:`gluon_classics.load_data` takes.
    epochs, lr, batch_size : optional
        Default to the variant's recipe (:func:`~gluon_classics.model_zoo.recipe`).
    resize : int, optional
        The recipe's (224 for AlexNet), else the variant's own input size when
        it is not 28 (32 for LeNet-5); 0 for none.
    data_dir : str, optional
        Folder holding the data set's files.
    ctx : Context or list of Context, optional
        Default ``[try_gpu()]``; resolved here, once, into a list.
    seed : int, optional
        Seeds initialization, shuffling and dropout: a fixed seed gives the
        same run again (on CPU), also across ``resume``.
    optimizer : str, optional
        A name of ``OPTIMIZERS``: 'sgd' is the chapters'; 'momentum' adds
        momentum 0.9 and weight decay 5e-4. Default: the recipe's, else 'sgd'.
    schedule : str, optional
        A name of ``SCHEDULES``: 'none', 'plateau' (lr / 10 when test accuracy
        stops improving) or 'cosine' (decay over ``epochs``). Default: the
        recipe's with the recipe's optimizer, else the optimizer's own
        ('plateau' for 'momentum').
    num_examples : int, optional
        Train on a seeded subset of this many examples (quick runs).
    kvstore : str or ParallelContext, optional
        'local' (CPUs) or 'device' (GPUs) by default. 'dist_sync',
        'dist_device_sync' or 'dist_async' in processes started by
        ``gluon-classics launch``: each worker trains on its shard with its
        share of ``batch_size``; only rank 0 logs and writes the checkpoint.
        A process joins a job once: pass the context
        :func:`~gluon_classics.distributed.connect` returned to
        train in it again.
    checkpoint : str, optional
        Checkpoint path written after every epoch (checked before training).
    resume : str, optional
        Checkpoint to continue from. Settings left as None are the
        checkpoint's, so ``fit(resume=C, checkpoint=C)`` finishes the run as it
        was started. ``epochs``, ``lr`` and ``data_dir`` that differ are
        applied and logged; any other setting that differs raises ValueError.
    model_kwargs : dict, optional
        Extra arguments of the model factory (``activation='relu'``...).
    outputs : dict, optional
        Output paths recorded in the checkpoint (the CLI's ``--save``,
        ``--metrics``, ``--plot``), so that a resumed run writes them too.
    dtype : {'float32', 'bfloat16'}, optional
        The training graph's compute type (``train_ch5``'s ``dtype``); default
        'float32'. 'bfloat16' is an opt-in for avx512_bf16 CPUs.
    accel : {'on', 'graph', 'off'}, optional
        The fast path (``train_ch5``'s ``accel``); default ``$GLUON_CLASSICS_ACCEL``,
        else 'on'. Not part of the run: a resumed run may change it.

    Returns
    -------
    net : HybridBlock
    history : list of dict

    Warns
    -----
    RuntimeWarning
        Training ended at chance-level test accuracy.
    """
    meta = load_checkpoint(resume) if resume else None  # the settings, before anything is built
    given = dict(model=model, variant=variant, dataset=dataset, epochs=epochs, lr=lr,
                 batch_size=batch_size, resize=resize, seed=seed, optimizer=optimizer,
                 schedule=schedule, dtype=dtype,
                 num_examples=num_examples, model_kwargs=model_kwargs,
                 data_dir=os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None)
    run = _resolve_run(given, resume, meta, log)
    model, variant, epochs, lr, batch_size, seed = (run[k] for k in (
        'model', 'variant', 'epochs', 'lr', 'batch_size', 'seed'))
    if epochs < 1 or batch_size < 1:
        raise ValueError(f'epochs and batch size must be at least 1; got {epochs} and {batch_size}')
    if seed is not None and not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f'seed must be a non-negative integer; got {seed!r}')
    if run['optimizer'] not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {run["optimizer"]!r}: choose one of '
                         f'{", ".join(OPTIMIZERS)}')
    if run['schedule'] not in SCHEDULES:
        raise ValueError(f'unknown schedule {run["schedule"]!r}: choose one of '
                         f'{", ".join(SCHEDULES)}')
    check_lr(lr)
    probe = build_model(model, variant, **run['model_kwargs'])  # bad options fail before the data
    ctxs = resolve_ctx(ctx)
    accel = resolve_mode(accel)
    check_dtype(probe, ctxs, run['dtype'], hybridize)
    parallel = connect(kvstore, ctxs)
    checkpoint = checkpoint_path(parallel, checkpoint, resume, log)
    if checkpoint:
        check_output(checkpoint, 'checkpoint')
    if seed is not None:
        seed_everything(seed)

    train_iter, test_iter = load_data(run['dataset'], worker_batch_size(batch_size, parallel),
                                      resize=run['resize'], root=run['data_dir'],
                                      ctx=loader_ctx(ctxs), shuffle_seed=seed)
    if run['num_examples']:
        train_iter = train_iter.subset(run['num_examples'], seed=seed or 0)
    train_iter = shard_for_worker(train_iter, parallel, seed=seed or 0, log=log)
    net = build_model(model, variant, **dict(run['model_kwargs'],
                                             num_classes=train_iter.num_classes,
                                             in_channels=train_iter.image_shape[0]))
    net.initialize(init.Xavier(), ctx=ctxs)
    trainer = make_trainer(net, lr, run['optimizer'], parallel)
    callbacks = list(callbacks)
    if run['schedule'] == 'plateau':
        callbacks.append(ReduceLROnPlateau())
    elif run['schedule'] == 'cosine':
        callbacks.append(CosineSchedule(lr, epochs))

    history, start_epoch = [], 0
    if resume:
        _materialize(net, train_iter, ctxs[0])
        meta = load_checkpoint(resume, net, trainer, ctx=ctxs)
        history, start_epoch = meta['history'], meta['epoch']
        if given['lr'] is not None and lr != (meta.get('config') or {}).get('lr', lr):
            trainer.set_learning_rate(lr)  # announced by _resolve_run
        for cb in callbacks:  # replay finished epochs into stateful callbacks
            for record in history:
                getattr(cb, 'observe', lambda r: None)(record)
        if start_epoch >= epochs:
            log(f'{resume} already holds {start_epoch} epochs (asked for {epochs}): nothing to do')
    config = dict(run, outputs=dict(outputs or (meta or {}).get('config', {}).get('outputs')
                                    or {}))
    history = train_ch5(net, train_iter, test_iter, batch_size, trainer, ctxs, epochs,
                        start_epoch=start_epoch, history=history, seed=seed,
                        checkpoint=checkpoint, callbacks=callbacks, progress=progress,
                        hybridize=hybridize, parallel=parallel, log=log, config=config,
                        dtype=run['dtype'], accel=accel)
    _warn_if_chance(history, train_iter.num_classes, lr)  # the rate given, not the schedule's end
    return net, history


def _warn_if_chance(history, num_classes, lr):
    """Training that ends where guessing would is worth a warning, not silence."""
    if not history or num_classes < 2 or history[-1]['test_acc'] >= 1.5 / num_classes:
        return
    acc, n = history[-1]['test_acc'], len(history)
    warnings.warn(f'test accuracy {acc:.3f} after {n} epoch{"s" * (n > 1)} is chance level for '
                  f'{num_classes} classes: the net has not learned; if more epochs do not help, '
                  f'the learning rate {lr:g} is probably too high (try --lr {lr / 10:.2g})',
                  RuntimeWarning, stacklevel=3)


def _materialize(net, data_iter, ctx):
    # Deferred-init layers get their shapes from one forward pass; the trainer
    # needs them before its states can be loaded.
    X, _ = next(iter(data_iter))
    net(X[:1].as_in_context(ctx))
