"""Our operators (conv_pool.cc) against dev/conv_pool.py's numpy references,
forward and every gradient, in LeNet's shapes and a few odd ones; and the
references against MXNet's own Convolution, Activation and Pooling, so that
they are checked too (and are what is checked where no compiler builds ours).
"""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from dev import conv_pool as reference
from gluon_classics.accel import build, kernels
from helpers import assert_close, no_compiler_status, without_kernels

CASES = {  # id: (operator, x's shape, weight's shape, attributes)
    'LeNet 1 (d2l)': ('conv_pool', (8, 1, 28, 28), (6, 1, 5, 5),
                      dict(pad=2, act='sigmoid', pool='avg', pool_size=2, out_channels=6)),
    'LeNet 1 relu max, 8 maps out': ('conv_pool', (8, 1, 28, 28), (6, 1, 5, 5),
                                     dict(pad=2, act='relu', pool='max', pool_size=2,
                                          out_channels=8)),
    'LeNet 2 (d2l)': ('conv_pool_maps', (8, 6, 14, 14), (16, 6, 5, 5),
                      dict(pad=0, act='sigmoid', pool='avg', pool_size=2)),
    'LeNet 2 relu max': ('conv_pool_maps', (8, 6, 14, 14), (16, 6, 5, 5),
                         dict(pad=0, act='relu', pool='max', pool_size=2)),
    # a row and a column under no window
    '33px k3 pool4 identity max': ('conv_pool', (4, 1, 33, 33), (5, 1, 3, 3),
                                   dict(pad=1, act='identity', pool='max', pool_size=4,
                                        out_channels=8)),
    '9 maps 20px, 17 filters k7 pool3': ('conv_pool_maps', (4, 9, 20, 20), (17, 9, 7, 7),
                                         dict(pad=3, act='relu', pool='max', pool_size=3)),
    '2 maps 9px, k1 pool1 sigmoid': ('conv_pool_maps', (3, 2, 9, 9), (3, 2, 1, 1),
                                     dict(pad=0, act='sigmoid', pool='avg', pool_size=1)),
}
# x of zeros and ones and one nonzero tap per filter (map 0's centre): many
# windows hold equal maxima whose inputs differ, so the pick shows in dw (and dx)
TIES = {
    'ties, first block': ('conv_pool', (8, 1, 28, 28), (6, 1, 5, 5),
                          dict(pad=2, act='sigmoid', pool='max', pool_size=2, out_channels=6)),
    'ties, second block': ('conv_pool_maps', (8, 6, 14, 14), (16, 6, 5, 5),
                           dict(pad=0, act='identity', pool='max', pool_size=2)),
}
CASES.update(TIES)
# a few NaN pixels (maps): max pooling skips them as MXNet's does (a window of NaNs
# gives float's lowest), relu makes them 0, sigmoid and identity keep them
NANS = {
    'NaN pixels, relu max': ('conv_pool', (4, 1, 28, 28), (6, 1, 5, 5),
                             dict(pad=2, act='relu', pool='max', pool_size=2, out_channels=8)),
    'NaN pixels, sigmoid max': ('conv_pool', (4, 1, 28, 28), (6, 1, 5, 5),
                                dict(pad=0, act='sigmoid', pool='max', pool_size=2,
                                     out_channels=6)),
    'NaN maps, identity max': ('conv_pool_maps', (4, 6, 14, 14), (16, 6, 5, 5),
                               dict(pad=0, act='identity', pool='max', pool_size=2)),
    'NaN maps, relu max pool3': ('conv_pool_maps', (4, 6, 14, 14), (16, 6, 3, 3),
                                 dict(pad=1, act='relu', pool='max', pool_size=3)),
}
CASES.update(NANS)


