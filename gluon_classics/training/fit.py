"""``fit``: the chapter's whole recipe in one call, and the run around it.

The chapter's cells put together (data, model, Xavier init, trainer,
``train_ch5``) with its defaults per model from the model registry; and what
a run adds: settings resolved once (:mod:`.settings`), a checkpoint after
every epoch and resuming from it, a parameter-server job, and the output
files (:mod:`.run_outputs`). This is what ``gluon-classics train`` and
``ablate`` run; the notebooks write the cells out and call ``train_ch5``.
"""
import math
import os
import warnings

from mxnet import init

from ..accel import bfloat16
from ..data import load_data
from ..distributed import checkpoint_path, shard_for_worker
from ..errors import Fixable, SettingError
from ..devices import loader_ctx
from ..utils.outputs import OutputBusy, OutputError
from .checkpoint import load_checkpoint
from .config import run_config
from .loop import TrainingInterrupted, train
from .recipes import build_model, schedule_callback, trainer_for
from .run import RunState
from .run_outputs import RunOutputs
from .seeding import seed_everything
from .settings import resolve_run
from .sizes import check_batch_memory, check_batch_size, check_image_size

__all__ = ['fit', 'ChanceLevelWarning']

# Epochs at chance level with a loss that does not fall, before the rate is blamed.
_STUCK_EPOCHS = 3


class ChanceLevelWarning(Fixable, RuntimeWarning):
    """Training ended at chance-level test accuracy."""


def fit(model=None, variant=None, *, dataset=None, epochs=None, lr=None, batch_size=None,
        resize=None, data_dir=None, ctx=None, seed=None, optimizer=None, schedule=None,
        num_examples=None, checkpoint=None, resume=None, hybridize=True, progress=None,
        kvstore=None, callbacks=(), model_kwargs=None, save=None, metrics=None, plot=None,
        dtype=None, accel=None, log=print):
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
    checkpoint : str or True, optional
        Checkpoint path written after every epoch (checked before training);
        True: ``resume``, else ``SAVE.ckpt``, else ``runs/MODEL-VARIANT.ckpt``.
    resume : str, optional
        Checkpoint to continue from. Settings left as None are the
        checkpoint's, so ``fit(resume=C, checkpoint=C)`` finishes the run as it
        was started. ``epochs``, ``lr`` and ``data_dir`` that differ are
        applied and logged; any other setting that differs raises ValueError.
    model_kwargs : dict, optional
        Extra arguments of the model factory (``activation='relu'``...).
    save, metrics, plot : str, optional
        Write the parameters (``{rank}`` in the path: every worker of a job its
        own), the history as JSON, and the curve, at the end. Checked and
        claimed before the data is read; recorded in the checkpoint, so that a
        resumed run writes them too (with ``resume``, None: the recorded ones).
        Interrupted, the finished epochs' metrics are written.
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

    Raises
    ------
    TrainingInterrupted
        Ctrl-C or SIGTERM; its ``checkpoint`` holds the finished epochs (their metrics are
        written).

    Warns
    -----
    ChanceLevelWarning
        Training ended at chance-level test accuracy.
    """
    meta = load_checkpoint(resume) if resume else None  # the settings, before anything is built
    run = resolve_run(dict(
        model=model, variant=variant, dataset=dataset, epochs=epochs, lr=lr,
        batch_size=batch_size, resize=resize, seed=seed, optimizer=optimizer, schedule=schedule,
        dtype=dtype, num_examples=num_examples, model_kwargs=model_kwargs,
        data_dir=os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None,
        outputs=dict(save=save, metrics=metrics, plot=plot)), resume, meta, log)
    probe = build_model(run['model'], run['variant'], **run['model_kwargs'])
    # every setting resolved and checked once, here, before the data is read
    config = run_config(probe, ctx, dtype=run['dtype'], accel=accel, hybridize=hybridize,
                        seed=run['seed'], batch_size=run['batch_size'], data_dir=run['data_dir'],
                        kvstore=kvstore, log=log)
    ctxs, parallel = list(config.ctxs), config.parallel
    hint = run['dtype'] == 'float32' and parallel.is_chief and bfloat16.hint(probe, ctxs,
                                                                             hybridize)
    if hint:  # bfloat16 measured at least 1.5x faster for this network here; it stays opt-in
        log(hint)
    bare = checkpoint is True and not resume and not (save or run['outputs'].get('save'))
    if checkpoint is True:
        checkpoint = resume or _default_checkpoint(save or run['outputs'].get('save'), run,
                                                   parallel)
    given = {k: v for k, v in dict(save=save, metrics=metrics, plot=plot).items() if v}
    try:
        # as given; the checkpoint records them whole
        outputs = RunOutputs(dict(run['outputs'], **given),
                             checkpoint_path(parallel, checkpoint, resume, log), parallel)
    except OutputBusy as busy:
        if not (bare and busy.real == os.path.realpath(checkpoint)):
            raise
        # two quick runs with neither path given: say it is the default they share
        raise OutputError(f'another run (pid {busy.pid}) is writing the default checkpoint '
                          f'{checkpoint}, which runs without [[checkpoint]] or [[save]] share: '
                          f'give this run its own with [[checkpoint=PATH]], or wait for that '
                          f'one to finish') from None
    if config.seed is not None:
        seed_everything(config.seed)

    train_iter, test_iter = _data(run, config, log)
    net = build_model(run['model'], run['variant'], **dict(
        run['model_kwargs'], num_classes=train_iter.num_classes,
        in_channels=train_iter.image_shape[0]))
    # the data's images fit the net and a batch fits in memory, before the first batch
    check_image_size(net, train_iter.image_shape, run['resize'])
    batch = min(run['batch_size'], train_iter.num_examples)
    check_batch_memory(net, train_iter.image_shape, batch, run['resize'], ctxs)
    net.initialize(init.Xavier(), ctx=ctxs)
    trainer = trainer_for(net, run['lr'], run['optimizer'], parallel)
    schedule = schedule_callback(run['schedule'], run['lr'], run['epochs'])
    callbacks = list(callbacks) + ([schedule] if schedule else [])
    start_epoch, history = _resumed(resume, given_lr=lr, run=run, net=net, trainer=trainer,
                                    data=train_iter, ctxs=ctxs, callbacks=callbacks, log=log)
    done = start_epoch >= run['epochs']  # a finished run: its outputs again, no training
    if not done:
        try:
            state = RunState(start_epoch, history, outputs.checkpoint, settings=run)
            history = train(net, train_iter, test_iter, trainer, config, run['epochs'],
                            callbacks=callbacks, progress=progress, log=log, state=state)
        except TrainingInterrupted as stop:
            stop.checkpoint = outputs.checkpoint
            outputs.write_metrics(stop.history)
            raise
    outputs.write(net, history)
    if not done:
        _warn_if_chance(history, train_iter.num_classes, run['lr'])
    return net, history


def _default_checkpoint(save, run, parallel):
    if save:
        return save.replace('{rank}', str(parallel.rank)) + '.ckpt'
    return f'runs/{run["model"]}-{run["variant"]}.ckpt'


def _data(run, config, log):
    """The loaders; in a job, this worker's shard with its share of the batch."""
    seed = config.seed
    train_iter, test_iter = load_data(run['dataset'], config.worker_batch_size,
                                      resize=run['resize'], root=config.data_dir,
                                      ctx=loader_ctx(config.ctxs), shuffle_seed=seed)
    # a batch larger than the whole set is not meant (the recipe's 256 over 128 examples is)
    check_batch_size(run['batch_size'], train_iter.num_examples)
    if run['num_examples']:
        if run['num_examples'] > train_iter.num_examples:
            raise SettingError(f'[[num_examples={run["num_examples"]}]] is more than the '
                               f'{train_iter.num_examples} training examples: use at most '
                               f'[[num_examples={train_iter.num_examples}]], or leave it out')
        train_iter = train_iter.subset(run['num_examples'], seed=seed or 0)
    return shard_for_worker(train_iter, config.parallel, seed=seed or 0, log=log), test_iter


