"""LeNet and AlexNet, and the registry that builds them by name.

Each model is a module with its class (architecture arguments), its variant
table and a factory reading it, as MXNet's model zoo does (``vgg_spec`` read
by ``get_vgg``). ``MODELS`` holds one entry per model: the factory, the
variant table and the chapter's training recipe. The CLI's choices and help
texts and ``fit``'s defaults are read from it.
"""
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .._lazy import lazy_names
from .spec import ALEXNET_VARIANTS, LENET_VARIANTS

# The networks and their summaries import MXNet: on first use (PEP 562), so that the
# registry below serves the command line's --help without it.
_LAZY = {'lenet': ('lenet', 'LeNet', 'ACTIVATIONS'), 'alexnet': ('alexnet', 'AlexNet'),
         'summary': ('check_input_shape', 'count_parameters', 'layer_shapes', 'leaves',
                     'print_shapes')}
__getattr__, __dir__ = lazy_names(__name__, _LAZY)


def _factory(name):
    """The factory ``name`` of its module, imported when a network is built."""
    def build(**kwargs):
        return __getattr__(name)(**kwargs)
    build.__name__ = build.__qualname__ = name
    return build

__all__ = ['get_model', 'model_for_data', 'recipe', 'MODELS', 'VARIANTS', 'ModelEntry',
           'lenet', 'alexnet', 'LeNet', 'AlexNet',
           'layer_shapes', 'print_shapes', 'count_parameters', 'check_input_shape', 'leaves']


@dataclass(frozen=True)
class ModelEntry:
    """A model of the registry.

    Attributes
    ----------
    factory : callable
        ``factory(variant=..., **overrides)`` builds the network.
    variants : dict
        The variant table the factory reads.
    recipe : dict
        The chapter's ``lr``, ``batch_size``, ``epochs`` and ``resize``
        (None: the images' own size); optionally ``optimizer`` and ``schedule``
        (names of ``fit``'s tables; default 'sgd' and that optimizer's own).
    variant_recipes : dict
        Per variant, the recipe values it changes.
    """
    factory: Callable
    variants: Mapping
    recipe: Mapping
    variant_recipes: Mapping = field(default_factory=dict)

    def __call__(self, **kwargs):  # MODELS[name](...) builds, as when MODELS held factories
        return self.factory(**kwargs)


MODELS = {
    # d2l LeNet: plain SGD at lr 0.9, batch 256, 10 epochs on 28x28 images
    'lenet': ModelEntry(_factory('lenet'), LENET_VARIANTS,
                        dict(lr=0.9, batch_size=256, epochs=10, resize=None)),
    # d2l AlexNet: lr 0.01, batch 128, 10 epochs, Fashion-MNIST upsampled to 224x224
    'alexnet': ModelEntry(_factory('alexnet'), ALEXNET_VARIANTS,
                          dict(lr=0.01, batch_size=128, epochs=10, resize=224),
                          # the chapter's exercise on 28x28 images, chosen by measurement
                          # (docs/results.md, "Measured: AlexNet")
                          {'small': dict(lr=0.05, resize=None, optimizer='momentum',
                                         schedule='cosine')}),
}
VARIANTS = {name: tuple(entry.variants) for name, entry in MODELS.items()}


def _entry(name):
    name = name.lower()
    if name not in MODELS:
        raise ValueError(f'unknown model {name!r}: choose one of {", ".join(sorted(MODELS))}')
    return MODELS[name]


def recipe(name, variant='d2l'):
    """The chapter's training recipe of a model variant.

    Returns
    -------
    dict
        ``lr``, ``batch_size``, ``epochs`` and ``resize``, and ``optimizer``
        and ``schedule`` where the recipe sets them.
    """
    entry = _entry(name)
    return dict(entry.recipe, **entry.variant_recipes.get(variant, {}))


def get_model(name, **kwargs):
    """Build a model by name.

    Parameters
    ----------
    name : str
        ``'lenet'`` or ``'alexnet'`` (the keys of ``MODELS``).
    **kwargs
        Passed to the factory, e.g. ``variant='gluon'``, ``activation='relu'``.

    Returns
    -------
    HybridBlock
    """
    return _entry(name).factory(**kwargs)


def model_for_data(name, data_iter, **kwargs):
    """:func:`get_model` with the classes and image channels of ``data_iter``.

    ``data_iter`` is a loader of :func:`~gluon_classics.load_data` (it has
    ``num_classes`` and ``image_shape``); ``kwargs`` may still set both.
    """
    kwargs.setdefault('num_classes', data_iter.num_classes)
    kwargs.setdefault('in_channels', data_iter.image_shape[0])
    return get_model(name, **kwargs)
