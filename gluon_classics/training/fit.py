"""``fit``: the chapters' whole recipe (data, model, init, trainer, loop) in one call.

This is what ``gluon-classics train`` and ``ablate`` run; it is nothing but
the chapter's cells put together, with the chapter's defaults per model from
the model registry. The notebooks write those cells out and call
``train_ch5`` themselves.
"""
import random

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from ..data import load_data
from ..model_zoo import MODELS, model_for_data, recipe
from ..utils.devices import loader_ctx, resolve_ctx
from .checkpoint import load_checkpoint
from .distributed import (checkpoint_path, connect, default_kvstore, is_distributed,
                          shard_for_worker, worker_batch_size)
from .trainer import train_ch5

__all__ = ['fit', 'RECIPES', 'OPTIMIZERS', 'ReduceLROnPlateau', 'make_trainer',
           'seed_everything']

# The default variant's recipe per model (a view of the model registry).
RECIPES = {name: recipe(name) for name in MODELS}

# name -> (what it is, gluon 'sgd' arguments besides the learning rate). 'momentum'
# also gets ReduceLROnPlateau in fit.
OPTIMIZERS = {
    'sgd': ("the chapters' plain SGD", {}),
    'momentum': ('momentum 0.9, weight decay 5e-4, lr / 10 when test accuracy stops improving',
                 dict(momentum=0.9, wd=5e-4)),
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


def seed_everything(seed):
    """Seed MXNet's, numpy's and Python's generators."""
    mx.random.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def make_trainer(net, lr, optimizer='sgd', kvstore=None):
    """``gluon.Trainer`` for the chapters' plain SGD or the momentum recipe.

    ``kvstore`` None picks 'local' for CPU contexts, 'device' for GPU ones
    (:func:`~gluon_classics.training.distributed.default_kvstore`); a
    ``'dist_*'`` name joins the parameter server; a
    :class:`~gluon_classics.training.distributed.ParallelContext` trains
    with the KVStore it holds.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {optimizer!r}: choose one of {", ".join(OPTIMIZERS)}')
    if not lr > 0:
        raise ValueError(f'learning rate must be positive; got {lr}')
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


def fit(model='lenet', variant='d2l', *, dataset='fashion-mnist', epochs=None, lr=None,
        batch_size=None, resize=None, data_dir=None, ctx=None, seed=None, optimizer='sgd',
        num_examples=None, checkpoint=None, resume=None, hybridize=True, progress=None,
        kvstore=None, callbacks=(), model_kwargs=None, log=print):
    """Train a model the way its chapter does, with the chapter's defaults.

    Parameters
    ----------
    model : str
        A name of :data:`~gluon_classics.model_zoo.MODELS` (``'lenet'``, ``'alexnet'``).
    variant : str
        See :func:`~gluon_classics.lenet` and :func:`~gluon_classics.alexnet`.
    dataset : str, default 'fashion-mnist'
        Any name :func:`gluon_classics.load_data` takes.
    epochs, lr, batch_size, resize : optional
        Default to the variant's recipe (:func:`~gluon_classics.model_zoo.recipe`).
    data_dir : str, optional
        Folder holding the data set's files.
    ctx : Context or list of Context, optional
        Default ``[try_gpu()]``; resolved here, once, into a list.
    seed : int, optional
        Seeds initialization, shuffling and dropout: a fixed seed gives the
        same run again (on CPU), also across ``resume``.
    optimizer : str
        A name of ``OPTIMIZERS``: 'sgd' is the chapters'; 'momentum' adds
        momentum 0.9, weight decay 5e-4 and lr / 10 when test accuracy stops
        improving.
    num_examples : int, optional
        Train on a seeded subset of this many examples (quick runs).
    kvstore : str or ParallelContext, optional
        'local' (CPUs) or 'device' (GPUs) by default. 'dist_sync',
        'dist_device_sync' or 'dist_async' in processes started by
        ``gluon-classics launch``: each worker trains on its shard with its
        share of ``batch_size``; only rank 0 logs and writes the checkpoint.
        A process joins a job once: pass the context
        :func:`~gluon_classics.training.distributed.connect` returned to
        train in it again.
    checkpoint : str, optional
        Checkpoint path written after every epoch.
    resume : str, optional
        Checkpoint to continue from; training goes on to ``epochs``.
    model_kwargs : dict, optional
        Extra arguments of the model factory (``activation='relu'``...).

    Returns
    -------
    net : HybridBlock
    history : list of dict
    """
    chapter = recipe(model, variant)
    epochs = chapter['epochs'] if epochs is None else epochs
    lr = chapter['lr'] if lr is None else lr
    batch_size = chapter['batch_size'] if batch_size is None else batch_size
    resize = chapter['resize'] if resize is None else (resize or None)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f'epochs and batch size must be at least 1; got {epochs} and {batch_size}')
    ctxs = resolve_ctx(ctx)
    parallel = connect(kvstore, ctxs)
    checkpoint = checkpoint_path(parallel, checkpoint, resume, log)
    meta = None
    if resume:
        meta = load_checkpoint(resume)  # the seed, before anything is built
        seed = meta['seed'] if seed is None else seed
    if seed is not None:
        seed_everything(seed)

    train_iter, test_iter = load_data(dataset, worker_batch_size(batch_size, parallel),
                                      resize=resize, root=data_dir, ctx=loader_ctx(ctxs),
                                      shuffle_seed=seed)
    if num_examples:
        train_iter = train_iter.subset(num_examples, seed=seed or 0)
    train_iter = shard_for_worker(train_iter, parallel, seed=seed or 0, log=log)
    net = model_for_data(model, train_iter, variant=variant, **(model_kwargs or {}))
    net.initialize(init.Xavier(), ctx=ctxs)
    trainer = make_trainer(net, lr, optimizer, parallel)
    callbacks = list(callbacks)
    if optimizer == 'momentum':
        callbacks.append(ReduceLROnPlateau())

    history, start_epoch = [], 0
    if resume:
        _materialize(net, train_iter, ctxs[0])
        meta = load_checkpoint(resume, net, trainer, ctx=ctxs)
        history, start_epoch = meta['history'], meta['epoch']
        for cb in callbacks:  # replay finished epochs into stateful callbacks
            for record in history:
                getattr(cb, 'observe', lambda r: None)(record)
        if start_epoch >= epochs:
            log(f'{resume} already holds {start_epoch} epochs (asked for {epochs}): nothing to do')
    history = train_ch5(net, train_iter, test_iter, batch_size, trainer, ctxs, epochs,
                        start_epoch=start_epoch, history=history, seed=seed,
                        checkpoint=checkpoint, callbacks=callbacks, progress=progress,
                        hybridize=hybridize, parallel=parallel, log=log)
    return net, history


def _materialize(net, data_iter, ctx):
    # Deferred-init layers get their shapes from one forward pass; the trainer
    # needs them before its states can be loaded.
    X, _ = next(iter(data_iter))
    net(X[:1].as_in_context(ctx))
