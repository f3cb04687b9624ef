"""LeNet, as the d2l chapter, the MXNet Gluon article and LeCun et al. (1998) build it."""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from mxnet.gluon import nn

from .spec import LENET_VARIANTS, variant_spec

__all__ = ['LeNet', 'lenet', 'LENET_VARIANTS']

_POOLS = {'avg': nn.AvgPool2D, 'max': nn.MaxPool2D}
ACTIVATIONS = ('sigmoid', 'relu', 'tanh', 'softrelu', 'softsign')  # mx.nd.Activation's


class LeNet(nn.HybridBlock):
    r"""LeNet: a convolutional encoder (``features``) and a dense block (``output``).

    Parameters
    ----------
    convs : sequence of (int, int or 'same', bool)
        Per conv layer: output channels, padding (``'same'`` keeps the map
        size) and whether a pooling layer follows.
    dense_units : sequence of int
        Widths of the hidden dense layers; ``()`` for none.
    activation : str, default 'sigmoid'
        Activation after every conv and hidden dense layer (``'sigmoid'``,
        ``'relu'``, ``'tanh'``...).
    pool : {'avg', 'max'}, default 'avg'
        Pooling (2x2, stride 2) after the pooled conv layers.
    kernel_size : int, default 5
        Kernel size of every conv layer.
    in_channels : int, default 1
        Channels of the input image (3 for CIFAR-10).
    num_classes : int, default 10
        Number of classes of the last dense layer.
    image_size : int, default 28
        Height and width of the input the layer sizes were chosen for
        (``input_shape``, used by the shape checks).
    """

    def __init__(self, convs, dense_units, activation='sigmoid', pool='avg', kernel_size=5,
                 in_channels=1, num_classes=10, image_size=28, **kwargs):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:  # MXNet's own error would come at the first batch
            raise ValueError(f'unknown activation {activation!r}: choose one of '
                             f'{", ".join(ACTIVATIONS)}')
        if pool not in _POOLS:
            raise ValueError(f"unknown pool {pool!r}: choose 'avg' or 'max'")
        self.input_shape = (in_channels, image_size, image_size)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            for i, (c, padding, pooled) in enumerate(convs):
                pad = kernel_size // 2 if padding == 'same' else padding
                self.features.add(nn.Conv2D(c, kernel_size, padding=pad, activation=activation,
                                            in_channels=in_channels if i == 0 else 0))
                if pooled:
                    self.features.add(_POOLS[pool](pool_size=2, strides=2))
            for units in dense_units:
                self.features.add(nn.Dense(units, activation=activation))
            self.output = nn.Dense(num_classes)

    # The forward is this chain of children (accel/graph.py relies on it).
    forward_chain = ('features', 'output')

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def lenet(variant='d2l', num_classes=10, activation=None, pool=None, channels=None, **kwargs):
    r"""LeNet as the chapters print it: ``LENET_VARIANTS[variant]`` with overrides.

    Parameters
    ----------
    variant : str, default 'd2l'
        ``'d2l'`` (sigmoid, average pooling, padded first conv, 1x28x28),
        ``'gluon'`` (the Gluon article: no padding, max pooling) or
        ``'lenet5'`` (LeCun et al. 1998 on 1x32x32, tanh).
    num_classes : int, default 10
    activation : str, optional
        Override of the variant's activation, e.g. ``'relu'``.
    pool : {'avg', 'max'}, optional
        Override of the variant's pooling.
    channels : tuple of int, optional
        Output channels per conv layer; its length sets the number of conv
        layers. Layers past the variant's own use 'same' padding and no pooling.
    **kwargs
        Overrides of the other arguments of :class:`LeNet` (``kernel_size``,
        ``dense_units``, ``in_channels``...).

    Returns
    -------
    LeNet
        An uninitialized, hybridizable network.
    """
    spec = variant_spec(LENET_VARIANTS, variant, 'LeNet', num_classes=num_classes,
                        activation=activation, pool=pool, **kwargs)
    if channels is not None:
        convs = spec['convs']
        spec['convs'] = [(c, *convs[i][1:]) if i < len(convs) else (c, 'same', False)
                         for i, c in enumerate(channels)]
    net = LeNet(**spec)
    net.variant = variant
    return net
