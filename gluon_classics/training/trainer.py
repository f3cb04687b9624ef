"""The chapters' training loop (``train_ch5``) and ``evaluate_accuracy``.

Faithful to the d2l MXNet code in signature and printout, with the speed work
kept out of sight: forward, loss and the correct-count run as one hybridized
graph, and the epoch's sums stay on the device until the epoch ends (the
chapter's ``asscalar()`` after every batch stalls the pipeline).
"""
import math
import random
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from ..model_zoo import check_input_shape
from ..utils.devices import ctx_list, try_gpu
from .checkpoint import save_checkpoint
from ..distributed import ParallelContext, sum_over_workers
from .. import accel as fast_path

__all__ = ['train_ch5', 'evaluate_accuracy', 'predict', 'make_objective', 'plain_objective',
           'epoch_seeds',
           'TrainingDiverged', 'TrainingInterrupted']


class TrainingDiverged(ArithmeticError):
    """The training loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``history`` holds the epochs that finished."""

    def __init__(self, epoch, history):
        super().__init__(f'interrupted during epoch {epoch}')
        self.epoch, self.history = epoch, history


def _in_mode(x):
    """``x`` as the current mode's array (numpy mode or legacy): a view, no copy."""
    is_np = isinstance(x, mx.np.ndarray)
    if is_np != mx.util.is_np_array():
        return x.as_nd_ndarray() if is_np else x.as_np_ndarray()
    return x


def _legacy(x):
    """The legacy view of a numpy-mode array, where the sums are kept."""
    return x.as_nd_ndarray() if isinstance(x, mx.np.ndarray) else x


def _count_correct(y_hat, y):
    """Correct predictions, as a legacy float32 NDArray, for every label dtype and mode."""
    return (_legacy(y_hat).argmax(axis=1) == _legacy(y).astype('float32')).sum()


def _net_ctx(net):
    """Where ``net``'s parameters live, as d2l's ``evaluate_accuracy_gpu`` finds it."""
    params = list(net.collect_params().values())
    ctxs = params[0].list_ctx() if params else [mx.cpu()]
    return ctxs[0] if len(ctxs) == 1 else ctxs


def _split(batch, ctxs):
    batch = _in_mode(batch)
    if len(ctxs) == 1:
        return [batch.as_in_context(ctxs[0])]
    return gluon.utils.split_and_load(batch, ctxs, even_split=False)


class _Objective(gluon.HybridBlock):
    """Summed softmax cross-entropy and number of correct predictions, as one graph."""

    def __init__(self, net):
        super().__init__(prefix='')
        self.net = net
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self._net_params, self._buffers = list(net.collect_params().values()), None

    def __call__(self, X, y):
        # a static graph writes into the gradient buffers of its build: new ones
        # (grad_req changed, force_reinit) need a new graph
        buffers = fast_path.GradBuffers(self._net_params)
        if buffers != self._buffers:
            self._clear_cached_op()
            self._buffers = buffers
        return super().__call__(X, y)

    def hybrid_forward(self, F, X, y):
        y_hat = self.net(X)
        y = y.astype('float32')
        if mx.util.is_np_array():  # the same graph: argmax gives int64 there, == gives bool
            hits = y_hat.argmax(axis=1).astype('float32') == y
            return self.loss(y_hat, y).sum(), hits.astype('float32').sum()
        return F.sum(self.loss(y_hat, y)), F.sum(F.argmax(y_hat, axis=1) == y)

    def hybridize(self, active=True, **kwargs):
        # This graph only: the user's net keeps its own mode (and cached graph).
        children, self._children = self._children, {}
        try:
            super().hybridize(active, **kwargs)
        finally:
            self._children = children


