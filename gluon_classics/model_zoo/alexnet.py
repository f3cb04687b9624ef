"""AlexNet, as the d2l chapter builds it for Fashion-MNIST, as Krizhevsky et al. (2012) sized
it, and the chapter's exercise: AlexNet simplified for 28x28 images."""
from mxnet.gluon import nn

from .spec import variant_spec

__all__ = ['AlexNet', 'alexnet', 'ALEXNET_VARIANTS']

# The chapter's five convs as (channels, kernel, stride, padding, max-pooled after).
_D2L_CONVS = ((96, 11, 4, 0, True), (256, 5, 1, 2, True), (384, 3, 1, 1, False),
              (384, 3, 1, 1, False), (256, 3, 1, 1, True))

# Per variant, the architecture arguments of AlexNet.
ALEXNET_VARIANTS = {
    # d2l "Deep Convolutional Neural Networks (AlexNet)": 1x224x224 Fashion-MNIST,
    # 46,764,746 parameters; the first conv has no padding, so 224 gives 54x54.
    'd2l': dict(convs=_D2L_CONVS, pool=(3, 2), dense=(4096, 4096), in_channels=1,
                input_size=(224, 224), num_classes=10),
    # the paper's layer sizes on one device (no grouped convs, no LRN): 55x55 after conv0
    'imagenet': dict(convs=((96, 11, 4, 2, True),) + _D2L_CONVS[1:], pool=(3, 2),
                     dense=(4096, 4096), in_channels=3, input_size=(224, 224),
                     num_classes=1000),
    # the chapter's exercise "simplify AlexNet for Fashion-MNIST", 713,418 parameters: the
    # same design (five convs, overlapping 3x3 max pooling with stride 2 after the 1st, 2nd
    # and 5th, two dense layers with dropout) on the 1x28x28 images themselves (28 -> 13
    # -> 6 -> 2), with 3x3 convs at a quarter to an eighth of the widths
    'small': dict(convs=((32, 3, 1, 1, True), (64, 3, 1, 1, True), (128, 3, 1, 1, False),
                         (128, 3, 1, 1, False), (64, 3, 1, 1, True)),
                  pool=(3, 2), dense=(512, 512), in_channels=1, input_size=(28, 28),
                  num_classes=10),
}


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
