"""The training graph of a conv chain, rewritten into shapes oneDNN runs fast.

MXNet 1.9's CPU kernels come from oneDNN, whose fast (jit) convolution and
pooling kernels work on blocks of 8 (AVX2) or 16 (AVX-512) channels. LeNet
falls off them twice: its first conv has 1 input channel (the weight gradient
drops to im2col + GEMM, which also stalls badly when a core is busy), and its
6-channel maps are not a multiple of 8 (conv, pooling and their gradients drop
to reference kernels). Measured on a 2-core CPU that doubles the time of a
training step.

This module computes the *same function* with friendlier shapes, from the
net's own Parameters (nothing is copied, the chapter's model is unchanged):

* a ``k x k`` conv on a 1-channel image becomes a ``k x 1`` conv over ``k``
  horizontally shifted copies of the image (made by a constant one-hot
  ``1 x k`` conv), so every conv has a multiple of 8 input channels;
* a layer with ``c`` maps is computed with ``c`` rounded up to a multiple of 8:
  the extra filters have zero weights and meet zero weights in the next conv,
  and are sliced away before a dense layer.

The padding blocks are graph constants, so they get no gradient and the
Parameters keep the chapter's shapes: gradients equal the plain graph's up to
float rounding (tests check the loss and every gradient).

It applies only where the net's forward provably is the chain of its layers
(:func:`chain_layers`); any other net trains on its own ``hybrid_forward``.

Where our own operators load (:mod:`.kernels`), LeNet's two conv blocks
(each conv with its activation and pooling) are computed by them instead
(``conv_pool.cc``: one pass per image, forward and backward);
:func:`_fused_blocks` says where.

The same graph can compute in bfloat16 (``dtype='bfloat16'``, opt-in): the
float32 Parameters are cast inside the graph, convolutions, dense layers,
activations and pooling run on oneDNN's avx512_bf16 kernels, dropout and the
loss stay float32, and gradients and the update are float32. That is *not*
the same function (every activation keeps 8 significant bits), so it is never
picked for the user: :func:`.bfloat16.check_dtype` says where it can run.
"""

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.contrib.amp.amp import bfloat16  # the dtype object amp_cast understands
from mxnet.gluon import nn

from . import kernels

__all__ = ['build_graph', 'chain_layers', 'supported', 'forwards', 'FORWARD_METHODS']

_BLOCK = 8
_SEQUENTIAL = (nn.Sequential, nn.HybridSequential)
_LAYERS = (nn.Conv2D, nn.MaxPool2D, nn.AvgPool2D, nn.Dense, nn.Dropout)