def _objective(net, hybridize, ctxs, dtype='float32', accel=None):
    """The training graph, built at the first batch (deferred shapes are known then)."""
    built = {}  # per mode: a graph traced in numpy mode takes only mx.np arrays

    def objective(X, y):
        mode = mx.util.is_np_array()
        if mode not in built:
            if any(p._deferred_init for p in net.collect_params().values()):
                # train mode: in predict mode oneDNN would reorder the weights in
                # place to its own layout, which KVStores cannot read
                with autograd.pause(train_mode=True):
                    net(X)
            built[mode] = make_objective(net, ctxs, hybridize, dtype, accel)
        return built[mode](X, y)
    return objective


def make_objective(net, ctxs, hybridize=True, dtype='float32', accel=None):
    """The training graph of ``net``: ``(X, y) -> (summed loss, correct count)``.

    The fast path's graph where it has one (:func:`gluon_classics.accel.objective`;
    ``accel``: 'on', 'graph' or 'off', default ``$GLUON_CLASSICS_ACCEL`` or 'on'),
    else :func:`plain_objective`. Deferred shapes must be known (run one
    forward pass first). Call it under ``autograd.record()``.
    ``dtype='bfloat16'``: the fast path's graph in bfloat16 (opt-in, CPUs with
    bf16 instructions, conv chains; else ValueError).
    """
    fast_path.check_dtype(net, ctx_list(ctxs), dtype, hybridize)
    plain = plain_objective(net, hybridize)
    if hybridize:
        fast = fast_path.objective(net, ctx_list(ctxs), dtype, fallback=plain, accel=accel)
        if fast is not None:
            return fast
    return plain


def plain_objective(net, hybridize=True):
    """``net(X)`` and softmax cross-entropy, summed, with the correct count: as written.

    One static graph where ``net`` is a HybridBlock (or the books'
    ``nn.Sequential`` of HybridBlocks) and ``hybridize``; else imperative.
    """
    if type(net) is nn.Sequential and all(isinstance(b, gluon.HybridBlock)
                                          for b in net._children.values()):
        # the books' nn.Sequential LeNet (exactly: a subclass may have its own
        # forward): the same layers and Parameters in a graph
        view = nn.HybridSequential(prefix=net.prefix)
        view.add(*net._children.values())
        net = view
    if not isinstance(net, gluon.HybridBlock):
        loss = gluon.loss.SoftmaxCrossEntropyLoss()

        def imperative(X, y):  # plain Blocks cannot sit in a graph
            y_hat = net(X)
            return _legacy(loss(y_hat, y.astype('float32')).sum()), _count_correct(y_hat, y)
        return imperative
    objective = _Objective(net)
    if hybridize:
        objective.hybridize(static_alloc=True, static_shape=True)
    return objective


def _explain_shape_error(net, X, err):
    """Turn MXNet's multi-line shape error into one line naming the expected shape."""
    check_input_shape(net, X.shape)  # raises ValueError where the shape is at fault
    raise err


def evaluate_accuracy(data_iter, net, ctx=None):
    """Fraction of examples in ``data_iter`` that ``net`` classifies correctly.

    Parameters
    ----------
    data_iter : iterable of (X, y)
    net : Block
    ctx : Context or list of Context, optional
        Where to evaluate; a list splits each batch across the contexts.
        Default: where the net's parameters are, as in d2l.

    Labels may be of any integer or float dtype, legacy NDArrays or, in
    numpy mode, ``mx.np`` arrays.
    """
    ctxs = ctx_list(ctx or _net_ctx(net))
    correct = [nd.zeros((1,), ctx=c) for c in ctxs]
    n = 0
    for X, y in data_iter:
        for i, (Xs, ys) in enumerate(zip(_split(X, ctxs), _split(y, ctxs))):
            correct[i] += _count_correct(net(Xs), ys)
        n += y.shape[0]
    if n == 0:
        raise ValueError('evaluate_accuracy: the data iterator yielded no examples')
    return sum(c.asscalar() for c in correct) / n


