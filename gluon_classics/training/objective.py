"""The loop's forward pass as one graph: ``net(X)``, the loss and the correct count.

:func:`~gluon_classics.training.loop.forward` is what the loop trains, as the
chapter writes it. Run batch by batch in Python it costs a call per layer and
an ``asscalar`` per batch; here it becomes one static graph
(:func:`plain_objective`), or the accelerator's exact rewrite of that graph
where it has one (:func:`gluon_classics.accel.objective`).
"""
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

from .. import accel as fast_path
from ..utils.devices import ctx_list
from .arrays import legacy

__all__ = ['compile_forward', 'make_objective', 'plain_objective']


class _Objective(gluon.HybridBlock):
    """Summed softmax cross-entropy and number of correct predictions, as one graph."""

    def __init__(self, net):
        super().__init__(prefix='')
        self.net = net
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
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
        # loop.forward in graph form
        y_hat = self.net(X)
        y = y.astype('float32')
        # the count in float32 whatever the net's dtype, labels (N,) or (N, 1)
        hits = y_hat.argmax(axis=1).astype('float32') == y.reshape((-1,))
        if mx.util.is_np_array():  # the same graph: == gives bool there
            return self.loss(y_hat, y).sum(), hits.astype('float32').sum()
        return F.sum(self.loss(y_hat, y)), F.sum(hits)

    def hybridize(self, active=True, **kwargs):
        # This graph only: the user's net keeps its own mode (and cached graph).
        children, self._children = self._children, {}
        try:
            super().hybridize(active, **kwargs)
        finally:
            self._children = children


def compile_forward(net, ctxs, hybridize=True, dtype='float32', accel=None):
    """``(X, y) -> (summed loss, correct count)`` for the loop, built at the first batch.

    Built then because deferred shapes are known only from a batch; settings
    (``dtype``, ``accel``) are the caller's, already checked.
    """
    built = {}  # per mode: a graph traced in numpy mode takes only mx.np arrays

    def forward(X, y):
        mode = mx.util.is_np_array()
        if mode not in built:
            if any(p._deferred_init for p in net.collect_params().values()):
                # train mode: in predict mode oneDNN would reorder the weights in
                # place to its own layout, which KVStores cannot read
                with autograd.pause(train_mode=True):
                    net(X)
            built[mode] = _build(net, ctxs, hybridize, dtype, accel)
        return built[mode](X, y)
    return forward


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
    return _build(net, ctx_list(ctxs), hybridize, dtype, fast_path.resolve_mode(accel))


def _build(net, ctxs, hybridize, dtype, accel):
    plain = plain_objective(net, hybridize)
    if hybridize:
        fast = fast_path.objective(net, ctxs, dtype, fallback=plain, accel=accel)
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
        from .loop import forward  # plain Blocks cannot sit in a graph: the loop's, as written

        def imperative(X, y):
            loss, correct = forward(net, X, y)
            return legacy(loss), correct
        return imperative
    objective = _Objective(net)
    if hybridize:
        objective.hybridize(static_alloc=True, static_shape=True)
    return objective
