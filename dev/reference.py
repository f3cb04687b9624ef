"""Plain numpy references of our two operators (gluon_classics/accel/conv_pool.cc).

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

Written to be read, not to be fast: float64 throughout, one numpy expression
per kernel tap. ``python dev/reference.py`` checks these against MXNet's own
Convolution, Activation and Pooling.
"""
import numpy as np

LOWEST = float(np.finfo(np.float32).min)  # the operators' dtype (the float64 check sets its own)

__all__ = ['conv', 'conv_backward', 'activate', 'activation_slope', 'pool', 'pool_backward',
           'block', 'block_backward', 'conv_pool', 'conv_pool_backward', 'conv_pool_maps',
           'conv_pool_maps_backward']


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


def _check_against_mxnet():
    """These references against MXNet's own operators, LeNet's shapes (a short self-test)."""
    import mxnet as mx
    from mxnet import autograd
    rng = np.random.default_rng(0)
    for (xs, ws, pad), act, kind in [(((4, 1, 28, 28), (6, 1, 5, 5), 2), 'sigmoid', 'avg'),
                                     (((4, 6, 14, 14), (16, 6, 5, 5), 0), 'relu', 'max')]:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws) * 0.2, rng.standard_normal(ws[0])
        ins = [mx.nd.array(t, dtype='float64') for t in (x, w, b)]
        for t in ins:
            t.attach_grad()
        with autograd.record():
            z = mx.nd.Convolution(*ins, kernel=ws[2:], pad=(pad, pad), num_filter=ws[0])
            y = mx.nd.Pooling(mx.nd.Activation(z, act_type=act), pool_type=kind, kernel=(2, 2),
                              stride=(2, 2))
        dy = rng.standard_normal(y.shape)
        y.backward(mx.nd.array(dy, dtype='float64'))
        got = [block(x, w, b, pad, act, kind, 2), *block_backward(dy, x, w, b, pad, act, kind, 2)]
        for name, mine, theirs in zip(('y', 'dx', 'dw', 'db'), got,
                                      [y] + [t.grad for t in ins]):
            error = np.abs(mine - theirs.asnumpy()).max() / np.abs(mine).max()
            print(f'{xs} {act} {kind} {name}: largest difference {error:.1e} of the largest value')
            assert error < 1e-10, name


if __name__ == '__main__':
    _check_against_mxnet()
