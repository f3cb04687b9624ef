"""LeNet, as the d2l chapter, the MXNet Gluon article and LeCun et al. (1998) build it."""
from mxnet.gluon import nn

__all__ = ['LeNet', 'lenet', 'LENET_VARIANTS']

# Per variant: conv stages as (channels, padding, pooled), dense widths,
# activation, pooling and the input (C, H, W) the layer sizes were chosen for.
# Padding 'same' keeps the map size whatever the kernel size.
LENET_VARIANTS = {
    # d2l "Convolutional Neural Networks (LeNet)": 61,706 parameters at 1x28x28
    'd2l': dict(convs=((6, 'same', True), (16, 0, True)), dense=(120, 84),
                activation='sigmoid', pool='avg', input_shape=(1, 28, 28)),
    # the MXNet Gluon LeNet article: no padding, max pooling, 44,426 parameters
    'gluon': dict(convs=((6, 0, True), (16, 0, True)), dense=(120, 84),
                  activation='sigmoid', pool='max', input_shape=(1, 28, 28)),
    # LeNet-5 (1998) on 1x32x32: C1, S2, C3, S4, C5 as a 5x5 conv with 120 maps, F6, output
    'lenet5': dict(convs=((6, 0, True), (16, 0, True), (120, 0, False)), dense=(84,),
                   activation='tanh', pool='avg', input_shape=(1, 32, 32)),
}

_POOLS = {'avg': nn.AvgPool2D, 'max': nn.MaxPool2D}


class LeNet(nn.HybridBlock):
    r"""LeNet: a convolutional encoder (``features``) and a dense block (``output``).

    Parameters
    ----------
    variant : str, default 'd2l'
        One of ``'d2l'``, ``'gluon'``, ``'lenet5'`` (see ``LENET_VARIANTS``).
    num_classes : int, default 10
        Number of classes of the last dense layer.
    activation : str, optional
        Activation after every conv and hidden dense layer (``'sigmoid'``,
        ``'relu'``, ``'tanh'``...); the variant's when None.
    pool : {'avg', 'max'}, optional
        Pooling after the pooled conv stages; the variant's when None.
    kernel_size : int, optional
        Kernel size of every conv layer (5 in all variants).
    channels : tuple of int, optional
        Output channels per conv layer; its length sets the number of conv layers.
        Layers past the variant's own use 'same' padding and no pooling.
    dense_units : tuple of int, optional
        Widths of the hidden dense layers; ``()`` for none.
    in_channels : int, default 1
        Channels of the input image (3 for CIFAR-10).
    """

    def __init__(self, variant='d2l', num_classes=10, activation=None, pool=None,
                 kernel_size=5, channels=None, dense_units=None, in_channels=1, **kwargs):
        super().__init__(**kwargs)
        if variant not in LENET_VARIANTS:
            raise ValueError(f'unknown LeNet variant {variant!r}: choose one of '
                             f'{", ".join(sorted(LENET_VARIANTS))}')
        spec = LENET_VARIANTS[variant]
        activation = activation or spec['activation']
        pool = pool or spec['pool']
        if pool not in _POOLS:
            raise ValueError(f"unknown pool {pool!r}: choose 'avg' or 'max'")
        stages = list(spec['convs'])
        if channels is not None:
            stages = [(c, *stages[i][1:]) if i < len(stages) else (c, 'same', False)
                      for i, c in enumerate(channels)]
        dense_units = spec['dense'] if dense_units is None else tuple(dense_units)
        self.variant = variant
        self.input_shape = (in_channels,) + spec['input_shape'][1:]
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            for i, (c, padding, pooled) in enumerate(stages):
                pad = kernel_size // 2 if padding == 'same' else padding
                self.features.add(nn.Conv2D(c, kernel_size, padding=pad, activation=activation,
                                            in_channels=in_channels if i == 0 else 0))
                if pooled:
                    self.features.add(_POOLS[pool](pool_size=2, strides=2))
            for units in dense_units:
                self.features.add(nn.Dense(units, activation=activation))
            self.output = nn.Dense(num_classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def lenet(variant='d2l', num_classes=10, activation=None, pool=None, **kwargs):
    r"""LeNet as the chapters print it.

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
    **kwargs
        ``kernel_size``, ``channels``, ``dense_units``, ``in_channels``: see :class:`LeNet`.

    Returns
    -------
    LeNet
        An uninitialized, hybridizable network.
    """
    return LeNet(variant, num_classes, activation, pool, **kwargs)
