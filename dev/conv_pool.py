"""LeNet's conv blocks, our two operators (gluon_classics/accel/conv_pool.cc): their numpy
reference, its check and their timing, as llm.c's dev/ keeps a kernel's.

    python -m dev.conv_pool check         the reference against MXNet's own operators, then
                                          ours against the reference (where they build)
    python -m dev.conv_pool time [--batch 256] [--repeats 30]
                                          MXNet's operators and ours, through MXNet
    python -m dev.conv_pool time-native [--batch 256] [--repeats 30]
                                          ours outside MXNet: bench_conv_pool.cc, built by
                                          dev/Makefile as build.py builds the operators

Each LeNet conv block is three steps, and so is its gradient, in reverse:

    z = conv(x, w) + b        a convolution, stride 1, ``pad`` zeros around x
    a = act(z)                sigmoid, relu or identity
    y = pool(a)               max or average over q x q windows, stride q, no padding
                              (rows and columns past the last whole window are dropped)

``gluon_classics_conv_pool`` is the first block (x has one channel): it pads y
with zero maps up to ``out_channels`` and computes no gradient for x (zeros).
``gluon_classics_conv_pool_maps`` is a later block (x has C maps) and computes
x's gradient too.

Max pooling's gradient goes to one entry per window, chosen as conv_pool.cc
chooses it: scanning the window's rows, then its columns, an entry takes over
only where it is strictly larger than the one held. So among equal maxima the
first (in row-major order) gets the gradient, as in MXNet's Pooling.

NaN as MXNet's operators treat it: max pooling starts from the dtype's lowest
float and skips NaN (NaN and -inf count as ``LOWEST``: a window of NaNs gives
``LOWEST`` and its first entry the gradient); relu makes NaN 0 (gradient 0);
sigmoid, identity and average pooling keep it.

The reference is written to be read, not to be fast: float64 throughout, one numpy
expression per kernel tap. tests/test_reference.py checks ours against it in many more
shapes (ties, NaN, odd sizes). Threads: ``OMP_NUM_THREADS``, as in training.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

LOWEST = float(np.finfo(np.float32).min)  # the operators' dtype (a float64 test sets its own)

__all__ = ['conv', 'conv_backward', 'activate', 'activation_slope', 'pool', 'pool_backward',
           'block', 'block_backward', 'conv_pool', 'conv_pool_backward', 'conv_pool_maps',
           'conv_pool_maps_backward', 'LENET', 'check', 'time_all', 'time_native']


def conv(x, w, b, pad):
    """z[n, f, i, j] = b[f] + sum over c, di, dj of w[f, c, di, dj] * xp[n, c, i + di, j + dj],
    xp being x with ``pad`` zeros on every side. x (N, C, H, W), w (F, C, k, k)."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = xp.shape[2] - k + 1, xp.shape[3] - k + 1
    z = np.zeros((x.shape[0], w.shape[0], ho, wo)) + b[None, :, None, None]
    for di in range(k):
        for dj in range(k):  # every output sees the input shifted by (di, dj), times one tap
            z += np.einsum('nchw,fc->nfhw', xp[:, :, di:di + ho, dj:dj + wo], w[:, :, di, dj])
    return z


def conv_backward(dz, x, w, pad):
    """(dx, dw, db) from dz = dL/dz: each tap's product, taken back to x and to w."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = dz.shape[2], dz.shape[3]
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for di in range(k):
        for dj in range(k):
            window = (slice(None), slice(None), slice(di, di + ho), slice(dj, dj + wo))
            dw[:, :, di, dj] = np.einsum('nfhw,nchw->fc', dz, xp[window])
            dxp[window] += np.einsum('nfhw,fc->nchw', dz, w[:, :, di, dj])
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]  # the zeros' gradient is dropped
    return dx, dw, dz.sum(axis=(0, 2, 3))


def activate(z, act):
    if act == 'sigmoid':
        return 1 / (1 + np.exp(-z))
    if act == 'relu':
        return np.where(z > 0, z, 0.0)  # NaN -> 0, as MXNet's relu
    assert act == 'identity', act
    return z.copy()


def activation_slope(a, act):
    """d act / dz, written with the activation's value a (as the kernels keep a, not z)."""
    if act == 'sigmoid':
        return a * (1 - a)
    if act == 'relu':
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def _windows(a, q):
    """a (N, F, H, W) as (N, F, H // q, W // q, q * q): each window's entries in row-major order."""
    n, f, h, w = a.shape
    py, px = h // q, w // q
    blocks = a[:, :, :py * q, :px * q].reshape(n, f, py, q, px, q)
    return blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, f, py, px, q * q)


