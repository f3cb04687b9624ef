"""LeNet and AlexNet, and a registry to build them by name."""
from .alexnet import ALEXNET_VARIANTS, AlexNet, alexnet
from .lenet import LENET_VARIANTS, LeNet, lenet
from .summary import check_input_shape, count_parameters, layer_shapes, leaves, print_shapes

__all__ = ['get_model', 'MODELS', 'VARIANTS', 'lenet', 'alexnet', 'LeNet', 'AlexNet',
           'layer_shapes', 'print_shapes', 'count_parameters', 'check_input_shape', 'leaves']

MODELS = {'lenet': lenet, 'alexnet': alexnet}
VARIANTS = {'lenet': tuple(LENET_VARIANTS), 'alexnet': tuple(ALEXNET_VARIANTS)}


def get_model(name, **kwargs):
    """Build a model by name.

    Parameters
    ----------
    name : str
        ``'lenet'`` or ``'alexnet'``.
    **kwargs
        Passed to the factory, e.g. ``variant='gluon'``, ``activation='relu'``.

    Returns
    -------
    HybridBlock
    """
    name = name.lower()
    if name not in MODELS:
        raise ValueError(f'unknown model {name!r}: choose one of {", ".join(sorted(MODELS))}')
    return MODELS[name](**kwargs)
