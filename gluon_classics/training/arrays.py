"""Batches in either MXNet mode: the legacy ``nd`` arrays or numpy mode's ``mx.np``.

The d2l books use both (the 1st edition's ``nd``, the 2nd's ``npx.set_np()``);
the loop takes either, and keeps its sums as legacy arrays.
"""
import mxnet as mx
from mxnet import gluon

__all__ = ['in_mode', 'legacy', 'split']


def in_mode(x):
    """``x`` as the current mode's array (numpy mode or legacy): a view, no copy."""
    is_np = isinstance(x, mx.np.ndarray)
    if is_np != mx.util.is_np_array():
        return x.as_nd_ndarray() if is_np else x.as_np_ndarray()
    return x


def legacy(x):
    """The legacy view of a numpy-mode array, where the sums are kept."""
    return x.as_nd_ndarray() if isinstance(x, mx.np.ndarray) else x


def split(batch, ctxs):
    """``batch`` on each of ``ctxs``: the whole of it on one, an even share on several."""
    batch = in_mode(batch)
    if len(ctxs) == 1:
        return [batch.as_in_context(ctxs[0])]
    return gluon.utils.split_and_load(batch, ctxs, even_split=False)