def _floored(win):
    """NaN and anything below LOWEST as LOWEST: MXNet's max pooling never takes them."""
    return np.where(win >= LOWEST, win, LOWEST)


def pool(a, kind, q):
    """y[n, f, r, c] = the max or the mean of a's q x q window at (r * q, c * q)."""
    win = _windows(a, q)
    return _floored(win).max(axis=-1) if kind == 'max' else win.mean(axis=-1)


def _first_maximum(win):
    """The index (row-major) of each window's entry taking the max pool's gradient."""
    win = _floored(win)
    best = np.zeros(win.shape[:-1], dtype=np.int64)
    held = win[..., 0]
    for t in range(1, win.shape[-1]):
        larger = win[..., t] > held  # strictly: ties stay with the entry held
        best = np.where(larger, t, best)
        held = np.where(larger, win[..., t], held)
    return best


def pool_backward(dy, a, kind, q):
    """da: each window's gradient to its first maximum (max), or spread evenly (avg);
    zero on the rows and columns under no window."""
    n, f, py, px = dy.shape
    if kind == 'max':
        spread = np.zeros((n, f, py, px, q * q))
        np.put_along_axis(spread, _first_maximum(_windows(a, q))[..., None], dy[..., None], -1)
    else:
        spread = np.repeat(dy[..., None] / (q * q), q * q, axis=-1)
    da = np.zeros(a.shape)
    blocks = spread.reshape(n, f, py, px, q, q).transpose(0, 1, 2, 4, 3, 5)
    da[:, :, :py * q, :px * q] = blocks.reshape(n, f, py * q, px * q)
    return da


def block(x, w, b, pad, act, kind, q):
    """y = pool(act(conv(x, w) + b)), in float64."""
    x, w, b = (np.asarray(t, dtype=np.float64) for t in (x, w, b))
    return pool(activate(conv(x, w, b, pad), act), kind, q)


def block_backward(dy, x, w, b, pad, act, kind, q):
    """(dx, dw, db) of L, given dy = dL/dy: back through the pooling, the activation, the conv."""
    dy, x, w, b = (np.asarray(t, dtype=np.float64) for t in (dy, x, w, b))
    a = activate(conv(x, w, b, pad), act)
    dz = pool_backward(dy, a, kind, q) * activation_slope(a, act)
    return conv_backward(dz, x, w, pad)


def conv_pool(x, w, b, pad, act, pool, pool_size, out_channels):
    """gluon_classics_conv_pool: x (N, 1, H, W); y's maps past w's filters are zeros."""
    y = block(x, w, b, pad, act, pool, pool_size)
    zeros = np.zeros((y.shape[0], out_channels - y.shape[1]) + y.shape[2:])
    return np.concatenate([y, zeros], axis=1)


def conv_pool_backward(dy, x, w, b, pad, act, pool, pool_size):
    """(dx, dw, db): dx is zeros (the operator computes none); dy's zero maps are ignored."""
    _, dw, db = block_backward(dy[:, :w.shape[0]], x, w, b, pad, act, pool, pool_size)
    return np.zeros(np.shape(x)), dw, db


def conv_pool_maps(x, w, b, pad, act, pool, pool_size):
    """gluon_classics_conv_pool_maps: x (N, C, H, W)."""
    return block(x, w, b, pad, act, pool, pool_size)


