"""The models' variant tables and their lookup, shared by the model factories.

Data without MXNet (as MXNet's ``vgg_spec``): the model registry and the command
line's ``--variant`` choices read them without building a network.
"""

__all__ = ['variant_spec', 'LENET_VARIANTS', 'ALEXNET_VARIANTS']

# Per variant, the architecture arguments of LeNet: conv stages as
# (channels, padding, pooled), hidden dense widths, activation, pooling and
# the image size the layer sizes were chosen for. Padding 'same' keeps the
# map size whatever the kernel size.
LENET_VARIANTS = {
    # d2l "Convolutional Neural Networks (LeNet)": 61,706 parameters at 1x28x28
    'd2l': dict(convs=((6, 'same', True), (16, 0, True)), dense_units=(120, 84),
                activation='sigmoid', pool='avg', image_size=28),
    # the MXNet Gluon LeNet article: no padding, max pooling, 44,426 parameters
    'gluon': dict(convs=((6, 0, True), (16, 0, True)), dense_units=(120, 84),
                  activation='sigmoid', pool='max', image_size=28),
    # LeNet-5 (1998) on 1x32x32: C1, S2, C3, S4, C5 as a 5x5 conv with 120 maps, F6, output
    'lenet5': dict(convs=((6, 0, True), (16, 0, True), (120, 0, False)), dense_units=(84,),
                   activation='tanh', pool='avg', image_size=32),
}

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


def variant_spec(table, variant, model, **overrides):
    """``table[variant]`` updated with the ``overrides`` that are not None.

    An unknown variant is one ``ValueError`` naming ``model``'s variants.
    """
    if variant not in table:
        raise ValueError(f'unknown {model} variant {variant!r}: choose one of '
                         f'{", ".join(sorted(table))}')
    return dict(table[variant], **{k: v for k, v in overrides.items() if v is not None})
