"""Fashion-MNIST and MNIST: the d2l loader, decoded once and batched on the context.

Where the files come from, in order: ``root``, ``$GLUON_CLASSICS_DATA``,
``$MXNET_HOME/datasets/<name>`` (``~/.mxnet/datasets/<name>`` by default,
where Gluon caches them, so its earlier downloads are reused). ``root`` and
``$GLUON_CLASSICS_DATA`` may name the folder holding the files or its parent
holding ``<name>/`` (:func:`data_folder`). Files found are read as they are;
when none is there they are downloaded from the mirrors and checked against
Gluon's official SHA-1. Only Gluon's cache folder is ever created.
"""
import os

import mxnet as mx

from .download import ensure_files, gluon_repo_url
from .idx import DataError, find_file, read_idx_pair
from .loader import ArrayLoader

__all__ = ['load_data_fashion_mnist', 'load_data_mnist', 'get_fashion_mnist_labels',
           'read_mnist_folder', 'default_root', 'data_folder', 'resolve_folder',
           'FASHION_MNIST', 'MNIST',
           'FASHION_MNIST_TEXT_LABELS', 'MNIST_TEXT_LABELS', 'IDX_FILES']

FASHION_MNIST_TEXT_LABELS = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                             'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
MNIST_TEXT_LABELS = [str(i) for i in range(10)]

# train images, train labels, test images, test labels
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')

# Per dataset: the official SHA-1s (mxnet/gluon/data/vision/datasets.py), the
# mirrors tried in order (module-level lists, so tests and users can swap
# them), and the class names.
FASHION_MNIST = dict(
    name='fashion-mnist',
    sha1=dict(zip((f + '.gz' for f in IDX_FILES),
                  ('0cf37b0d40ed5169c6b3aba31069a9770ac9043d',
                   '236021d52f1e40852b06a4c3008d8de8aef1e40b',
                   '626ed6a7c06dd17c0eec72fa3be1740f146a2863',
                   '17f9ab60e7257a1620f4ad76bbbaf857c3920701'))),
    mirrors=['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
             gluon_repo_url('fashion-mnist')],
    text_labels=FASHION_MNIST_TEXT_LABELS,
)
MNIST = dict(
    name='mnist',
    sha1=dict(zip((f + '.gz' for f in IDX_FILES),
                  ('6c95f4b05d2bf285e1bfb0e7960c31bd3b3f8a7d',
                   '2a80914081dc54586dbdf242f9805a6b8d2a15fc',
                   'c3a25af1f52dad7f726cce8cacb138654b760d48',
                   '763e7fa3757d93b0cdec073cef058b2004252c17'))),
    # yann.lecun.com now often refuses robots, so its S3 copy (used by
    # torchvision) and Gluon's come first.
    mirrors=['https://ossci-datasets.s3.amazonaws.com/mnist/',
             gluon_repo_url('mnist'),
             'http://yann.lecun.com/exdb/mnist/'],
    text_labels=MNIST_TEXT_LABELS,
)


def data_folder(root, name, files=IDX_FILES):
    """The folder of a data set given ``root``: ``root`` itself when it holds any of
    ``files``, else ``root/<name>`` when that folder exists, else ``root``."""
    root = os.path.expanduser(root)
    nested = os.path.join(root, name)
    if os.path.isdir(nested) and not any(find_file(root, f) for f in files):
        return nested
    return root


def default_root(name):
    """The folder a dataset is read from when no ``root`` is given.

    ``$GLUON_CLASSICS_DATA/<name>`` if that variable is set, else Gluon's
    cache ``$MXNET_HOME/datasets/<name>`` (``~/.mxnet/datasets/<name>``).
    """
    base = os.environ.get('GLUON_CLASSICS_DATA')
    if base:
        return os.path.join(os.path.expanduser(base), name)
    return os.path.join(mx.base.data_dir(), 'datasets', name)


def resolve_folder(name, root=None):
    """The folder a dataset's files are read from, given ``root`` (``--data-dir``).

    ``root``, else ``$GLUON_CLASSICS_DATA``, each as the folder or its parent
    (:func:`data_folder`); else Gluon's cache. Returns ``(folder, base)``, ``base``
    being the user's choice (None for the cache, the one folder ever created).
    """
    base = root or os.environ.get('GLUON_CLASSICS_DATA')
    if base and os.path.exists(os.path.expanduser(base)) \
            and not os.path.isdir(os.path.expanduser(base)):
        where = f'[[root={base}]]' if root else f'GLUON_CLASSICS_DATA={base}'
        raise DataError(f'{where} is a file, not a folder: name the folder that holds the '
                        f'{name} files (or its parent)')
    return (data_folder(base, name) if base else default_root(name)), base


