"""Pieces the tests share (import them as ``from helpers import ...``; tests/ is on sys.path)."""
import os
import select
import struct

import numpy as np
import pytest

# the four IDX files of (Fashion-)MNIST, without .gz
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')

# what GLUON_CLASSICS_REQUIRE may name: kernels (a C++ compiler, so that conv_pool.cc is
# compiled and tested), cluster (root, ip netns and sshd, so that the rehearsal runs)
REQUIRABLE = ('kernels', 'cluster')
CXX = os.environ.get('CXX')  # the suite's, before any test sets its own


def required():
    """The set $GLUON_CLASSICS_REQUIRE names (.ci/run sets kernels,cluster); a typo stops
    the session (conftest.py asks at its start)."""
    names = {n.strip() for n in os.environ.get('GLUON_CLASSICS_REQUIRE', '').split(',')}
    names.discard('')
    unknown = sorted(names - set(REQUIRABLE))
    if unknown:
        raise pytest.UsageError(f'GLUON_CLASSICS_REQUIRE names {", ".join(unknown)}: it takes '
                                f'a comma-separated list of {", ".join(REQUIRABLE)}')
    return names


def require_or_skip(what, reason):
    """End a test that could not check ``what`` here: a skip saying ``reason``, or a failure
    where $GLUON_CLASSICS_REQUIRE names ``what`` (CI installs it, so it must be tested)."""
    if what in required():
        pytest.fail(f'{reason}, and GLUON_CLASSICS_REQUIRE={os.environ["GLUON_CLASSICS_REQUIRE"]} '
                    f'requires {what}', pytrace=False)
    pytest.skip(reason)


def without_kernels():
    """End a test whose kernel half could not run: there is no C++ compiler here."""
    require_or_skip('kernels', f"no C++ compiler (CXX={CXX or ''!r}, else "
                               f"g++): LeNet's CPU kernels (conv_pool.cc) were neither compiled "
                               f"nor tested here, only the fallback to MXNet's operators")


def idx_bytes(array, magic=None):
    """An IDX file's bytes for a uint8 array (magic 0x08nn: uint8, n dimensions)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(f'>I{array.ndim}I', magic, *array.shape) + array.tobytes()


def write_idx_folder(folder, images, labels, test_images, test_labels):
    """The four IDX files (plain, not gzipped) in ``folder``; images (N, 28, 28) or (N, 1, 28, 28)."""
    os.makedirs(folder, exist_ok=True)
    for name, array in zip(IDX_FILES, (images, labels, test_images, test_labels)):
        array = np.asarray(array)
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(idx_bytes(array[:, 0] if array.ndim == 4 else array))
    return str(folder)


def ends(pid, guard=120):
    """Whether process ``pid`` ends (a zombie has): the kernel says so through a pidfd; the
    guard only stops a hang, it bounds no speed (a killed process ends in milliseconds)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], guard)[0])
    finally:
        os.close(fd)
