"""LeNet and AlexNet in MXNet Gluon, as the d2l chapters teach them.

>>> from gluon_classics import lenet, print_shapes
>>> print_shapes(lenet(), (1, 1, 28, 28))   # doctest: +ELLIPSIS
conv0 output shape: (1, 6, 28, 28)
...
"""
from ._backend import BackendError, mx  # noqa: F401  (fails with one line if MXNet is unusable)
from .model_zoo import (alexnet, check_input_shape, count_parameters, get_model, layer_shapes,
                        lenet, print_shapes)
from .data import DataError, get_fashion_mnist_labels, load_data, load_data_fashion_mnist
from .training import evaluate_accuracy, evaluate_accuracy_gpu, fit, train_ch5, train_ch6
from .experiments import ablate, activation_stats, feature_maps
from .export import export_onnx
from .utils.devices import try_all_gpus, try_gpu
from .utils.plots import plot_history, show_images

__version__ = '0.2.0'

__all__ = ['lenet', 'alexnet', 'get_model', 'print_shapes', 'layer_shapes', 'count_parameters',
           'check_input_shape', 'try_gpu', 'try_all_gpus', 'load_data_fashion_mnist',
           'get_fashion_mnist_labels', 'show_images', 'load_data', 'DataError',
           'train_ch5', 'evaluate_accuracy', 'train_ch6', 'evaluate_accuracy_gpu', 'fit',
           'plot_history',
           'ablate', 'feature_maps', 'activation_stats', 'export_onnx']
