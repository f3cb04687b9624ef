"""Layer-by-layer output shapes and parameter counts, as the chapters print them.

Shapes come from MXNet's symbolic shape inference, so nothing is initialized or
computed: a net can be inspected before ``net.initialize(init.Xavier())``.
"""
import contextlib
import io
import math
from collections import Counter

from .. import _backend  # noqa: F401  (MXNet through its checks, first)
import mxnet as mx
from mxnet.gluon import HybridBlock, nn

__all__ = ['leaves', 'layer_shapes', 'print_shapes', 'count_parameters', 'check_input_shape']


def leaves(net):
    """The layers of ``net`` in forward order.

    The net's own children and any (Hybrid)Sequential inside are walked
    through; every other block (Conv2D with its activation, say) is one layer.
    """
    def walk(block):
        if isinstance(block, (nn.Sequential, nn.HybridSequential)):
            return [layer for child in block._children.values() for layer in walk(child)]
        return [block]
    children = list(net._children.values())
    if not children or isinstance(net, (nn.Sequential, nn.HybridSequential)):
        return walk(net)
    return [layer for child in children for layer in walk(child)]


def _layer_names(layers):
    # Gluon's name counter is global to the process (the second LeNet built is
    # conv2, conv3...), so number each kind of layer within this net instead.
    seen = Counter()
    names = []
    for layer in layers:
        kind = layer._alias()
        names.append(f'{kind}{seen[kind]}')
        seen[kind] += 1
    return names


def _as_shape(input_shape):
    shape = getattr(input_shape, 'shape', input_shape)
    return tuple(int(d) for d in shape)


def _expected(net):
    expected = getattr(net, 'input_shape', None)
    return f' (it expects (N, {", ".join(map(str, expected))}))' if expected else ''


def _param_shapes(block):
    """Shapes of the parameters whose shape is already fully known."""
    return {p.name: p.shape for p in block.collect_params().values()
            if p.shape and all(d > 0 for d in p.shape)}


def _infer(block, shape):
    data = mx.sym.var('data')
    if mx.util.is_np_array():  # numpy mode: Gluon layers take only numpy symbols
        data = data.as_np_ndarray()
    out = block(data)
    with contextlib.redirect_stdout(io.StringIO()):  # MXNet prints its own dump on failure
        arg_shapes, out_shapes, _ = out.infer_shape(data=shape, **_param_shapes(block))
    if arg_shapes is None or out_shapes is None or any(d == 0 for d in out_shapes[0]):
        raise mx.base.MXNetError('shape could not be inferred')
    return dict(zip(out.list_arguments(), arg_shapes)), out_shapes[0]


def layer_shapes(net, input_shape, ctx=None):
    """Output shape of every layer of ``net`` for an input of ``input_shape``.

    Parameters
    ----------
    net : Block
        A chain of layers (a Sequential, or a block whose children run in order,
        like :class:`~gluon_classics.model_zoo.LeNet`).
    input_shape : tuple or NDArray
        Input shape, batch axis included, e.g. ``(1, 1, 28, 28)``.
    ctx : Context, optional
        Where to run layers that are not hybridizable (default ``mx.cpu()``).

    Returns
    -------
    list of (str, tuple)
        ``[('conv0', (1, 6, 28, 28)), ...]`` with layers numbered per kind.

    Raises
    ------
    ValueError
        If the input is too small or of the wrong shape for the network.
    """
    shape = _as_shape(input_shape)
    layers = leaves(net)
    result = []
    for name, layer in zip(_layer_names(layers), layers):
        try:
            if isinstance(layer, HybridBlock):
                _, shape = _infer(layer, shape)
            else:
                zeros = mx.np.zeros if mx.util.is_np_array() else mx.nd.zeros
                shape = layer(zeros(shape, ctx=ctx or mx.cpu())).shape
        except mx.base.MXNetError:
            raise ValueError(f'input shape {_as_shape(input_shape)} does not fit this network: '
                             f'{name} cannot take {shape}{_expected(net)}') from None
        result.append((name, tuple(shape)))
    return result


def print_shapes(net, input_shape, ctx=None):
    """Print ``conv0 output shape: (1, 6, 28, 28)``, one line a layer.

    Parameters are those of :func:`layer_shapes`.
    """
    for name, shape in layer_shapes(net, input_shape, ctx):
        print(f'{name} output shape: {shape}')


def count_parameters(net, input_shape=None):
    """Number of scalar parameters of ``net``.

    Parameters
    ----------
    net : HybridBlock
    input_shape : tuple, optional
        Needed only where layers infer their input size (Dense, Conv2D);
        defaults to ``(1,) + net.input_shape``.
    """
    shape = _as_shape(input_shape) if input_shape is not None else (1,) + net.input_shape
    check_input_shape(net, shape)
    args, _ = _infer(net, shape)
    return sum(math.prod(s) for name, s in args.items() if name != 'data')


def check_input_shape(net, input_shape):
    """Raise one clear ``ValueError`` if ``net`` cannot take ``input_shape``.

    Already known parameter shapes take part, so a trained LeNet given a
    resized batch is caught here rather than deep inside MXNet.
    """
    shape = _as_shape(input_shape)
    if len(shape) != 4:
        raise ValueError(f'input must be a batch (N, C, H, W); got shape {shape}{_expected(net)}')
    layer_shapes(net, shape)
    try:
        _infer(net, shape)
    except mx.base.MXNetError:
        raise ValueError(f'input shape {shape} does not fit the parameters of this '
                         f'network{_expected(net)}') from None