def read_mnist_folder(spec, root=None, mirrors=None, progress=True):
    """Decode the four IDX files of an MNIST-like dataset, downloading missing ones.

    Parameters
    ----------
    spec : dict
        :data:`FASHION_MNIST` or :data:`MNIST`.
    root : str, optional
        The folder holding the files, or its parent holding ``<name>/``;
        ``$GLUON_CLASSICS_DATA`` (the same two levels), then Gluon's cache
        when None.
    mirrors : sequence of str, optional
        Base URLs to download from; ``spec['mirrors']`` when None.
    progress : bool, default True
        Report download progress on stderr.

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels)
        uint8 ``(N, 1, 28, 28)`` and int32 ``(N,)`` numpy arrays.
    """
    folder, base = resolve_folder(spec['name'], root)
    paths = ensure_files(folder, spec['sha1'], spec['mirrors'] if mirrors is None else mirrors,
                         progress, create=not base)
    paths = [paths[f + '.gz'] for f in IDX_FILES]
    return read_idx_pair(paths[0], paths[1]), read_idx_pair(paths[2], paths[3])


def _load(spec, batch_size, resize, root, ctx, shuffle_seed, mirrors, label_dtype):
    train, test = read_mnist_folder(spec, root, mirrors)
    common = dict(batch_size=batch_size, resize=resize, ctx=ctx, shuffle_seed=shuffle_seed,
                  num_classes=10, text_labels=spec['text_labels'], label_dtype=label_dtype)
    return ArrayLoader(*train, shuffle=True, **common), ArrayLoader(*test, shuffle=False, **common)


def load_data_fashion_mnist(batch_size, resize=None, root=None, ctx=None, shuffle_seed=None,
                            *, mirrors=None, label_dtype='float32'):
    """Fashion-MNIST as d2l's ``load_data_fashion_mnist`` gives it, only faster.

    Parameters
    ----------
    batch_size : int
        Examples per batch; the last, partial batch is kept.
    resize : int or (int, int), optional
        Bilinearly resize batches to this size (224 for AlexNet).
    root : str, optional
        Folder with the four IDX files (``.gz`` or not), or its parent holding
        ``fashion-mnist/``; see :func:`read_mnist_folder`.
    ctx : mxnet.Context, optional
        Where batches live; ``try_gpu()`` by default.
    shuffle_seed : int, optional
        Seed for the per-epoch shuffle of the training set (see :class:`ArrayLoader`).
    mirrors : sequence of str, optional
        Base URLs to download missing files from; the official mirrors when None.
    label_dtype : str, default 'float32'
        dtype of the labels in the batches (see :class:`ArrayLoader`).

    Returns
    -------
    train_iter, test_iter : ArrayLoader
        ``(X, y)`` batches: X float32 in [0, 1], ``(B, 1, H, W)``; y float32
        class indices. ``mx.np.ndarray`` arrays while numpy mode is active.
        The training iterator reshuffles every epoch; the test one does not.

    Raises
    ------
    DataError
        A file is corrupt or inconsistent, or missing and cannot be downloaded.
    """
    return _load(FASHION_MNIST, batch_size, resize, root, ctx, shuffle_seed, mirrors, label_dtype)


def load_data_mnist(batch_size, resize=None, root=None, ctx=None, shuffle_seed=None,
                    *, mirrors=None, label_dtype='float32'):
    """MNIST digits, with the interface of :func:`load_data_fashion_mnist`."""
    return _load(MNIST, batch_size, resize, root, ctx, shuffle_seed, mirrors, label_dtype)


def get_fashion_mnist_labels(labels):
    """Text labels (d2l's names) of Fashion-MNIST class indices.

    Parameters
    ----------
    labels : iterable of int, numpy array or NDArray

    Returns
    -------
    list of str
    """
    if hasattr(labels, 'asnumpy'):
        labels = labels.asnumpy()
    return [FASHION_MNIST_TEXT_LABELS[int(i)] for i in labels]