def conv_pool_maps_backward(dy, x, w, b, pad, act, pool, pool_size):
    """(dx, dw, db)."""
    return block_backward(dy, x, w, b, pad, act, pool, pool_size)


# LeNet's two conv blocks: operator -> (x's shape without the batch, weight's shape, pad)
LENET = {'conv_pool': ((1, 28, 28), (6, 1, 5, 5), 2),
         'conv_pool_maps': ((6, 14, 14), (16, 6, 5, 5), 0)}
KINDS = (('sigmoid', 'avg'), ('relu', 'max'))  # d2l's LeNet's, and the modern one's


def _inputs(op, batch, rng):
    """x, w and b of LeNet's block ``op`` at ``batch``, and a gradient dy of its output."""
    image, ws, pad = LENET[op]
    x = rng.standard_normal((batch, *image))
    w, b = rng.standard_normal(ws) * 0.2, rng.standard_normal(ws[0])
    side = (image[1] + 2 * pad - ws[2] + 1) // 2
    return x, w, b, rng.standard_normal((batch, ws[0], side, side))


def _block(F, op, how, act, kind):
    """LeNet's block ``op`` in ``F`` (``mx.nd`` or ``mx.sym``) as ``f(x, w, b)``: our
    operator (``how='ours'``) or MXNet's Convolution, Activation and Pooling."""
    from gluon_classics.accel import kernels
    _, ws, pad = LENET[op]
    extra = dict(out_channels=ws[0]) if op == 'conv_pool' else {}

    def ours(x, w, b):
        return getattr(F, kernels.OPERATORS[op])(x, w, b, pad=pad, act=act, pool=kind,
                                                 pool_size=2, **extra)

    def mxnets(x, w, b):
        z = F.Convolution(x, w, b, kernel=ws[2:], pad=(pad, pad), num_filter=ws[0])
        return F.Pooling(F.Activation(z, act_type=act), pool_type=kind, kernel=(2, 2),
                         stride=(2, 2))
    return ours if how == 'ours' else mxnets


def _reference(op, how, act, kind, x, w, b, dy):
    """[y, dx, dw, db] as ``_block(op, how)`` computes them: our operator's (``conv_pool``
    computes no dx), or the three steps'."""
    _, ws, pad = LENET[op]
    args = (pad, act, kind, 2)
    if how == 'ours':
        extra = (ws[0],) if op == 'conv_pool' else ()
        forward, backward = globals()[op], globals()[op + '_backward']
        return [forward(x, w, b, *args, *extra), *backward(dy, x, w, b, *args)]
    return [block(x, w, b, *args), *block_backward(dy, x, w, b, *args)]


def _run(function, arrays, dtype, dy):
    """[y, dx, dw, db] of ``function(x, w, b)`` recorded in MXNet, backward from ``dy``."""
    from gluon_classics import mx
    from mxnet import autograd
    ins = [mx.nd.array(t, dtype=dtype) for t in arrays]
    for t in ins:
        t.attach_grad()
    with autograd.record():
        y = function(*ins)
    y.backward(mx.nd.array(dy, dtype=dtype))
    return [a.asnumpy() for a in [y] + [t.grad for t in ins]]


# who is checked against the reference: in which dtype, within what of the largest value
SIDES = (('mxnet', 'float64', 1e-10), ('ours', 'float32', 1e-4))


def check():
    """MXNet's Convolution + Activation + Pooling against the reference (to rounding), then
    our operators (where they build), LeNet's blocks at batch 4: one line each, and exit
    status 1 if any is off."""
    from gluon_classics import mx
    from gluon_classics.accel import kernels
    rng, failed = np.random.default_rng(0), False
    sides = SIDES if kernels.load() else SIDES[:1]
    print('largest difference from the reference, over its largest value, of y dx dw db:')
    for op in LENET:
        for act, kind in KINDS:
            x, w, b, dy = _inputs(op, 4, rng)
            for how, dtype, tolerance in sides:
                got = _run(_block(mx.nd, op, how, act, kind), (x, w, b), dtype, dy)
                want = _reference(op, how, act, kind, x, w, b, dy)
                errors = [float(np.abs(g - r).max() / (np.abs(r).max() or 1.0))
                          for g, r in zip(got, want)]
                off = max(errors) > tolerance
                failed |= off
                print(f'{how:5} {op:14} {act + "/" + kind:11} {dtype:7} '
                      f'{" ".join(f"{e:.1e}" for e in errors)}'
                      f'{f"  over {tolerance:g}" if off else ""}')
    if len(sides) == 1:
        print(f'ours not checked: {kernels.status()}')
    return int(failed)


