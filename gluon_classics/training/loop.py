"""The chapters' training loop: ``train_ch5``, ``evaluate_accuracy`` and ``predict``.

The d2l MXNet code, in signature and printout::

    epoch 1, loss 2.3021, train acc 0.101, test acc 0.100, time 16.5 sec

Each batch is the book's: :func:`~.objective.forward` (the chapter's
objective of ``net(X)``) under ``autograd.record()``, ``backward``,
``trainer.step``. Speed is one line that calls elsewhere:
:func:`~.objective.compile_forward` runs ``forward`` as one graph (or the
accelerator's exact rewrite of it), and the epoch's sums stay on the device
until the epoch ends (:class:`~.metrics.Accumulator`).
"""
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, nd
from mxnet.base import MXNetError

from ..distributed import ParallelContext
from ..model_zoo import check_input_shape
from ..devices import ctx_list, try_gpu
from .arrays import legacy, split
from .config import run_config
from .metrics import Accumulator, TrainingDiverged
from .objective import compile_forward, count_correct
from .progress import progress_bar
from .run import RunState
from .seeding import seed_epoch

__all__ = ['train_ch5', 'train', 'evaluate_accuracy', 'predict', 'TrainingDiverged',
           'TrainingInterrupted']


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``history`` holds the epochs that finished, ``checkpoint``
    (set by ``fit``) the file that holds them."""

    def __init__(self, epoch, history, checkpoint=None):
        super().__init__(f'interrupted during epoch {epoch}')
        self.epoch, self.history, self.checkpoint = epoch, history, checkpoint


def _check_input_dtype(net, X):
    """Raise one ``ValueError`` where the images' dtype is not the net's (after
    ``net.cast('float64')``, say): MXNet's layers take one dtype, plain autograd fails too."""
    want = {np.dtype(p.dtype) for p in net.collect_params().values()}
    have = np.dtype(X.dtype)
    if len(want) == 1 and have not in want:
        want = want.pop().name
        raise ValueError(f"images are {have.name} but the net's parameters are {want}: cast "
                         f"the images (X.astype('{want}')) or the net (net.cast('{have.name}'))")


def evaluate_accuracy(data_iter, net, ctx=None):
    """Fraction of examples in ``data_iter`` that ``net`` classifies correctly.

    ``ctx``: where to evaluate (a list splits each batch); by default where
    the net's parameters are, as in d2l. Labels may be of any dtype, legacy
    NDArrays or, in numpy mode, ``mx.np`` arrays.
    """
    return _evaluate(data_iter, net, ctx_list(ctx or _net_ctx(net)))


def _evaluate(data_iter, net, ctxs):
    correct = [nd.zeros((1,), ctx=c) for c in ctxs]
    n = 0
    for X, y in data_iter:
        for i, (Xs, ys) in enumerate(zip(split(X, ctxs), split(y, ctxs))):
            correct[i] += legacy(count_correct(net(Xs), ys)).reshape((1,))
        n += y.shape[0]
    if n == 0:
        raise ValueError('evaluate_accuracy: the data iterator yielded no examples')
    return sum(c.asscalar() for c in correct) / n


def predict(net, data_iter, n=8, ctx=None):
    """The first ``n`` examples of ``data_iter`` and their predictions (d2l's ``predict_ch3``).

    Returns ``images`` ((n, C, H, W) float32 in [0, 1]), ``true`` and ``pred``
    (int labels), as numpy arrays.
    """
    ctx = ctx or try_gpu()
    images, true, pred, got = [], [], [], 0
    for X, y in data_iter:
        X = X[:n - got].as_in_context(ctx)
        images.append(X.asnumpy())
        true.append(y[:n - got].asnumpy().astype(int))
        pred.append(net(X).argmax(axis=1).asnumpy().astype(int))
        got += X.shape[0]
        if got >= n:
            break
    return np.concatenate(images), np.concatenate(true), np.concatenate(pred)


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs, *, seed=None,
              callbacks=(), progress=None, hybridize=True, dtype='float32', accel=None,
              parallel=None, checkpoint=None, log=print):
    """Train ``net`` with the chapter's objective, printing one line per epoch.

    The chapter's arguments: an initialized ``net``, the loaders, the loader's
    ``batch_size`` (each step normalizes by its own batch's length, so a last,
    partial batch weighs like the others), a ``gluon.Trainer``, ``ctx`` (a list trains data-parallel:
    each batch is split, the trainer's KVStore sums the gradients) and
    ``num_epochs``. Returns the history: per epoch ``epoch``, ``loss``,
    ``train_acc``, ``test_acc``, ``seconds`` and ``examples_per_sec``.

    Options (docs/training.md): ``seed`` reseeds dropout and shuffling per
    epoch (a resumed run repeats an uninterrupted one); ``callbacks``, each
    ``cb(record, trainer)`` after every epoch, True stops; ``progress``, a
    tqdm bar on a terminal, else a line a minute on stderr, False for none;
    ``hybridize=False`` for debugging; ``dtype`` 'bfloat16' (opt-in, CPUs
    with bf16); ``accel`` the fast path, 'on', 'graph' or 'off'
    (docs/fast-path.md); ``parallel``, this worker's place in a
    parameter-server job (:func:`~gluon_classics.distributed.connect`);
    ``checkpoint``, a file written after every epoch; ``log``.

    Raises TrainingDiverged (NaN or infinite loss), TrainingInterrupted
    (Ctrl-C) and ValueError (a setting or a batch the net cannot take).
    """
    config = run_config(net, ctx, dtype=dtype, accel=accel, hybridize=hybridize, seed=seed,
                        batch_size=batch_size, kvstore=parallel or ParallelContext(), log=log)
    return train(net, train_iter, test_iter, trainer, config, num_epochs, callbacks=callbacks,
                 progress=progress, log=log, state=RunState(checkpoint=checkpoint))


