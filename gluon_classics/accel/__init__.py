"""The fast path: the training graph of a conv chain in oneDNN's shapes, on our own operators.

One entry, :func:`objective`, gives the training loop a faster
``(X, y) -> head(net(X), y)`` for ``net``, or None where there is none. The
loop hands it ``head``, the chapter's objective (loss and correct count), and
its mode, resolved where the run starts; the accelerator replaces only the
computation of ``net(X)``. It computes exactly the plain graph's function,
gradients included (the images' too), or steps aside: it checks at every call
that the net is still the chain it was built for, with the same
``grad_req``\\ s, and whether the images need a gradient; what changed gets a
graph of its own, and a net that is no longer such a chain, or a batch with an
infinite pixel, trains on its own forward, said in one line.

=========  ==========================================================
``on``     the rewritten graph, LeNet's conv blocks on our operators (default)
``graph``  the rewritten graph on MXNet's operators only
``off``    the plain graph: ``net(X)`` and the loss, as written
=========  ==========================================================

Modules: :mod:`.graph` (the rewrite), :mod:`.bfloat16` (where bfloat16 may
run and where it paid), :mod:`.kernels` (loading our operators),
:mod:`.build` (compiling them: cache, lock, checks), ``conv_pool.cc`` (the
operators).
"""
import ctypes
import sys

from .. import _backend  # noqa: F401  (MXNet through its checks, first)
import mxnet as mx
import numpy as np
from mxnet.base import _LIB, SymbolHandle

from ..choices import ACCEL_MODES as MODES  # the modes objective() takes
from .bfloat16 import DTYPES, check_dtype
from .graph import build_graph, chain_layers, forwards, supported

__all__ = ['objective', 'MODES', 'DTYPES', 'check_dtype', 'FastObjective', 'GradBuffers',
           'forwards']


def _needs_grad(x):
    """Whether autograd will want dL/dx: ``x`` has a gradient buffer or a recorded history."""
    x = x.as_nd_ndarray() if isinstance(x, mx.np.ndarray) else x
    handle = SymbolHandle()
    if _LIB.MXAutogradGetSymbol(x.handle, ctypes.byref(handle)) != 0:
        return False  # "not part of a computation graph"
    _LIB.MXSymbolFree(handle)
    return True


def _has_inf(x):
    """Whether ``x`` holds an infinite value. One sum (about 0.1 ms for 256 LeNet images):
    any infinity makes it inf or NaN; only then (a NaN, or an overflow) a second look."""
    x = (x.as_nd_ndarray() if isinstance(x, mx.np.ndarray) else x).asnumpy()
    with np.errstate(over='ignore', invalid='ignore'):  # the overflow is the answer
        return not np.isfinite(x.sum()) and bool(np.isinf(x).any())


class GradBuffers:
    """The gradient arrays of ``params`` now, equal to another only where each is the same
    array. Held, so an array replaced since (``grad_req`` changed, ``force_reinit``) cannot
    come back under a reused id."""

    __slots__ = ('grads',)

    def __init__(self, params):
        self.grads = [p._grad for p in params]

    def __eq__(self, other):
        return isinstance(other, GradBuffers) and len(self.grads) == len(other.grads) and \
            all(a is b for a, b in zip(self.grads, other.grads))

    __hash__ = None


def _say(text):
    print(f'gluon_classics: {text}', file=sys.stderr, flush=True)


class FastObjective:
    """``(X, y) -> head(net(X), y)`` on the rewritten graph, checked per call.

    The graph is keyed by what it was built from: the chain's layers, their
    Parameters' ``grad_req`` (our operators write their gradients, so 'add'
    keeps MXNet's operators) and gradient buffers, and whether ``X`` needs a
    gradient. A call with another key builds its graph anew; a net that is no
    longer a chain the graph computes, and a batch with an infinite pixel, go
    to ``fallback`` (the plain graph), each said once.
    """

    def __init__(self, net, head, dtype, own_kernels, fallback, graph, log=_say):
        self.net, self.head, self.dtype, self.own_kernels = net, head, dtype, own_kernels
        self.fallback, self.log, self._said = fallback, log, set()
        # ``graph``: the one objective() built, for images that need no gradient
        self._graph, self._key_built = graph, self._key(None)[0]

    def _key(self, X):
        """What the graph is built for, checked at every call (about 50 µs for LeNet)."""
        layers = chain_layers(self.net)
        if layers is None:
            return None, None
        params = [p for layer in layers for p in layer.params.values()]
        # the gradient lists themselves, held: a list replaced by another is a new buffer
        return (tuple(map(id, layers)), tuple(p.grad_req for p in params),
                GradBuffers(params), X is not None and _needs_grad(X)), layers

    def graph(self, X=None):
        """The graph a call with images ``X`` runs on (None: any that need no gradient),
        or None where it steps aside."""
        key, layers = self._key(X)
        if key != self._key_built:
            # A static CachedOp writes into the gradient buffers the Parameters had when it
            # was built (measured: stale or zero gradients after a grad_req change or
            # force_reinit), so new buffers get a new graph; and one graph at a time.
            self._graph, self._key_built = None, key
            if key is None or not supported(layers):
                self._step_aside(f'{type(self.net).__name__} is no longer a chain of float32 '
                                 f'plain layers (a hook, a replaced forward, a cast?): it '
                                 f'trains on its own forward')
            else:
                self._graph = build_graph(layers, self.head, self.dtype, self.own_kernels,
                                          input_grad=key[3])
        return self._graph

    def _step_aside(self, why):
        if why not in self._said:
            self._said.add(why)
            self.log(f'the fast path steps aside: {why}')

    def __call__(self, X, y):
        graph = self.graph(X)
        if graph is not None and _has_inf(X):
            # padded filters (zero weights) meet the pixel: 0 x inf is NaN where the plain
            # graph's sums stay infinite, and its sigmoids or poolings finite
            self._step_aside('images with an infinite pixel: such batches train on the '
                             "net's own forward (padded filters would make 0 x inf = NaN)")
            graph = None
        return (graph or self.fallback)(X, y)


def objective(net, ctxs, head, fallback, dtype='float32', mode='on'):
    """The fast training graph ``(X, y) -> head(net(X), y)`` of ``net`` on ``ctxs``, or
    None where there is none.

    There is one on CPU contexts with oneDNN, for nets whose forward is a
    chain of Conv2D, pooling, Dense and Dropout layers (LeNet in all its
    variants, AlexNet, Sequential chains), where some layer needs rewriting,
    in float32; bfloat16 always gets one. ``head(y_hat, y)``: the objective,
    as the caller defines it; ``fallback(X, y)`` serves the calls it steps
    aside from (the caller's plain graph). ``dtype`` and ``mode`` (:data:`MODES`)
    are the caller's, already checked (:func:`check_dtype`). Deferred shapes
    must be known. Call it under ``autograd.record()``.
    """
    if dtype == 'float32' and mode == 'off':
        return None
    if not all(c.device_type == 'cpu' for c in ctxs):
        return None
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return None
    layers = chain_layers(net)
    if layers is None or not supported(layers):
        return None
    own = mode == 'on'
    graph = build_graph(layers, head, dtype, own)
    if graph is None:
        return None  # float32 AlexNet and friends: already in oneDNN's shapes
    return FastObjective(net, head, dtype, own, fallback, graph)