def predict(net, data_iter, n=8, ctx=None):
    """Predict the first ``n`` examples of ``data_iter``, like d2l's ``predict_ch3``.

    Returns
    -------
    images : numpy.ndarray
        (n, C, H, W) float32 in [0, 1].
    true, pred : numpy.ndarray
        Their labels and the predicted classes, int.
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


# Without a terminal (a log file, a batch job) there is no tqdm bar: a line on
# stderr at most this often instead, so that a long AlexNet epoch is not silent.
HEARTBEAT_SECONDS = 60
ESTIMATE_BATCHES = 3  # timed after the first batch, which also builds the graph


class _Heartbeat:
    """Progress without a terminal: an estimate of the epoch's time, then a line a minute."""

    def __init__(self, total, epoch, stream=None):
        self.total, self.epoch, self.done, self.loss = total, epoch, 0, None
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.timed = None

    def _say(self, text):
        print(f'epoch {self.epoch}: {text}', file=self.stream, flush=True)

    def set_postfix(self, loss=None, **_):
        self.loss = loss

    def update(self, n=1):
        self.done += n
        if self.total and self.done in (1, 1 + ESTIMATE_BATCHES):
            mx.nd.waitall()  # the engine runs ahead of Python: time finished batches
            now = time.monotonic()
            if self.done == 1:
                self.timed = now
            else:
                per_batch = (now - self.timed) / ESTIMATE_BATCHES
                estimate = per_batch * self.total
                if estimate > HEARTBEAT_SECONDS:
                    self._say(f'{per_batch:.2f} s a batch: about {_duration(estimate)} for '
                              f'{self.total} batches (a progress line every '
                              f'{_duration(HEARTBEAT_SECONDS)})')
        now = time.monotonic()
        if now - self.last >= HEARTBEAT_SECONDS:
            self.last = now
            total = f'/{self.total} ({100 * self.done / self.total:.0f}%)' if self.total else ''
            loss = f', loss {self.loss}' if self.loss is not None else ''
            self._say(f'batch {self.done}{total}{loss}, {_duration(now - self.start)} so far')

    def close(self):
        pass


def _duration(seconds):
    if seconds < 120:
        return f'{seconds:.0f} s'
    return f'{seconds / 60:.0f} min' if seconds < 7200 else f'{seconds / 3600:.1f} h'


def _progress_bar(progress, total, epoch):
    """A tqdm bar on a terminal, a heartbeat on stderr otherwise, None when turned off."""
    if progress is False:
        return None
    if progress is None and not sys.stderr.isatty():
        return _Heartbeat(total, epoch)
    try:  # tqdm is an optional dependency (the 'progress' extra)
        from tqdm import tqdm
    except ImportError:
        return _Heartbeat(total, epoch)
    return tqdm(total=total, desc=f'epoch {epoch}', leave=False, unit='batch')