def train(net, train_iter, test_iter, trainer, config, num_epochs, *, callbacks=(),
          progress=None, log=print, state=None):
    """``train_ch5``'s loop on a resolved :class:`~.config.RunConfig`; ``state``, a
    :class:`~.run.RunState`, is what ``fit`` adds: a resumed start, checkpoints."""
    state = state or RunState()
    ctxs, parallel = config.ctxs, config.parallel
    log, progress = state.speakers(log, progress, parallel)
    forward = compile_forward(net, config)  # objective(net(X), y), as one graph
    log('training on', ctxs[0] if len(ctxs) == 1 else list(ctxs))  # d2l prints the one context
    for epoch in range(state.start_epoch, num_epochs):
        try:
            seed_epoch(config.seed, epoch, train_iter)
            start = time.time()
            loss, train_acc, speed = train_epoch(forward, train_iter, trainer, ctxs, epoch + 1,
                                                 progress, parallel, net)
            record = {'epoch': epoch + 1, 'loss': loss, 'train_acc': train_acc,
                      'test_acc': _evaluate(test_iter, net, ctxs),
                      'seconds': time.time() - start, 'examples_per_sec': speed}
            # callbacks before the checkpoint: the rate a schedule sets is part of the state
            stop = any([cb(record, trainer) for cb in callbacks])
            state.end_epoch(net, trainer, record, config.seed)  # checkpointed before printed
            log('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec'
                % (epoch + 1, loss, train_acc, record['test_acc'], record['seconds']))
        except KeyboardInterrupt:
            raise TrainingInterrupted(len(state.history) + 1, state.history) from None
        if stop:
            break
    return state.history


def train_epoch(forward, train_iter, trainer, ctxs, epoch, progress, parallel, net):
    """One epoch: mean loss, train accuracy and examples a second (training only)."""
    start, metric = time.time(), Accumulator(ctxs)
    num_batches = len(train_iter) if hasattr(train_iter, '__len__') else None
    check_every = max(1, (num_batches or 100) // 10)
    bar = progress_bar(progress, num_batches, epoch)
    try:
        for i, (X, y) in enumerate(train_iter):
            Xs, ys = split(X, ctxs), split(y, ctxs)
            try:
                with autograd.record():
                    outs = [forward(Xi, yi) for Xi, yi in zip(Xs, ys)]  # (loss, correct)
            except MXNetError as err:
                _check_input_dtype(net, Xs[0])  # one line where the dtype or the shape is at fault
                check_input_shape(net, Xs[0].shape)
                raise err
            for l, _ in outs:
                l.backward()
            trainer.step(X.shape[0])
            metric.add(outs, X.shape[0])
            if (i + 1) % check_every == 0:
                loss = metric.running_loss(epoch, trainer.learning_rate)
                if bar is not None:
                    bar.set_postfix(loss=f'{loss:.4f}', refresh=False)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    loss, train_acc, n = metric.result(epoch, trainer.learning_rate, parallel)
    return loss, train_acc, n / (time.time() - start)


def _net_ctx(net):
    """Where ``net``'s parameters live, as d2l's ``evaluate_accuracy_gpu`` finds it."""
    params = list(net.collect_params().values())
    ctxs = params[0].list_ctx() if params else [mx.cpu()]
    return ctxs[0] if len(ctxs) == 1 else ctxs