def _resumed(resume, given_lr, run, net, trainer, data, ctxs, callbacks, log):
    """``(start_epoch, history)``: the checkpoint's state loaded, or a fresh start."""
    if not resume:
        return 0, []
    # Deferred-init layers get their shapes from one forward pass; the trainer
    # needs them before its states can be loaded.
    X, _ = next(iter(data))
    net(X[:1].as_in_context(ctxs[0]))
    meta = load_checkpoint(resume, net, trainer, ctx=ctxs)
    history, start_epoch = meta['history'], meta['epoch']
    if given_lr is not None and run['lr'] != (meta.get('config') or {}).get('lr', run['lr']):
        trainer.set_learning_rate(run['lr'])  # announced by resolve_run
    for cb in callbacks:  # replay finished epochs into stateful callbacks
        for record in history:
            getattr(cb, 'observe', lambda r: None)(record)
    if start_epoch >= run['epochs']:
        log(f'{resume} already holds {_epochs(start_epoch)} (asked for {run["epochs"]}): '
            f'nothing to train')
    return start_epoch, history


def _epochs(n):
    return f'{n} epoch{"s" * (n != 1)}'


def _warn_if_chance(history, num_classes, lr):
    """Training that ends where guessing would is worth a warning where the loss says why.

    The chapter's own sigmoid LeNet (lr 0.9) sits near chance after its first epoch in
    d2l's run too, its loss near a uniform guess's; it learns in the next ones. So the
    rate is blamed only when the loss is far above a guess's (the steps overshoot) or
    has not fallen over several epochs at chance.
    """
    chance = 1.5 / num_classes
    if not history or num_classes < 2 or history[-1]['test_acc'] >= chance:
        return
    acc, loss, n = history[-1]['test_acc'], history[-1]['loss'], len(history)
    guess = math.log(num_classes)  # the loss of a uniform guess
    if not loss < 2 * guess:  # also NaN
        why = f'its loss {loss:.4g} is far above a uniform guess\'s {guess:.2f}'
    elif n >= _STUCK_EPOCHS and all(r['test_acc'] < chance for r in history) \
            and loss >= 0.99 * history[0]['loss']:
        why = 'its loss has not fallen since epoch 1'
    else:
        return
    warnings.warn(ChanceLevelWarning(
        f'test accuracy {acc:.3f} after {_epochs(n)} is chance level for {num_classes} '
        f'classes and {why}: the learning rate {lr:g} is probably too high (try '
        f'[[lr={lr / 10:.2g}]])'), stacklevel=3)
