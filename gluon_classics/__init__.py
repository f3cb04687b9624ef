"""LeNet and AlexNet in MXNet Gluon, as the d2l chapters teach them.

>>> from gluon_classics import lenet, print_shapes
>>> print_shapes(lenet(), (1, 1, 28, 28))   # doctest: +ELLIPSIS
conv0 output shape: (1, 6, 28, 28)
...

The names below are imported on first use (PEP 562), so ``gluon-classics --help``
and ``--version`` answer without importing MXNet; every subpackage that uses
MXNet imports it through :mod:`._backend` (one line if it is unusable).
"""
import importlib
import importlib.util
import sys

from ._lazy import lazy_names

__version__ = '0.2.0'

# Each public name and the submodule it comes from.
_NAMES = {
    '_backend': ('BackendError', 'mx'),
    'model_zoo': ('alexnet', 'check_input_shape', 'count_parameters', 'get_model',
                  'layer_shapes', 'lenet', 'print_shapes'),
    'data': ('DataError', 'get_fashion_mnist_labels', 'load_data', 'load_data_fashion_mnist'),
    'training': ('evaluate_accuracy', 'evaluate_accuracy_gpu', 'fit', 'train_ch5', 'train_ch6'),
    'experiments': ('ablate', 'activation_stats', 'feature_maps'),
    'export': ('export_onnx',),
    'devices': ('try_all_gpus', 'try_gpu'),
    'utils.plots': ('plot_history', 'show_images'),
}
__getattr__, __dir__ = lazy_names(__name__, _NAMES)

__all__ = ['lenet', 'alexnet', 'get_model', 'print_shapes', 'layer_shapes', 'count_parameters',
           'check_input_shape', 'try_gpu', 'try_all_gpus', 'load_data_fashion_mnist',
           'get_fashion_mnist_labels', 'show_images', 'load_data', 'DataError',
           'train_ch5', 'evaluate_accuracy', 'train_ch6', 'evaluate_accuracy_gpu', 'fit',
           'plot_history',
           'ablate', 'feature_maps', 'activation_stats', 'export_onnx']


class _MXNetThroughBackend:
    """The first ``import mxnet`` after ``import gluon_classics``, through :mod:`._backend`.

    d2l's listings write ``import gluon_classics as d2l`` and then ``from mxnet import
    np``: MXNet gets _backend's checks and thread count (all cores) all the same.
    MXNet is imported in ``create_module``, not in ``find_spec``: a module that
    appears during ``find_spec`` is imported a second time from its own spec
    (Python's import system), a second ``mxnet`` without its submodules bound.
    """
    _spec = None  # MXNet's own spec, given back once it is imported

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != 'mxnet':
            return None
        if cls in sys.meta_path:
            sys.meta_path.remove(cls)
        if f'{__name__}._backend' in sys.modules:  # _backend itself is importing it
            return None
        return importlib.util.spec_from_loader(name, cls)

    @classmethod
    def create_module(cls, spec):
        importlib.import_module('._backend', __name__)  # imports MXNet, or one line
        module = sys.modules['mxnet']
        cls._spec = module.__spec__
        return module

    @classmethod
    def exec_module(cls, module):
        module.__spec__ = cls._spec  # the import system set ours on it


if 'mxnet' not in sys.modules:
    sys.meta_path.insert(0, _MXNetThroughBackend)
