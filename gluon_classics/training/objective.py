"""The chapter's objective, written once: the summed loss of ``net(X)`` and the correct count.

d2l's ``train_ch5`` computes, for every batch::

    y_hat = net(X)
    l = loss(y_hat, y).sum()
    train_acc_sum += (y_hat.argmax(axis=1) == y).sum()

:func:`objective` is those lines and :func:`forward` applies it to ``net(X)``.
The loop trains :func:`forward`; :func:`compile_forward` runs it as one static
graph that traces the same :func:`objective` (:func:`plain_objective`), or
hands :func:`objective` to the accelerator (:func:`gluon_classics.accel.objective`),
which computes ``net(X)`` in its own exact way and applies :func:`objective`
to what it computed.
"""
import functools

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

from .. import accel as fast_path
from .config import run_config

__all__ = ['loss', 'objective', 'count_correct', 'forward', 'compile_forward',
           'make_objective', 'plain_objective']

loss = gluon.loss.SoftmaxCrossEntropyLoss()


def count_correct(y_hat, y):
    """How many rows of ``y_hat`` score their label highest, as a float32 sum; labels
    (N,) or (N, 1) of any dtype."""
    hits = y_hat.argmax(axis=1).astype('float32') == y.astype('float32').reshape((-1,))
    return hits.astype('float32').sum()  # == gives bool in numpy mode


def objective(y_hat, y):
    """The batch's summed softmax cross-entropy and correct count, from ``y_hat = net(X)``.

    Array methods only: it runs on arrays and, traced into a graph, on symbols, in
    either MXNet mode.
    """
    return loss(y_hat, y.astype('float32')).sum(), count_correct(y_hat, y)


def forward(net, X, y):
    """One batch as the chapter trains it: :func:`objective` of ``net(X)``."""
    return objective(net(X), y)


class _Graph(gluon.HybridBlock):
    """:func:`forward` as one static graph: ``head(net(X), y)``."""

    def __init__(self, net, head):
        super().__init__(prefix='')
        self.net, self._head = net, head
        self._net_params, self._built = list(net.collect_params().values()), None

    def __call__(self, X, y):
        # a static graph writes into the gradient buffers of its build, and runs the
        # forwards it traced: new buffers (grad_req changed, force_reinit) or another
        # forward (set on an instance or a class) need a new graph
        built = (fast_path.GradBuffers(self._net_params), fast_path.forwards(self.net))
        if built != self._built:
            self._clear_cached_op()
            self._built = built
        return super().__call__(X, y)

    def hybrid_forward(self, F, X, y):
        return self._head(self.net(X), y)

    def hybridize(self, active=True, **kwargs):
        # This graph only: the user's net keeps its own mode (and cached graph).
        children, self._children = self._children, {}
        try:
            super().hybridize(active, **kwargs)
        finally:
            self._children = children


def compile_forward(net, config):
    """``(X, y) -> (summed loss, correct count)``: :func:`forward` compiled for ``config``
    (a :class:`~.config.RunConfig`), built at the first batch, where deferred shapes
    become known."""
    built = {}  # per mode: a graph traced in numpy mode takes only mx.np arrays

    def compiled(X, y):
        mode = mx.util.is_np_array()
        if mode not in built:
            if any(p._deferred_init for p in net.collect_params().values()):
                # train mode: in predict mode oneDNN would reorder the weights in
                # place to its own layout, which KVStores cannot read
                with autograd.pause(train_mode=True):
                    net(X)
            built[mode] = _build(net, config)
        return built[mode](X, y)
    return compiled


def make_objective(net, ctxs, hybridize=True, dtype='float32', accel=None):
    """The training graph of ``net``: ``(X, y) -> (summed loss, correct count)``.

    The fast path's graph where it has one (``accel``: 'on', 'graph' or 'off',
    default ``$GLUON_CLASSICS_ACCEL`` or 'on'), else :func:`plain_objective`.
    Deferred shapes must be known (run one forward pass first). Call it under
    ``autograd.record()``. ``dtype='bfloat16'``: the fast path's graph in
    bfloat16 (opt-in, CPUs with bf16 instructions, conv chains; else ValueError).
    """
    return _build(net, run_config(net, ctxs, dtype=dtype, accel=accel, hybridize=hybridize))


def _build(net, config):
    plain = plain_objective(net, config.hybridize)
    if config.hybridize:
        fast = fast_path.objective(net, config.ctxs, objective, fallback=plain,
                                   dtype=config.dtype, mode=config.accel)
        if fast is not None:
            return fast
    return plain


def plain_objective(net, hybridize=True):
    """:func:`forward` as written: one static graph where ``net`` is a HybridBlock (or
    the books' ``nn.Sequential`` of HybridBlocks) and ``hybridize``; else imperative."""
    if type(net) is nn.Sequential and all(isinstance(b, gluon.HybridBlock)
                                          for b in net._children.values()):
        # the books' nn.Sequential LeNet (exactly: a subclass may have its own
        # forward): the same layers and Parameters in a graph
        view = nn.HybridSequential(prefix=net.prefix)
        view.add(*net._children.values())
        net = view
    if not isinstance(net, gluon.HybridBlock):
        return functools.partial(forward, net)  # plain Blocks cannot sit in a graph
    graph = _Graph(net, objective)
    if hybridize:
        graph.hybridize(static_alloc=True, static_shape=True)
    return graph
