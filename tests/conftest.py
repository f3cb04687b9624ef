"""Shared fixtures: the real Fashion-MNIST copy, which CI must have (no skipping)."""
import os

import pytest

from helpers import IDX_FILES, required


def pytest_configure(config):
    required()  # a misspelt GLUON_CLASSICS_REQUIRE stops the run before any test


@pytest.fixture(scope='session')
def data_root():
    """``$GLUON_CLASSICS_DATA`` as an absolute path; the test fails without Fashion-MNIST there."""
    root = os.environ.get('GLUON_CLASSICS_DATA')
    folder = os.path.join(root, 'fashion-mnist') if root else None
    missing = [f for f in IDX_FILES if not folder or not any(
        os.path.isfile(os.path.join(folder, f + ext)) for ext in ('.gz', ''))]
    if missing:
        pytest.fail(f'real-data tests need GLUON_CLASSICS_DATA set to the folder holding '
                    f'fashion-mnist/ with the four IDX files (e.g. ../shared/data); got {root!r}, '
                    f'missing {", ".join(missing)}', pytrace=False)
    return os.path.abspath(root)  # tests run commands from other folders


@pytest.fixture(scope='session')
def fashion_mnist_dir(data_root):
    """Folder of the real Fashion-MNIST files."""
    return os.path.join(data_root, 'fashion-mnist')