def epoch_seeds(seed, epoch):
    """Seeds of MXNet's, numpy's and Python's generators for one epoch of a seeded run.

    Derived with numpy's SeedSequence, so neighbouring seeds do not share
    streams the way ``seed + epoch`` does (seed 1's epoch 2 would be seed 2's
    epoch 1), and distinct from the loader's shuffle stream ``(seed, epoch)``.
    MXNet's seed of the first epoch is ``seed`` itself: deferred layers are
    initialized at the first batch, so a seed keeps the initial weights (and
    the measured runs) it had.
    """
    mx_seed, np_seed, py_seed = np.random.SeedSequence([seed, epoch, 1]).generate_state(3)
    return [seed if epoch == 0 else int(mx_seed), int(np_seed), int(py_seed)]


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs, *,
              start_epoch=0, history=None, seed=None, checkpoint=None, callbacks=(),
              progress=None, hybridize=True, parallel=None, log=print, config=None,
              dtype='float32', accel=None):
    """Train ``net`` with softmax cross-entropy, printing one line per epoch.

    The signature and the printout are the d2l chapter's (MXNet)::

        epoch 1, loss 2.3021, train acc 0.101, test acc 0.100, time 16.5 sec

    Parameters
    ----------
    net : Block
        An initialized network (``net.initialize(init.Xavier(), ctx=ctx)``).
    train_iter, test_iter : iterable of (X, y)
    batch_size : int
        The loader's batch size. Gradients are normalized by each batch's own
        length, so the last, partial batch weighs like the others.
    trainer : gluon.Trainer
    ctx : Context or list of Context
        A list trains data-parallel: each batch is split across the contexts
        and the trainer's KVStore sums the gradients.
    num_epochs : int
        Total epochs; with ``start_epoch`` > 0 training continues from there.
    start_epoch : int, default 0
        Epochs already done (when resuming from a checkpoint).
    history : list of dict, optional
        The history of those epochs, continued and returned.
    seed : int, optional
        Reseeds MXNet's (dropout), numpy's and Python's generators and the
        loader's shuffling at every epoch from (seed, epoch)
        (:func:`epoch_seeds`), so a resumed run repeats an uninterrupted one,
        whether or not the loader was built with a ``shuffle_seed``.
    checkpoint : str, optional
        Path of a checkpoint written atomically after every epoch, after the
        callbacks (a learning-rate schedule's new rate is in it).
    callbacks : sequence of callable
        Each is called as ``cb(record, trainer)`` after every epoch; returning
        True stops training.
    progress : bool, optional
        A tqdm bar within each epoch; default: when stderr is a terminal, and
        otherwise a line on stderr every ``HEARTBEAT_SECONDS`` (with an estimate
        of the epoch's time when it is longer than that). False: nothing.
    hybridize : bool, default True
        Compile forward and loss to one static graph; False for debugging.
    parallel : ParallelContext, optional
        This worker's place in a parameter-server job (the one ``trainer``
        sums with; :func:`~gluon_classics.distributed.connect`):
        the epoch's numbers are summed over the workers, and only rank 0 logs
        and writes the checkpoint. Default: one process.
    log : callable, default print
    config : dict, optional
        Stored in the checkpoint (what :func:`~gluon_classics.fit` needs to
        finish the run as started).
    dtype : {'float32', 'bfloat16'}, default 'float32'
        The training graph's compute type. 'bfloat16' (opt-in) runs the
        convolutions, dense layers, activations and pooling of a conv chain
        (the zoo's nets) in bfloat16 on CPUs with avx512_bf16, with float32
        weights, gradients, update and loss: faster there, and not the same
        numbers. Evaluation stays float32.
    accel : {'on', 'graph', 'off'}, optional
        The fast path (:mod:`gluon_classics.accel`): 'on' (default) its
        rewritten graph with our CPU operators, 'graph' without them, 'off' the
        plain graph. Default: ``$GLUON_CLASSICS_ACCEL``, else 'on'.

    Returns
    -------
    list of dict
        Per epoch: ``epoch``, ``loss``, ``train_acc``, ``test_acc``,
        ``seconds`` (the epoch with its evaluation), ``examples_per_sec``
        (training examples over training time).

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite.
    TrainingInterrupted
        Ctrl-C; the checkpoint of the last finished epoch is kept.
    ValueError
        A batch of a shape the network cannot take.
    """
    ctxs = ctx_list(ctx)
    accel = fast_path.resolve_mode(accel)  # before the first batch, not at it
    fast_path.check_dtype(net, ctxs, dtype, hybridize, log=log)
    objective = _objective(net, hybridize, ctxs, dtype, accel)
    history = list(history or [])
    parallel = parallel or ParallelContext()
    if not parallel.is_chief:  # a parameter-server job: rank 0 speaks and writes for all
        log, checkpoint, progress = (lambda *args, **kwargs: None), None, False
    log('training on', ctxs[0] if len(ctxs) == 1 else ctxs)  # d2l prints the one context
    for epoch in range(start_epoch, num_epochs):
        try:
            record = _epoch(net, objective, train_iter, test_iter, trainer, ctx, epoch, seed,
                            progress, parallel)
            # callbacks before the checkpoint: the rate a schedule sets is part of the state
            stop = any([cb(record, trainer) for cb in callbacks])
            if checkpoint:  # before the line: a printed epoch is a saved epoch
                save_checkpoint(checkpoint, net, trainer, epoch + 1, history + [record], seed,
                                config)
            history.append(record)
            log('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec'
                % (record['epoch'], record['loss'], record['train_acc'], record['test_acc'],
                   record['seconds']))
        except KeyboardInterrupt:
            raise TrainingInterrupted(len(history) + 1, history) from None
        if stop:
            break
    return history