def _inputs(name):
    """x, weight, bias and the output's gradient dy, float32, from a seed of their own."""
    op, xs, ws, attrs = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.2).astype(np.float32)
    if name in TIES:
        x = rng.integers(0, 2, xs).astype(np.float32)
        w[:] = 0
        w[:, 0, ws[2] // 2, ws[3] // 2] = rng.standard_normal(ws[0])
    if name in NANS:  # one NaN in images 0 and 2 (every map)
        x[::2, :, 9, 7] = np.nan
    b = rng.standard_normal(ws[0]).astype(np.float32)
    channels = attrs.get('out_channels', ws[0])
    q, pad = attrs['pool_size'], attrs['pad']
    ys = (xs[0], channels, (xs[2] + 2 * pad - ws[2] + 1) // q, (xs[3] + 2 * pad - ws[3] + 1) // q)
    return x, w, b, rng.standard_normal(ys).astype(np.float32)


def _reference(name, x, w, b, dy):
    op, _, _, attrs = CASES[name]
    forward = getattr(reference, op)
    backward = getattr(reference, op + '_backward')
    grads_attrs = {k: v for k, v in attrs.items() if k != 'out_channels'}
    return [forward(x, w, b, **attrs), *backward(dy, x, w, b, **grads_attrs)]


@pytest.mark.parametrize('name', list(CASES))
def test_our_operators_match_the_reference(name):
    if not kernels.load():  # no compiler: not there; the test below checks the reference still
        assert build.find_compiler() is None, kernels.status()
        assert kernels.status() == no_compiler_status()
        without_kernels()
    op, _, _, attrs = CASES[name]
    x, w, b, dy = _inputs(name)
    ins = [mx.nd.array(t) for t in (x, w, b)]
    for t in ins:
        t.attach_grad()
    with autograd.record():
        y = getattr(mx.nd, kernels.OPERATORS[op])(*ins, **attrs)
    y.backward(mx.nd.array(dy))
    want = _reference(name, x, w, b, dy)
    for what, got, ref in zip(('y', 'dx', 'dw', 'db'), [y] + [t.grad for t in ins], want):
        assert_close(got.asnumpy(), ref, what)
    if op == 'conv_pool':  # computes no gradient for x, and zero maps past the filters
        assert not ins[0].grad.asnumpy().any()
        assert not y.asnumpy()[:, w.shape[0]:].any()


@pytest.mark.parametrize('name', list(CASES))
def test_the_reference_matches_mxnets_operators(name, monkeypatch):
    """In float64 MXNet's Convolution, Activation and Pooling agree to rounding,
    max pooling's ties included. NaN cases in float32: MXNet's float64 operators (its
    own, not oneDNN's) keep NaN through relu, its float32 ones, the plain graph's, do not."""
    dtype = 'float32' if name in NANS else 'float64'
    monkeypatch.setattr(reference, 'LOWEST', float(np.finfo(dtype).min))
    _, _, ws, attrs = CASES[name]
    x, w, b, dy = (t.astype(dtype) for t in _inputs(name))
    dy = dy[:, :ws[0]]  # the block's own maps (the first block pads them with zeros)
    ins = [mx.nd.array(t, dtype=dtype) for t in (x, w, b)]
    for t in ins:
        t.attach_grad()
    pad, act, q = attrs['pad'], attrs['act'], attrs['pool_size']
    with autograd.record():
        h = mx.nd.Convolution(*ins, kernel=ws[2:], pad=(pad, pad), num_filter=ws[0])
        if act != 'identity':
            h = mx.nd.Activation(h, act_type=act)
        y = mx.nd.Pooling(h, pool_type=attrs['pool'], kernel=(q, q), stride=(q, q))
    y.backward(mx.nd.array(dy, dtype=dtype))
    args = (pad, act, attrs['pool'], q)
    want = [reference.block(x, w, b, *args), *reference.block_backward(dy, x, w, b, *args)]
    for what, got, ref in zip(('y', 'dx', 'dw', 'db'), [y] + [t.grad for t in ins], want):
        assert_close(got.asnumpy(), ref, what, rtol=1e-10 if dtype == 'float64' else 1e-4)
