"""A batched iterator over images held as one uint8 array on the target context.

d2l's loader runs ``ToTensor`` (and ``Resize``) once per image in Python and
stacks the results, which dominates an epoch of LeNet on a CPU. Here the whole
dataset is uploaded once; a batch is one ``take`` (or a slice), one cast and
one scale, and a resize is one ``BilinearResize2D`` call on the batch.
"""
import math

import mxnet as mx
import numpy as np

from ..devices import try_gpu

__all__ = ['ArrayLoader', 'epoch_permutation', 'resize_batch']


def epoch_permutation(num_examples, seed, epoch):
    """The shuffled order of ``epoch``: a pure function of ``(seed, epoch)``.

    With ``seed=None`` numpy's global RNG is used, as d2l's loader does.
    """
    if seed is None:
        return np.random.permutation(num_examples)
    # SeedSequence mixes both numbers, so (seed, epoch) pairs never collide
    # the way ``seed + epoch`` would.
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def _resize_hw(resize):
    if resize is None:
        return None
    h, w = (resize, resize) if np.isscalar(resize) else resize
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f'bad resize {resize!r}: use a positive int or (height, width)')
    return int(h), int(w)


def resize_batch(X, size):
    """Bilinearly resize a float32 ``(B, C, H, W)`` batch to ``size = (height, width)``.

    Both paths compute OpenCV's (and ``mx.image.imresize``'s) half-pixel
    bilinear resize, which is what ``gluon``'s ``transforms.Resize`` does per
    image: ``BilinearResize2D`` with ``align_corners=False`` on GPUs, and on
    CPUs OpenCV itself through ``mx.nd.image.resize``, which there is faster than
    ``BilinearResize2D`` (docs/data.md has the measurement).
    """
    height, width = size
    if X.context.device_type != 'cpu':
        return mx.nd.contrib.BilinearResize2D(X, height=height, width=width,
                                              align_corners=False)
    b, c = X.shape[:2]
    # image.resize wants NHWC; with one channel NCHW and NHWC share the layout.
    X = X.reshape((b,) + X.shape[2:] + (1,)) if c == 1 else X.transpose((0, 2, 3, 1))
    X = mx.nd.image.resize(X, size=(width, height), interp=1)
    return X.reshape((b, 1, height, width)) if c == 1 else X.transpose((0, 3, 1, 2))


