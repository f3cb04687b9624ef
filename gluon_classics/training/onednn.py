"""The training graph of a conv chain, rewritten into shapes oneDNN runs fast.

MXNet 1.9's CPU kernels come from oneDNN, whose fast (AVX2 jit) convolution
and pooling kernels work on blocks of 8 channels. LeNet falls off them twice:
its first conv has 1 input channel (the weight gradient drops to im2col +
GEMM, which also stalls badly when a core is busy), and its 6-channel maps are
not a multiple of 8 (conv, pooling and their gradients drop to reference
kernels). Measured on a 2-core CPU that doubles the time of a training step.

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
"""
import mxnet as mx
from mxnet import gluon
from mxnet.gluon import nn

from ..model_zoo import leaves

__all__ = ['onednn_objective']

_BLOCK = 8


def _ceil8(c):
    return -(-c // _BLOCK) * _BLOCK


def _supported(layers):
    for layer in layers:
        if isinstance(layer, nn.Conv2D):
            kw = layer._kwargs
            if kw['num_group'] != 1 or kw['dilate'] != (1, 1) or kw['layout'] != 'NCHW':
                return False
        elif not isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D, nn.Dense, nn.Dropout)):
            return False
    return any(isinstance(layer, nn.Conv2D) for layer in layers)


def _act(F, h, layer):
    return F.Activation(h, act_type=layer.act._act_type) if layer.act is not None else h


def _conv_plan(layer, zero_maps_in):
    """How to compute ``layer``: its rewritten kernel, padding and zero blocks."""
    out, cin, kh, kw = layer.weight.shape
    plan = dict(layer._kwargs, zero_in=zero_maps_in, shifts=0, zero_out=_ceil8(out) - out)
    if cin == 1 and kh == kw and plan['stride'] == (1, 1) and kh > 1:
        plan.update(shifts=kh, kernel=(kh, 1), pad=(plan['pad'][0], 0), shift_pad=plan['pad'][1])
        cin = _ceil8(kh)  # the shifted copies, padded to a block
    plan['weight_tail'] = (cin + zero_maps_in,) + plan['kernel']
    plan['num_filter'] = out + plan['zero_out']
    return plan


class _OneDNNObjective(gluon.HybridBlock):
    """Summed softmax cross-entropy and correct count of ``net``, in oneDNN's shapes."""

    def __init__(self, net, layers):
        super().__init__(prefix='onednn_')
        self.net = net  # a child: its Parameters are the graph's inputs
        self._plans, zero_maps = {}, 0
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2D):
                self._plans[i] = _conv_plan(layer, zero_maps)
                zero_maps = self._plans[i]['zero_out']
            elif isinstance(layer, nn.Dense):
                zero_maps = 0  # sliced away before it
            for kind in ('weight', 'bias'):  # registered by name for hybrid_forward
                param = getattr(layer, kind, None)
                if param is not None:
                    setattr(self, f'{kind}{i}', param)

    def hybrid_forward(self, F, x, y, **params):
        if not mx.util.is_np_array():
            return self._graph(F, x, y, params)
        # numpy mode: the same legacy graph on legacy views of the arrays (no copies)
        legacy = {name: p.as_nd_ndarray() for name, p in params.items()}
        outs = self._graph(F, x.as_nd_ndarray(), y.as_nd_ndarray(), legacy)
        return tuple(out.as_np_ndarray() for out in outs)

    def _graph(self, F, x, y, params):
        h, channels, zero_maps = x, None, 0  # zero_maps: padding maps after the real ones
        for i, layer in enumerate(leaves(self.net)):
            weight, bias = params.get(f'weight{i}'), params.get(f'bias{i}')
            if isinstance(layer, nn.Conv2D):
                h = _act(F, self._conv(F, h, weight, bias, self._plans[i]), layer)
                channels, zero_maps = layer._channels, self._plans[i]['zero_out']
            elif isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
                h = F.Pooling(h, **layer._kwargs)
            elif isinstance(layer, nn.Dropout):
                h = F.Dropout(h, p=layer._rate, axes=layer._axes)
            else:  # Dense
                if zero_maps:
                    h, zero_maps = F.slice_axis(h, axis=1, begin=0, end=channels), 0
                h = F.FullyConnected(h, weight, bias, num_hidden=layer._units,
                                     flatten=layer._flatten, no_bias=bias is None)
                h = _act(F, h, layer)
        if zero_maps:
            h = F.slice_axis(h, axis=1, begin=0, end=channels)
        y = F.cast(y, 'float32')
        loss = -F.pick(F.log_softmax(h, axis=-1), y, axis=-1)
        return F.sum(loss), F.sum(F.argmax(h, axis=1) == y)

    @staticmethod
    def _conv(F, h, weight, bias, plan):
        k, out = plan['shifts'], plan['num_filter'] - plan['zero_out']
        if k:  # k horizontal shifts of the image as channels, then a (k, 1) conv
            eye = F.concat(F.reshape(F.eye(k), (k, 1, 1, k)),
                           F.zeros((_ceil8(k) - k, 1, 1, k)), dim=0)
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
        return F.Convolution(h, weight, bias, no_bias=bias is None, **kwargs)


def onednn_objective(net, ctxs):
    """The rewritten training graph for ``net``, or None where it does not apply.

    It applies on CPU contexts with oneDNN, to nets that are a chain of
    Conv2D, pooling, Dense and Dropout layers (LeNet in all its variants and
    overrides, AlexNet), and only where some layer needs it.
    """
    if not all(c.device_type == 'cpu' for c in ctxs):
        return None
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return None
    layers = leaves(net)
    if not _supported(layers):
        return None
    objective = _OneDNNObjective(net, layers)
    plans = objective._plans.values()
    if not any(p['shifts'] or p['zero_out'] for p in plans):
        return None  # AlexNet and friends: already in oneDNN's shapes
    objective.hybridize(static_alloc=True, static_shape=True)
    return objective
