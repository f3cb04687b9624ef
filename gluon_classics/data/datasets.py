"""Datasets by name, for ``--dataset``: all decoded once into uint8 arrays.

``load_data(name, ...)`` returns ``(train_iter, test_iter)``, two
:class:`~gluon_classics.data.loader.ArrayLoader` with ``num_classes``,
``text_labels`` and ``image_shape`` (C, H, W after resize).
"""
import os

import mxnet as mx
import numpy as np
from mxnet import gluon

from .fashion_mnist import default_root, load_data_fashion_mnist, load_data_mnist
from .idx import DataError
from .loader import ArrayLoader

__all__ = ['load_data', 'DATASETS', 'CIFAR10_TEXT_LABELS', 'read_cifar10', 'read_image_folder']

CIFAR10_TEXT_LABELS = ['airplane', 'automobile', 'bird', 'cat', 'deer',
                       'dog', 'frog', 'horse', 'ship', 'truck']

# Share of a class-folder dataset held out for testing when it has no
# train/ and test/ subfolders, and the seed of that split (fixed, so the test
# set does not move with the shuffle seed).
FOLDER_TEST_FRACTION = 0.1
FOLDER_SPLIT_SEED = 0


def read_cifar10(root=None):
    """CIFAR-10 as uint8 NCHW arrays, through Gluon's dataset (and its download).

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels)
    """
    if root and not os.path.isdir(os.path.expanduser(root)):  # Gluon would create it
        what = 'is a file, not a folder' if os.path.exists(os.path.expanduser(root)) \
            else 'does not exist'
        raise DataError(f'data folder {root} {what}: pass [[root=DIR]] naming the folder '
                        f'that holds the CIFAR-10 batches')
    root = os.path.expanduser(root) if root else default_root('cifar10')
    out = []
    for train in (True, False):
        try:
            ds = gluon.data.vision.CIFAR10(root=root, train=train)
        except Exception as err:  # Gluon raises whatever requests or its own checks raise
            raise DataError(f'could not read or download CIFAR-10 in {root} '
                            f'({type(err).__name__}: {err}); put data_batch_1.bin .. '
                            f'data_batch_5.bin and test_batch.bin (from Gluon\'s '
                            f'cifar-10-binary.tar.gz) there, or pass [[root=DIR]]'
                            .replace('\n', ' ')) from None
        # Gluon keeps the whole split as one NHWC NDArray; going through
        # ds[i] would cost 50,000 small NDArray ops.
        images = np.ascontiguousarray(ds._data.asnumpy().transpose(0, 3, 1, 2))
        out.append((images, np.asarray(ds._label, dtype=np.int32)))
    return tuple(out)


def _decode(items, size):
    """Decode and resize every image once: uint8 (N, 3, H, W)."""
    images = np.empty((len(items), 3) + size, dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        try:
            img = mx.image.imread(path, flag=1)
        except mx.base.MXNetError as err:
            raise DataError(f'{path}: cannot decode image ({str(err).splitlines()[0]})') from None
        # interp=1 (bilinear) is what gluon's transforms.Resize uses.
        img = mx.image.imresize(img, size[1], size[0], interp=1)
        images[i] = img.asnumpy().transpose(2, 0, 1)
    return images, np.array([label for _, label in items], dtype=np.int32)


def _image_folder(path):
    if not os.path.isdir(path):
        raise DataError(f'{path}: no such folder')
    ds = gluon.data.vision.ImageFolderDataset(path, flag=1)
    if not ds.items:
        raise DataError(f'{path}: no .jpg/.jpeg/.png images in class subfolders')
    return ds


def read_image_folder(root, size=(224, 224)):
    """A folder of class subfolders as uint8 NCHW arrays, resized to ``size``.

    ``root/train`` and ``root/test`` are used when both exist; otherwise a
    seeded 90/10 split of ``root`` itself.

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels), class_names
    """
    root = os.path.expanduser(root)
    train_dir, test_dir = os.path.join(root, 'train'), os.path.join(root, 'test')
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        train, test = _image_folder(train_dir), _image_folder(test_dir)
        if train.synsets != test.synsets:
            raise DataError(f'{train_dir} and {test_dir} have different class folders: '
                            f'{train.synsets} vs {test.synsets}')
        return _decode(train.items, size), _decode(test.items, size), train.synsets
    ds = _image_folder(root)
    if len(ds.items) < 2:
        raise DataError(f'{root}: need at least 2 images to split into train and test')
    images, labels = _decode(ds.items, size)
    order = np.random.default_rng(FOLDER_SPLIT_SEED).permutation(len(labels))
    n_test = max(1, round(len(labels) * FOLDER_TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test]), ds.synsets


def _cifar10(batch_size, resize, root, ctx, shuffle_seed):
    train, test = read_cifar10(root)
    common = dict(batch_size=batch_size, resize=resize, ctx=ctx, shuffle_seed=shuffle_seed,
                  num_classes=10, text_labels=CIFAR10_TEXT_LABELS)
    return ArrayLoader(*train, shuffle=True, **common), ArrayLoader(*test, **common)


def _folder(path, batch_size, resize, ctx, shuffle_seed):
    size = resize or 224
    size = (size, size) if np.isscalar(size) else tuple(size)
    train, test, classes = read_image_folder(path, size)
    # Resized once at decode time, so the loaders need no per-batch resize.
    common = dict(batch_size=batch_size, ctx=ctx, shuffle_seed=shuffle_seed,
                  num_classes=len(classes), text_labels=classes)
    return ArrayLoader(*train, shuffle=True, **common), ArrayLoader(*test, **common)


DATASETS = {
    'fashion-mnist': load_data_fashion_mnist,
    'mnist': load_data_mnist,
    'cifar10': _cifar10,
}


def load_data(name, batch_size, resize=None, root=None, ctx=None, shuffle_seed=None):
    """Train and test iterators of a dataset by name.

    Parameters
    ----------
    name : str
        ``'fashion-mnist'``, ``'mnist'``, ``'cifar10'`` or ``'folder:PATH'``
        (one subfolder of images per class).
    batch_size : int
        Examples per batch; the last, partial batch is kept.
    resize : int or (int, int), optional
        Output image size. For the named datasets each batch is resized on
        ``ctx``; for ``folder:`` images are resized once when decoded
        (224 when None).
    root : str, optional
        Data folder of a named dataset (ignored for ``folder:PATH``).
    ctx : mxnet.Context, optional
        Where batches live; ``try_gpu()`` by default.
    shuffle_seed : int, optional
        Seed of the per-epoch training shuffle.

    Returns
    -------
    train_iter, test_iter : ArrayLoader
        With ``num_classes``, ``text_labels`` and ``image_shape``.
    """
    if name.startswith('folder:') and name[len('folder:'):]:
        return _folder(name[len('folder:'):], batch_size, resize, ctx, shuffle_seed)
    key = name.lower()
    if key not in DATASETS:
        raise ValueError(f'unknown dataset {name!r}: choose one of '
                         f'{", ".join(sorted(DATASETS))} or folder:PATH')
    return DATASETS[key](batch_size, resize, root, ctx, shuffle_seed)