def _seconds(run, repeats):
    """(median, best) seconds of run(), after 3 runs to warm up."""
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), min(times)


def time_block(op, how, act, kind, batch, repeats):
    """One row per phase: LeNet's block ``op`` as a bound executor (MXNet's graph path),
    the first block computing no gradient for x, as our operator computes none."""
    from gluon_classics import mx
    image, ws, pad = LENET[op]
    rng = np.random.default_rng(0)
    shapes = dict(x=(batch, *image), w=ws, b=(ws[0],))
    grad_req = dict(x='null' if op == 'conv_pool' else 'write', w='write', b='write')
    sym = _block(mx.sym, op, how, act, kind)(mx.sym.var('x'), mx.sym.var('w'), mx.sym.var('b'))
    ex = sym.simple_bind(mx.cpu(), grad_req=grad_req, **shapes)
    for arg, scale in (('x', 1.0), ('w', 0.2), ('b', 1.0)):
        ex.arg_dict[arg][:] = rng.standard_normal(shapes[arg]) * scale
    dy = mx.nd.array(rng.standard_normal(ex.outputs[0].shape))

    def forward():
        ex.forward(is_train=True)
        mx.nd.waitall()

    def backward():
        ex.backward(dy)
        mx.nd.waitall()

    forward()
    side = image[1] + 2 * pad - ws[2] + 1
    conv_flops = 2.0 * batch * np.prod(ws) * side * side
    backward_flops = conv_flops * (2 if op == 'conv_pool_maps' else 1)  # dw, and dx
    for phase, run, flops in (('forward', forward, conv_flops),
                              ('backward', backward, backward_flops)):
        median, best = _seconds(run, repeats)
        print(f'{how:6} {op:15} {act + "/" + kind:12} {phase:9} {median / batch * 1e6:10.2f} '
              f'{best / batch * 1e6:10.2f} {flops / median / 1e9:9.1f}')


def time_all(batch, repeats):
    """MXNet's operators and ours (where they build), the columns of bench_conv_pool.cc."""
    from gluon_classics.accel import kernels
    hows = ['mxnet'] + (['ours'] if kernels.load() else [])
    print(f'batch {batch}, {repeats} repeats, OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")}, ours: {kernels.status()}')
    print(f'{"how":6} {"operator":15} {"act/pool":12} {"phase":9} {"us/image":>10} {"best":>10} '
          f'{"GFLOP/s":>9}')
    for op in LENET:
        for act, kind in KINDS:
            for how in hows:
                time_block(op, how, act, kind, batch, repeats)
    return 0


def time_native(batch, repeats):
    """bench_conv_pool.cc through dev/Makefile, with this Python's MXNet headers."""
    return subprocess.run(['make', '-C', os.path.dirname(os.path.abspath(__file__)), 'run',
                           f'PYTHON={sys.executable}', f'BATCH={batch}',
                           f'REPEATS={repeats}']).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m dev.conv_pool',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('what', choices=('check', 'time', 'time-native'))
    parser.add_argument('--batch', type=int, default=256, help='time: the batch (256)')
    parser.add_argument('--repeats', type=int, default=30, help='time: timed runs (30)')
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error('--batch and --repeats: at least 1')
    if args.what == 'check':
        return check()
    return (time_all if args.what == 'time' else time_native)(args.batch, args.repeats)


if __name__ == '__main__':
    sys.exit(main())