class ArrayLoader:
    """Re-iterable ``(X, y)`` batches over uint8 images, on one context.

    ``X`` is float32 in [0, 1] of shape ``(B, C, H, W)`` (after ``resize``),
    ``y`` float32 class indices of shape ``(B,)`` (``label_dtype``), both on
    ``ctx``: legacy NDArrays, or ``mx.np.ndarray`` arrays while numpy mode
    (``npx.set_np()``) is active. The last batch may be smaller. Each
    ``iter()`` starts a new epoch and increments :attr:`epoch`.

    Parameters
    ----------
    images : numpy.ndarray
        uint8, ``(N, C, H, W)``.
    labels : numpy.ndarray
        Integer class indices, ``(N,)``.
    batch_size : int
        Examples per batch.
    shuffle : bool, default False
        Reshuffle at the start of every epoch.
    resize : int or (int, int), optional
        Bilinearly resize each batch to this size on ``ctx``.
    ctx : mxnet.Context, optional
        Where batches live; :func:`~gluon_classics.devices.try_gpu` by default.
    shuffle_seed : int, optional
        Makes the order of epoch ``k`` depend only on ``(shuffle_seed, k)``;
        with None numpy's global RNG decides.
    num_classes : int, optional
        Number of classes; ``labels.max() + 1`` when None.
    text_labels : list of str, optional
        Class names, indexed by label.
    label_dtype : str, default 'float32'
        dtype of the batches' labels. float32 is what MXNet's own iterators
        (``mx.io.MNISTIter``, ``NDArrayIter``) give and what ``argmax`` returns,
        so ``y_hat.argmax(axis=1) == y`` works without a cast, as the Gluon
        article writes it; ``'int32'`` gives what Gluon's datasets hold.

    Attributes
    ----------
    epoch : int
        The epoch the next ``iter()`` will produce; set it to resume a run.
    image_shape : tuple of int
        ``(C, H, W)`` of the batches (after ``resize``).
    """

    def __init__(self, images, labels, batch_size, shuffle=False, resize=None, ctx=None,
                 shuffle_seed=None, num_classes=None, text_labels=None, label_dtype='float32'):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f'images must be uint8 (N, C, H, W), got {images.dtype} '
                             f'{images.shape}')
        if labels.shape != (len(images),):
            raise ValueError(f'labels must have shape ({len(images)},), got {labels.shape}')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be positive, got {batch_size}')
        if isinstance(ctx, (list, tuple)):
            raise ValueError('ArrayLoader takes one context; split batches across devices '
                             'with gluon.utils.split_and_load')
        self.images = images
        self.labels = labels.astype(np.int32, copy=False)
        self.label_dtype = np.dtype(label_dtype).name
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.resize = _resize_hw(resize)
        self.ctx = ctx if ctx is not None else try_gpu()
        self.shuffle_seed = shuffle_seed
        self.num_classes = int(num_classes if num_classes is not None
                               else (self.labels.max() + 1 if len(self.labels) else 0))
        self.text_labels = list(text_labels) if text_labels is not None else \
            [str(i) for i in range(self.num_classes)]
        self.epoch = 0
        self._on_ctx = None  # uploaded on first use: building a loader costs nothing

    @property
    def num_examples(self):
        """Number of examples."""
        return len(self.images)

    @property
    def image_shape(self):
        """``(C, H, W)`` of the batches, after ``resize``."""
        return (self.images.shape[1],) + (self.resize or self.images.shape[2:])

    def __len__(self):
        return math.ceil(self.num_examples / self.batch_size)

    def __repr__(self):
        return (f'ArrayLoader({self.num_examples} examples, batch_size={self.batch_size}, '
                f'image_shape={self.image_shape}, shuffle={self.shuffle}, ctx={self.ctx})')

    def _arrays(self):
        if self._on_ctx is None:
            self._on_ctx = (mx.nd.array(self.images, ctx=self.ctx, dtype=np.uint8),
                            mx.nd.array(self.labels, ctx=self.ctx, dtype=self.label_dtype))
        return self._on_ctx

    def _batch(self, X):
        # Cast before scaling and resizing: resizing uint8 and then dividing
        # is the d2l-zh PR 140 bug that gave all-zero images.
        X = X.astype(np.float32) / 255
        return resize_batch(X, self.resize) if self.resize else X

    def __iter__(self):
        # Not a generator function: the epoch is taken when iter() is called,
        # not lazily at the first next().
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = epoch_permutation(self.num_examples, self.shuffle_seed, epoch) \
            if self.shuffle else None
        if mx.util.is_np_array():  # numpy mode: the same batches, as mx.np views
            return ((X.as_np_ndarray(), y.as_np_ndarray()) for X, y in self._batches(order))
        return self._batches(order)

    def _batches(self, order):
        images, labels = self._arrays()
        n, b = self.num_examples, self.batch_size
        if order is None:
            for start in range(0, n, b):  # contiguous slices are views: no gather
                # copy() so that a caller writing into y cannot touch the dataset
                yield self._batch(images[start:start + b]), labels[start:start + b].copy()
            return
        order = mx.nd.array(order, ctx=self.ctx, dtype=np.int32)
        # Gather, cast and scale several batches per call (about 16 MiB of floats):
        # the same values, with a fraction of the operator calls per batch.
        step = b * max(1, (16 << 20) // (4 * b * int(np.prod(self.image_shape))))
        for first in range(0, n, step):
            idx = order[first:first + step]
            X, y = self._batch(mx.nd.take(images, idx, axis=0)), mx.nd.take(labels, idx, axis=0)
            for start in range(0, idx.shape[0], b):  # slices along axis 0 are views
                yield X[start:start + b], y[start:start + b]

    def _like(self, images, labels):
        return ArrayLoader(images, labels, self.batch_size, self.shuffle, self.resize, self.ctx,
                           self.shuffle_seed, self.num_classes, self.text_labels,
                           self.label_dtype)

    def subset(self, n, seed=0):
        """A loader over ``n`` examples: the first ``n`` of a seeded permutation.

        Settings are kept; the new loader starts at epoch 0.
        """
        if not 0 < n <= self.num_examples:
            raise ValueError(f'subset size must be in 1..{self.num_examples}, got {n}')
        idx = np.random.default_rng(seed).permutation(self.num_examples)[:n]
        return self._like(self.images[idx], self.labels[idx])

    def shard(self, num_parts, index):
        """A loader over part ``index`` of ``num_parts`` disjoint contiguous parts.

        Part sizes differ by at most one; together the parts cover every
        example once. Settings are kept; the new loader starts at epoch 0.
        """
        if not 0 <= index < num_parts or num_parts > self.num_examples:
            raise ValueError(f'need 0 <= index < num_parts <= {self.num_examples}, '
                             f'got index={index}, num_parts={num_parts}')
        start = index * self.num_examples // num_parts
        stop = (index + 1) * self.num_examples // num_parts
        return self._like(self.images[start:stop], self.labels[start:stop])
