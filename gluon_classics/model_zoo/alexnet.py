"""AlexNet, as the d2l chapter builds it for Fashion-MNIST, as Krizhevsky et al. (2012) sized
it, and the chapter's exercise: AlexNet simplified for 28x28 images."""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from mxnet.gluon import nn

from .spec import ALEXNET_VARIANTS, variant_spec

__all__ = ['AlexNet', 'alexnet', 'ALEXNET_VARIANTS']


class AlexNet(nn.HybridBlock):
    r"""AlexNet: conv layers with ReLU and max pooling, then ReLU dense layers with dropout
    (``features``), then the classifier (``output``).

    Parameters
    ----------
    convs : sequence of (int, int, int, int, bool)
        Per conv layer: channels, kernel size, stride, padding, and whether a max
        pooling layer follows it.
    dense : sequence of int
        Widths of the hidden dense layers, each followed by dropout.
    pool : (int, int), default (3, 2)
        Pooling window and stride (AlexNet's overlapping 3x3, stride 2).
    num_classes : int, default 10
    in_channels : int, default 1
    input_size : (int, int), default (224, 224)
        The (H, W) the layer sizes were chosen for (``input_shape``, error messages).
    dropout : float, default 0.5
        Dropout rate after each hidden dense layer.
    """

    def __init__(self, convs, dense, pool=(3, 2), num_classes=10, in_channels=1,
                 input_size=(224, 224), dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.input_shape = (in_channels,) + tuple(input_size)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            for i, (channels, kernel, stride, padding, pooled) in enumerate(convs):
                self.features.add(nn.Conv2D(channels, kernel_size=kernel, strides=stride,
                                            padding=padding, activation='relu',
                                            in_channels=in_channels if i == 0 else 0))
                if pooled:
                    self.features.add(nn.MaxPool2D(pool_size=pool[0], strides=pool[1]))
            for units in dense:
                self.features.add(nn.Dense(units, activation='relu'), nn.Dropout(dropout))
            self.output = nn.Dense(num_classes)

    # The forward is this chain of children (accel/graph.py relies on it).
    forward_chain = ('features', 'output')

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def alexnet(variant='d2l', num_classes=None, in_channels=None, **kwargs):
    r"""AlexNet as the chapters print it: ``ALEXNET_VARIANTS[variant]`` with overrides.

    Parameters
    ----------
    variant : str, default 'd2l'
        ``'d2l'`` (1x224x224 Fashion-MNIST, 10 classes), ``'imagenet'``
        (3x224x224, 1000 classes, the paper's sizes) or ``'small'`` (the
        chapter's exercise: 1x28x28 Fashion-MNIST without resizing).
    num_classes : int, optional
        The variant's when None.
    in_channels : int, optional
        The variant's when None.
    **kwargs
        Overrides of the variant's architecture (``convs``, ``dense``, ``pool``)
        and ``dropout``: see :class:`AlexNet`.

    Returns
    -------
    AlexNet
        An uninitialized, hybridizable network.
    """
    spec = variant_spec(ALEXNET_VARIANTS, variant, 'AlexNet', num_classes=num_classes,
                        in_channels=in_channels, **kwargs)
    net = AlexNet(**spec)
    net.variant = variant
    return net