def _epoch(net, objective, train_iter, test_iter, trainer, ctx, epoch, seed, progress, parallel):
    """Train one epoch and evaluate: the history record of epoch ``epoch + 1``."""
    if seed is not None:
        mx_seed, np_seed, py_seed = epoch_seeds(seed, epoch)
        mx.random.seed(mx_seed)
        np.random.seed(np_seed)  # loaders shuffling with numpy's global generator
        random.seed(py_seed)
        if hasattr(train_iter, 'epoch'):
            train_iter.epoch = epoch
    train = _train_epoch(net, objective, train_iter, trainer, ctx_list(ctx), epoch + 1, progress,
                         parallel)
    test_acc = evaluate_accuracy(test_iter, net, ctx)
    return {'epoch': epoch + 1, 'loss': train['loss'], 'train_acc': train['train_acc'],
            'test_acc': test_acc, 'seconds': time.time() - train['start'],
            'examples_per_sec': train['examples_per_sec']}


def _train_epoch(net, objective, train_iter, trainer, ctxs, epoch, progress, parallel):
    start = time.time()
    loss_sum = [nd.zeros((1,), ctx=c) for c in ctxs]
    correct = [nd.zeros((1,), ctx=c) for c in ctxs]
    n, num_batches = 0, len(train_iter) if hasattr(train_iter, '__len__') else None
    check_every = max(1, (num_batches or 100) // 10)
    bar = _progress_bar(progress, num_batches, epoch)
    pending = [[] for _ in ctxs]  # (loss, count) outputs since the last check

    def running_loss():
        for k, outs in enumerate(pending):  # one add_n per check, not two adds per batch
            if outs:
                loss_sum[k] = nd.add_n(loss_sum[k], *(l for l, _ in outs))
                correct[k] = nd.add_n(correct[k], *(c for _, c in outs))
                outs.clear()
        value = sum(s.asscalar() for s in loss_sum) / max(n, 1)
        if not math.isfinite(value):
            lr = trainer.learning_rate
            raise TrainingDiverged(f'loss became {value} in epoch {epoch}: the learning rate '
                                   f'{lr:g} is too high, lower it (e.g. --lr {lr / 3:.2g})')
        return value

    try:
        for i, (X, y) in enumerate(train_iter):
            Xs, ys = _split(X, ctxs), _split(y, ctxs)
            try:
                with autograd.record():
                    outs = [objective(Xi, yi) for Xi, yi in zip(Xs, ys)]
            except mx.base.MXNetError as err:
                _explain_shape_error(net, Xs[0], err)
            for l, _ in outs:
                l.backward()
            trainer.step(X.shape[0])
            for k, (l, c) in enumerate(outs):
                pending[k].append((_legacy(l), _legacy(c)))
            n += X.shape[0]
            if (i + 1) % check_every == 0:
                value = running_loss()
                if bar is not None:
                    bar.set_postfix(loss=f'{value:.4f}', refresh=False)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if n == 0:
        raise ValueError('train_ch5: the training iterator yielded no examples')
    running_loss()  # the divergence check, on this worker's batches
    # In a parameter-server job each worker saw its own shard: the epoch is all of them.
    loss, correct, n = sum_over_workers([sum(s.asscalar() for s in loss_sum),
                                         sum(c.asscalar() for c in correct), n], parallel)
    train_seconds = time.time() - start
    return {'loss': loss / n, 'train_acc': correct / n,
            'examples_per_sec': n / train_seconds, 'start': start}
