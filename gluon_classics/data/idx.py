"""Read IDX files (the MNIST / Fashion-MNIST format), checking every field.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, ``ndim``
big-endian uint32 dimensions, then the payload in C order. Both datasets use
type ``0x08`` (uint8): images are ``(N, H, W)`` (magic 2051), labels ``(N,)``
(magic 2049). Files may be gzip-compressed (``.gz``) or plain.
"""
import gzip
import math
import os
import struct
import zlib

import numpy as np

from ..errors import Fixable

__all__ = ['DataError', 'read_idx', 'read_idx_pair', 'find_file', 'check_idx_file',
           'IMAGES_MAGIC', 'LABELS_MAGIC']

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension


class DataError(Fixable, ValueError):
    """A data file is missing, corrupt or inconsistent; the message names the file."""


def _read_bytes(path):
    try:
        with open(path, 'rb') as f:
            raw = f.read()
        # Decide by content, not name: a renamed plain file still reads.
        return gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f'{path}: corrupt or truncated gzip data ({err})') from None
    except FileNotFoundError:
        raise DataError(f'{path}: no such file') from None


def read_idx(path, magic):
    """Read one uint8 IDX file into a numpy array.

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    magic : int
        The expected magic number: :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.

    Returns
    -------
    numpy.ndarray
        uint8, shape as the header says.

    Raises
    ------
    DataError
        Wrong magic number, truncated header or payload, or trailing bytes.
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f'{path}: truncated IDX header ({len(raw)} bytes)')
    (found,) = struct.unpack('>I', raw[:4])
    if found != magic:
        raise DataError(f'{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} '
                        f'({"images" if magic == IMAGES_MAGIC else "labels"} IDX file)')
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f'{path}: truncated IDX header ({len(raw)} of {header} bytes)')
    shape = struct.unpack(f'>{ndim}I', raw[4:header])
    size = math.prod(shape)  # a Python int: a huge header cannot overflow into 0
    if len(raw) - header != size:
        what = 'truncated payload' if len(raw) - header < size else 'trailing bytes after payload'
        raise DataError(f'{path}: {what}: header says {"x".join(map(str, shape))} = {size} bytes, '
                        f'file has {len(raw) - header}')
    # frombuffer is a zero-copy view of the decompressed bytes.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_pair(images_path, labels_path, image_size=(28, 28), num_classes=10):
    """Read an images file and its labels file, and check they agree.

    Parameters
    ----------
    images_path, labels_path : str
        The two IDX files.
    image_size : tuple of int, default (28, 28)
        Expected ``(H, W)``.
    num_classes : int, default 10
        Labels must lie in ``[0, num_classes)``.

    Returns
    -------
    images : numpy.ndarray
        uint8, ``(N, 1, H, W)``.
    labels : numpy.ndarray
        int32, ``(N,)``.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if tuple(images.shape[1:]) != tuple(image_size):
        raise DataError(f'{images_path}: images are {images.shape[1]}x{images.shape[2]}, '
                        f'expected {image_size[0]}x{image_size[1]}')
    if len(images) != len(labels):
        raise DataError(f'{images_path} has {len(images)} images but {labels_path} has '
                        f'{len(labels)} labels')
    if len(labels) and labels.max() >= num_classes:
        raise DataError(f'{labels_path}: label {labels.max()} out of range 0..{num_classes - 1}')
    return images[:, None], labels.astype(np.int32)


def find_file(folder, name):
    """Path of ``name.gz`` or ``name`` in ``folder``, or None when neither exists."""
    for candidate in (name + '.gz', name):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def check_idx_file(path, magic):
    """Why ``path`` is not a whole IDX file of ``magic``'s kind, or None; reads a few bytes.

    The IDX header gives the payload's size. A plain file must have exactly that
    size; a gzip file's first bytes must decompress to that header and its
    trailer's ISIZE (the uncompressed size mod 2**32, RFC 1952) must match it,
    which a truncated or damaged download does not. No CRC: that means
    decompressing all of it, which :func:`read_idx` does on use.
    """
    ndim = magic & 0xFF
    want = 4 + 4 * ndim
    try:
        with open(path, 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            start = f.read(4096)
            if start[:2] != b'\x1f\x8b':
                header, total = start[:want], size
            elif size < 18:  # a gzip header and trailer alone take 18 bytes
                return f'truncated gzip data ({size} bytes)'
            else:
                header = zlib.decompressobj(wbits=31).decompress(start, want)
                f.seek(-4, os.SEEK_END)
                (total,) = struct.unpack('<I', f.read(4))
    except zlib.error as err:
        return f'corrupt gzip data ({err})'
    except OSError as err:
        return f'cannot read it ({err.strerror})'
    if len(header) < 4 or struct.unpack('>I', header[:4])[0] != magic:
        return (f'not an IDX file of {"images" if magic == IMAGES_MAGIC else "labels"} '
                f'(magic 0x{magic:08x})')
    if len(header) < want:
        return f'truncated IDX header ({len(header)} of {want} bytes)'
    shape = struct.unpack(f'>{ndim}I', header[4:want])
    expected = want + math.prod(shape)
    if total != expected % 2**32:
        what = 'the gzip trailer says' if start[:2] == b'\x1f\x8b' else 'the file has'
        return (f'truncated or damaged: its header says {"x".join(map(str, shape))} '
                f'({expected} bytes), {what} {total} bytes')
    return None
