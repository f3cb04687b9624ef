"""Shared fixtures: the real Fashion-MNIST copy, which CI must have (no skipping)."""
import os

import pytest


@pytest.fixture(scope='session')
def fashion_mnist_dir():
    """Folder of the real Fashion-MNIST files, from ``$GLUON_CLASSICS_DATA/fashion-mnist``."""
    root = os.environ.get('GLUON_CLASSICS_DATA')
    folder = os.path.join(root, 'fashion-mnist') if root else None
    if not folder or not os.path.isdir(folder):
        pytest.fail(f'real-data tests need GLUON_CLASSICS_DATA set to the folder holding '
                    f'fashion-mnist/ (e.g. ../shared/data); got {root!r}', pytrace=False)
    return folder
