"""AlexNet, as the d2l chapter builds it for Fashion-MNIST and as Krizhevsky et al. (2012) sized it."""
from mxnet.gluon import nn

from .spec import variant_spec

__all__ = ['AlexNet', 'alexnet', 'ALEXNET_VARIANTS']

# Per variant, the architecture arguments of AlexNet.
ALEXNET_VARIANTS = {
    # d2l "Deep Convolutional Neural Networks (AlexNet)": 1x224x224 Fashion-MNIST,
    # 46,764,746 parameters; the first conv has no padding, so 224 gives 54x54.
    'd2l': dict(padding=0, in_channels=1, num_classes=10),
    # the paper's layer sizes on one device (no grouped convs, no LRN): 55x55 after conv0
    'imagenet': dict(padding=2, in_channels=3, num_classes=1000),
}


class AlexNet(nn.HybridBlock):
    r"""AlexNet: five conv layers (``features``), two 4096-wide dense layers with
    dropout, and the classifier (``output``).

    Parameters
    ----------
    padding : int, default 0
        Padding of the first (11x11, stride 4) conv layer.
    in_channels : int, default 1
        Input channels.
    num_classes : int, default 10
        Classes of the last layer.
    dropout : float, default 0.5
        Dropout rate after each hidden dense layer.
    """

    def __init__(self, padding=0, in_channels=1, num_classes=10, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.input_shape = (in_channels, 224, 224)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(
                nn.Conv2D(96, kernel_size=11, strides=4, padding=padding,
                          activation='relu', in_channels=in_channels),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Conv2D(256, kernel_size=5, padding=2, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
                nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
                nn.Conv2D(256, kernel_size=3, padding=1, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Dense(4096, activation='relu'), nn.Dropout(dropout),
                nn.Dense(4096, activation='relu'), nn.Dropout(dropout))
            self.output = nn.Dense(num_classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def alexnet(variant='d2l', num_classes=None, in_channels=None, **kwargs):
    r"""AlexNet as the chapters print it: ``ALEXNET_VARIANTS[variant]`` with overrides.

    Parameters
    ----------
    variant : str, default 'd2l'
        ``'d2l'`` (1x224x224 Fashion-MNIST, 10 classes) or ``'imagenet'``
        (3x224x224, 1000 classes, the paper's sizes).
    num_classes : int, optional
        The variant's when None.
    in_channels : int, optional
        The variant's when None.
    **kwargs
        Overrides of the other arguments of :class:`AlexNet` (``dropout``...).

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