def _ceil8(c):
    return -(-c // _BLOCK) * _BLOCK


# A Block computes through these; one set on the instance replaces the class's function.
FORWARD_METHODS = ('__call__', 'forward', 'hybrid_forward')
_GENUINE = {}  # (class, its forward functions) -> whether each is its class body's own


def _hooked(block):
    return bool(block._forward_hooks or block._forward_pre_hooks)


def _patched(block):
    """Whether the instance replaced a forward method (``conv.hybrid_forward = ...``), or
    its class holds one set after the class was written (``nn.Conv2D.forward = ...``)."""
    own = vars(block)  # checked at every training call: three lookups, no set built
    return any(name in own for name in FORWARD_METHODS) or not _genuine(type(block))


def _genuine(cls):
    """Whether each forward method of ``cls`` is the one written in its defining class's body."""
    functions = tuple(getattr(cls, name, None) for name in FORWARD_METHODS)
    known = _GENUINE.get((cls, functions))
    if known is None:
        known = _GENUINE[cls, functions] = all(
            _written_in(cls, name, fn) for name, fn in zip(FORWARD_METHODS, functions))
    return known


def _written_in(cls, name, fn):
    """Whether ``fn`` is ``cls``'s ``name`` as the body of the class holding it defines it
    (not a function assigned to the class later, nor a wrapper of one)."""
    if fn is None:  # a plain Block has no hybrid_forward
        return True
    owner = next((c for c in cls.__mro__ if vars(c).get(name) is fn), None)
    return (owner is not None and not hasattr(fn, '__wrapped__')
            and getattr(fn, '__qualname__', None) == f'{owner.__qualname__}.{name}'
            and getattr(fn, '__module__', None) == owner.__module__)


def forwards(net):
    """The forward functions ``net`` and each block in it compute with now (an instance's
    own, else its class's), block by block: a static graph traced from others is stale."""
    found, blocks = [], [net]
    while blocks:
        block = blocks.pop()
        own = vars(block)
        found.append(tuple(own[name] if name in own else getattr(type(block), name, None)
                           for name in FORWARD_METHODS))
        blocks.extend(block._children.values())
    return tuple(found)


def _class_chain(cls):
    """The ``forward_chain`` declared by the class of ``cls``'s MRO that defines the forward
    (looked up at each call: a class may change)."""
    for c in cls.__mro__:
        if any(name in vars(c) for name in FORWARD_METHODS):
            return vars(c).get('forward_chain')
    return None


def _declared_chain(block):
    """The children names whose chain is ``block``'s forward, as its class says, or None.

    Only a ``forward_chain`` declared by the class that defines the forward
    counts: a subclass with its own forward (or an instance with a patched one,
    or a class with one set on it later) gets None.
    """
    return None if _patched(block) else _class_chain(type(block))


def chain_layers(net):
    """The layers whose chain provably is ``net``'s forward, in order; else None.

    Exact ``Sequential``/``HybridSequential`` containers run their children in
    order; a class declaring ``forward_chain`` beside its forward (the zoo's
    ``LeNet`` and ``AlexNet``: ``features`` then ``output``) runs those
    children. The layers are Conv2D, pooling, Dense and Dropout of exactly
    those types (a subclass may compute something else), without hooks and
    without a forward method replaced on the instance or set on a class.
    """
    if _hooked(net) or _patched(net):
        return None
    if type(net) in _LAYERS:
        act = getattr(net, 'act', None)
        if act is not None and (type(act) is not nn.Activation or _hooked(act) or _patched(act)):
            return None
        return [net]
    if type(net) in _SEQUENTIAL:
        parts = list(net._children.values())
    else:
        names = _declared_chain(net)
        if names is None:
            return None
        parts = [net._children.get(name) for name in names]
    layers = []
    for part in parts:
        sub = chain_layers(part) if part is not None else None
        if sub is None:
            return None
        layers += sub
    return layers


def supported(layers):
    """Whether the graph computes ``layers``: float32, NCHW, ungrouped, some Conv2D."""
    for layer in layers:
        if any(np.dtype(p.dtype) != np.float32 for p in layer.params.values()):
            return False
        if isinstance(layer, nn.Conv2D):
            kw = layer._kwargs
            if kw['num_group'] != 1 or kw['dilate'] != (1, 1) or kw['layout'] != 'NCHW':
                return False
        elif isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)) and layer._kwargs['layout'] != 'NCHW':
            return False
    return any(isinstance(layer, nn.Conv2D) for layer in layers)


def _act_type(layer):
    return layer.act._act_type if layer.act is not None else None


def _conv_plan(layer, zero_maps_in):
    """How to compute ``layer``: its rewritten kernel, padding and zero blocks."""
    out, cin, kh, kw = layer.weight.shape
    plan = dict(layer._kwargs, zero_in=zero_maps_in, shifts=0, zero_out=_ceil8(out) - out,
                act=_act_type(layer), channels=out)
    # The shift trick needs a true 1-channel input, not 1 map followed by zero maps.
    if cin == 1 and not zero_maps_in and kh == kw and plan['stride'] == (1, 1) and kh > 1:
        plan.update(shifts=kh, kernel=(kh, 1), pad=(plan['pad'][0], 0), shift_pad=plan['pad'][1])
        cin = _ceil8(kh)  # the shifted copies, padded to a block
    plan['weight_tail'] = (cin + zero_maps_in,) + plan['kernel']
    plan['num_filter'] = out + plan['zero_out']
    return plan


def _fused_block(conv, pool, first):
    """The plan of our operator computing ``conv`` then ``pool``, or None.

    Both operators take a square kernel up to ``kernels.MAX_KERNEL``, stride 1,
    bias, sigmoid/relu/no activation, then non-overlapping pooling without
    padding. The first block's (``conv_pool``) takes 1-channel images and a
    pooling size dividing ``kernels.TILE``; later blocks' (``conv_pool_maps``)
    take the maps our operator before them made. Gradients are written, not
    added, so parameters with ``grad_req='add'`` keep MXNet's operators.
    """
    if not (isinstance(conv, nn.Conv2D) and isinstance(pool, (nn.MaxPool2D, nn.AvgPool2D))):
        return None
    out, cin, kh, kw = conv.weight.shape
    ck, pk = conv._kwargs, pool._kwargs
    q = pk['kernel'][0]
    if (kh != kw or kh > kernels.MAX_KERNEL or ck['stride'] != (1, 1)
            or ck['pad'][0] != ck['pad'][1] or ck['pad'][0] > kernels.MAX_PAD
            or q > kernels.MAX_POOL or max(out, cin) > kernels.MAX_CHANNELS or conv.bias is None
            or _act_type(conv) not in ('sigmoid', 'relu', None)
            or any(p.grad_req != 'write' for p in (conv.weight, conv.bias))
            or pk['global_pool'] or pk['pooling_convention'] != 'valid'
            or pk['kernel'] != (q, q) or pk['stride'] != (q, q) or pk['pad'] != (0, 0)
            or (first and (cin != 1 or kernels.TILE % q))):
        return None
    return dict(op='conv_pool' if first else 'conv_pool_maps', pad=ck['pad'][0],
                activation=_act_type(conv) or 'identity', pool=pk['pool_type'], pool_size=q,
                channels=out, out_channels=out)


