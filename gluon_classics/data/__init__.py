"""Datasets as uint8 arrays, batched on the target context.

``load_data_fashion_mnist`` is d2l's loader with the same ``(X, y)`` batches,
decoded once and batched with a few NDArray ops instead of per-image
transforms; ``load_data`` picks a dataset by name.
"""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from .datasets import CIFAR10_TEXT_LABELS, DATASETS, load_data, read_cifar10, read_image_folder
from .download import DownloadError, download, ensure_files
from .fashion_mnist import (FASHION_MNIST, FASHION_MNIST_TEXT_LABELS, MNIST, MNIST_TEXT_LABELS,
                            data_folder, default_root, get_fashion_mnist_labels,
                            load_data_fashion_mnist, load_data_mnist, read_mnist_folder)
from .idx import DataError, read_idx, read_idx_pair
from .loader import ArrayLoader, epoch_permutation

__all__ = ['load_data', 'load_data_fashion_mnist', 'load_data_mnist', 'get_fashion_mnist_labels',
           'ArrayLoader', 'DataError', 'DownloadError', 'DATASETS', 'default_root', 'data_folder',
           'read_idx', 'read_idx_pair', 'read_mnist_folder', 'read_cifar10', 'read_image_folder',
           'download', 'ensure_files', 'epoch_permutation', 'FASHION_MNIST', 'MNIST',
           'FASHION_MNIST_TEXT_LABELS', 'MNIST_TEXT_LABELS', 'CIFAR10_TEXT_LABELS']