def _fused_blocks(layers, input_grad=False):
    """``{index: plan}`` of the chain's leading conv + pooling pairs our operators compute.

    LeNet's two blocks in every variant but LeNet-5's (tanh), when our
    operators load (:mod:`.kernels`). Where MXNet's conv follows the first
    block, its maps are padded with zero maps to oneDNN's block of 8. With
    ``input_grad`` the first block stays MXNet's (ours computes no dx), and so
    do the later ones (theirs take the maps ours make).
    """
    fused = {}
    for i in range(0, len(layers) - 1, 2):
        plan = None if input_grad else _fused_block(layers[i], layers[i + 1], first=i == 0)
        if plan is None:
            break
        fused[i] = plan
    if not fused or not kernels.load():
        return {}
    if 0 in fused and 2 not in fused and len(layers) > 2 and isinstance(layers[2], nn.Conv2D):
        fused[0]['out_channels'] = _ceil8(fused[0]['channels'])
    return fused


class _OneDNNObjective(gluon.HybridBlock):
    """``head(y_hat, y)`` of a layer chain's output ``y_hat``, computed in oneDNN's shapes.

    The net is not a child: only its Parameters are registered (as this graph's
    inputs), so hybridizing this graph leaves the user's net as it was. ``head``
    is the caller's objective; this graph only computes what it is applied to.
    """

    def __init__(self, layers, head, dtype='float32', own_kernels=True, input_grad=False):
        super().__init__(prefix='onednn_')
        self._head, self._dtype = head, dtype
        self._ops, zero_maps = [], 0  # what each layer computes; no Blocks kept
        use_ours = dtype == 'float32' and own_kernels
        fused = _fused_blocks(layers, input_grad) if use_ours else {}
        for i, layer in enumerate(layers):
            if i - 1 in fused:
                continue  # the pooling computed by the fused operator before it
            if i in fused:
                op = fused[i]
                zero_maps = op['out_channels'] - op['channels']
            elif isinstance(layer, nn.Conv2D):
                op = dict(_conv_plan(layer, zero_maps), op='conv')
                zero_maps = op['zero_out']
            elif isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
                op = dict(op='pool', kwargs=layer._kwargs)
            elif isinstance(layer, nn.Dropout):
                op = dict(op='dropout', p=layer._rate, axes=layer._axes)
                # over the user's maps only (padding maps would take the mask's numbers,
                # and oneDNN's concat cannot pad them back: its backward crashes, MXNet 1.9)
                zero_maps = 0
            else:
                op = dict(op='dense', units=layer._units, flatten=layer._flatten,
                          act=_act_type(layer))
                zero_maps = 0  # sliced away before it
            self._ops.append(dict(op, index=i))
            for kind in ('weight', 'bias'):  # registered by name for hybrid_forward
                param = getattr(layer, kind, None)
                if param is not None:
                    setattr(self, f'{kind}{i}', param)
                    self.params.update({param.name: param})  # what the cached graph reads

    @property
    def rewritten(self):
        """Whether some layer is computed in other shapes than the plain graph's."""
        return any(op.get('shifts') or op.get('zero_out') or op['op'] in kernels.OPERATORS
                   for op in self._ops)

    def hybrid_forward(self, F, x, y, **params):
        if not mx.util.is_np_array():
            return self._head(self._chain(F, x, params), y)
        # numpy mode: the chain's legacy graph on legacy views of the arrays (no copies),
        # the head in numpy mode, as the caller wrote it
        legacy = {name: p.as_nd_ndarray() for name, p in params.items()}
        return self._head(self._chain(F, x.as_nd_ndarray(), legacy).as_np_ndarray(), y)

    def _chain(self, F, x, params):
        """The chain's output (float32) from the images ``x``."""
        low = self._dtype != 'float32'

        def cast(a):  # float32 -> the compute dtype; its gradient comes back as float32
            return F.amp_cast(a, dtype=bfloat16) if low and a is not None else a

        h, channels, zero_maps = cast(x), None, 0  # zero_maps: padding maps after the real ones
        for op in self._ops:
            weight, bias = params.get(f'weight{op["index"]}'), params.get(f'bias{op["index"]}')
            if op['op'] == 'conv_pool':  # x needs no gradient: the operator computes none
                h = getattr(F, kernels.OPERATORS['conv_pool'])(
                    F.BlockGrad(h), weight, bias, pad=op['pad'], act=op['activation'],
                    pool=op['pool'], pool_size=op['pool_size'], out_channels=op['out_channels'])
                channels, zero_maps = op['channels'], op['out_channels'] - op['channels']
            elif op['op'] == 'conv_pool_maps':
                h = getattr(F, kernels.OPERATORS['conv_pool_maps'])(
                    h, weight, bias, pad=op['pad'], act=op['activation'], pool=op['pool'],
                    pool_size=op['pool_size'])
                channels, zero_maps = op['channels'], 0
            elif op['op'] == 'conv':
                h = self._conv(F, h, weight, bias, op, cast)
                channels, zero_maps = op['channels'], op['zero_out']
            elif op['op'] == 'pool':
                h = F.Pooling(h, **op['kwargs'])
            elif op['op'] == 'dropout':  # MXNet 1.9 has no bfloat16 dropout
                h = h if not low else F.amp_cast(h, dtype='float32')
                if zero_maps:  # the mask drawn over the user's maps: the plain graph's numbers
                    h, zero_maps = F.slice_axis(h, axis=1, begin=0, end=channels), 0
                h = cast(F.Dropout(h, p=op['p'], axes=op['axes']))
            else:
                if zero_maps:
                    h, zero_maps = F.slice_axis(h, axis=1, begin=0, end=channels), 0
                h = F.FullyConnected(h, cast(weight), cast(bias), num_hidden=op['units'],
                                     flatten=op['flatten'], no_bias=bias is None)
            if op.get('act'):
                h = F.Activation(h, act_type=op['act'])
        if zero_maps:
            h = F.slice_axis(h, axis=1, begin=0, end=channels)
        return F.amp_cast(h, dtype='float32') if low else h

    @staticmethod
    def _conv(F, h, weight, bias, plan, cast):
        k, out = plan['shifts'], plan['channels']
        if k:  # k horizontal shifts of the image as channels, then a (k, 1) conv
            eye = cast(F.concat(F.reshape(F.eye(k), (k, 1, 1, k)),
                                F.zeros((_ceil8(k) - k, 1, 1, k)), dim=0))
            h = F.Convolution(h, eye, kernel=(1, k), pad=(0, plan['shift_pad']),
                              num_filter=_ceil8(k), no_bias=True)
            weight = F.transpose(weight, axes=(0, 3, 2, 1))  # (out, k shifts, k rows, 1)
            if _ceil8(k) > k:
                weight = F.concat(weight, F.zeros((out, _ceil8(k) - k, k, 1)), dim=1)
        if plan['zero_in']:  # zero weights for the previous layer's zero maps
            weight = F.concat(weight, F.zeros((out, plan['zero_in']) + plan['kernel']), dim=1)
        if plan['zero_out']:
            weight = F.concat(weight, F.zeros((plan['zero_out'],) + plan['weight_tail']), dim=0)
            if bias is not None:
                bias = F.concat(bias, F.zeros((plan['zero_out'],)), dim=0)
        kwargs = {key: plan[key] for key in ('kernel', 'stride', 'dilate', 'pad', 'num_filter',
                                             'num_group', 'layout')}
        return F.Convolution(h, cast(weight), cast(bias), no_bias=bias is None, **kwargs)


def build_graph(layers, head, dtype='float32', own_kernels=True, input_grad=False):
    """The hybridized graph computing ``head(chain(X), y)`` for the chain ``layers``, or
    None where nothing needs it.

    ``layers`` come from :func:`chain_layers` and pass :func:`supported`; ``head(y_hat,
    y)`` is the caller's objective, traced into the graph.
    float32 returns None where no layer needs a rewrite (AlexNet and friends:
    already in oneDNN's shapes). ``own_kernels``: LeNet's conv blocks on our
    operators where they load. ``input_grad``: the first block on MXNet's
    operators, since ours computes no gradient for the images.
    """
    objective = _OneDNNObjective(layers, head, dtype, own_kernels, input_grad)
    if not objective.rewritten and dtype == 'float32':
        return None
    objective.hybridize(static_alloc=True, static_shape=True)
    return objective
