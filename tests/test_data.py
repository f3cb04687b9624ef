"""Data: IDX parsing and its errors, downloads, the batched loader, the registry, plots.

Everything but the real-data tests runs on small files written here. Nothing
downloads from the internet: mirrors are file:// folders or a server on
127.0.0.1, and the official mirrors are swapped for a dead one in every test.
The real-data tests read ``$GLUON_CLASSICS_DATA/fashion-mnist`` and fail (not
skip) when it is not set.
"""
import functools
import gzip
import hashlib
import http.server
import io
import os
import threading
import urllib.request

import mxnet as mx
import numpy as np
import pytest

import gluon_classics
from gluon_classics.data import (FASHION_MNIST, MNIST, ArrayLoader, DataError, DownloadError,
                                 default_root, download, ensure_files, get_fashion_mnist_labels,
                                 load_data, load_data_fashion_mnist, read_idx_pair)
from gluon_classics.data.loader import epoch_permutation, resize_batch
from gluon_classics.utils.plots import show_images
from helpers import IDX_FILES as NAMES, assert_png, idx_bytes

CPU = mx.cpu()


# ---------------------------------------------------------------- helpers

def write(path, data, gz=True):
    with open(path, 'wb') as f:
        f.write(gzip.compress(data) if gz else data)
    return str(path)


def indexed_images(n, size=(28, 28)):
    """uint8 (n, H, W) images whose first two pixels encode their index."""
    rng = np.random.RandomState(n)
    images = rng.randint(0, 256, (n,) + size).astype(np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return images


def indices_of(X):
    """Recover the indices from a float batch made of :func:`indexed_images`."""
    px = np.rint(X.asnumpy()[:, 0, 0, :2] * 255).astype(int)
    return px[:, 0] + 256 * px[:, 1]


def make_mnist_folder(folder, n_train=50, n_test=20, gz=True):
    """The four IDX files of a small MNIST-like dataset; returns the arrays."""
    os.makedirs(folder, exist_ok=True)
    arrays = []
    for prefix, n in (('train', n_train), ('t10k', n_test)):
        images, labels = indexed_images(n), np.arange(n, dtype=np.uint8) % 10
        ext = '.gz' if gz else ''
        write(os.path.join(folder, f'{prefix}-images-idx3-ubyte{ext}'), idx_bytes(images), gz)
        write(os.path.join(folder, f'{prefix}-labels-idx1-ubyte{ext}'), idx_bytes(labels), gz)
        arrays.append((images, labels))
    return arrays


def sha1_of(path):
    with open(path, 'rb') as f:
        return hashlib.sha1(f.read()).hexdigest()


def file_url(path):
    return 'file://' + os.path.abspath(path)


@pytest.fixture(autouse=True)
def no_official_mirrors(monkeypatch, tmp_path_factory):
    """Any download a test did not ask for fails fast instead of reaching the internet."""
    dead = file_url(tmp_path_factory.mktemp('dead') / 'nothing-here')
    monkeypatch.setitem(FASHION_MNIST, 'mirrors', [dead])
    monkeypatch.setitem(MNIST, 'mirrors', [dead])


@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / 'fmnist'
    return str(folder), make_mnist_folder(folder)


# ---------------------------------------------------------------- IDX parsing

@pytest.mark.parametrize('gz', [True, False])
def test_reads_gzipped_and_plain_idx(tmp_path, gz):
    (train, test) = make_mnist_folder(tmp_path, gz=gz)
    train_iter, test_iter = load_data_fashion_mnist(16, root=str(tmp_path), ctx=CPU)
    X = np.concatenate([x.asnumpy() for x, _ in test_iter])
    y = np.concatenate([y.asnumpy() for _, y in test_iter])
    np.testing.assert_array_equal(np.rint(X * 255).astype(np.uint8)[:, 0], test[0])
    np.testing.assert_array_equal(y, test[1])
    np.testing.assert_array_equal(train_iter.images[:, 0], train[0])
    assert train_iter.labels.dtype == np.int32


def _broken(tmp_path, case):
    """Write a (images, labels) pair with one defect; return the paths and the bad one."""
    images, labels = indexed_images(12), np.arange(12, dtype=np.uint8) % 10
    img, lab = tmp_path / 'imgs-idx3-ubyte.gz', tmp_path / 'labs-idx1-ubyte.gz'
    img_bytes, lab_bytes = idx_bytes(images), idx_bytes(labels)
    bad = str(img)
    if case == 'bad magic':
        img_bytes = idx_bytes(images, magic=0x0803 + 0x100)
    elif case == 'labels file as images':
        img_bytes, bad = lab_bytes, str(img)
    elif case == 'truncated gzip':
        write(lab, lab_bytes)
        img.write_bytes(gzip.compress(img_bytes)[:-40])
        return str(img), str(lab), bad, 'gzip'
    elif case == 'truncated payload':
        img_bytes = img_bytes[:-100]
    elif case == 'truncated header':
        img_bytes = img_bytes[:10]
    elif case == 'trailing bytes':
        lab_bytes, bad = lab_bytes + b'\0', str(lab)
    elif case == 'count mismatch':
        lab_bytes, bad = idx_bytes(labels[:11]), str(lab)
    elif case == 'wrong image size':
        img_bytes = idx_bytes(indexed_images(12, (32, 32)))
    elif case == 'label out of range':
        lab_bytes, bad = idx_bytes(np.full(12, 10, np.uint8)), str(lab)
    write(img, img_bytes)
    write(lab, lab_bytes)
    words = {'bad magic': 'magic', 'labels file as images': 'magic',
             'truncated payload': 'truncated',
             'truncated header': 'truncated', 'trailing bytes': 'trailing',
             'count mismatch': '11 labels', 'wrong image size': '32x32',
             'label out of range': 'out of range'}
    return str(img), str(lab), bad, words[case]


@pytest.mark.parametrize('case', ['bad magic', 'labels file as images', 'truncated gzip',
                                  'truncated payload', 'truncated header', 'trailing bytes',
                                  'count mismatch', 'wrong image size', 'label out of range'])
def test_bad_idx_files_raise_one_line_naming_the_file(tmp_path, case):
    img, lab, bad, word = _broken(tmp_path, case)
    with pytest.raises(DataError) as err:
        read_idx_pair(img, lab)
    msg = str(err.value)
    assert bad in msg and word in msg and '\n' not in msg, msg
    assert isinstance(err.value, ValueError)


def test_bad_file_in_dataset_folder_reaches_the_user(mnist_dir):
    folder, _ = mnist_dir
    path = os.path.join(folder, 't10k-labels-idx1-ubyte.gz')
    write(path, idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataError, match='t10k-labels-idx1-ubyte.gz has 7 labels'):
        load_data_fashion_mnist(8, root=folder, ctx=CPU)


# ---------------------------------------------------------------- downloads

@pytest.fixture
def served(tmp_path):
    """A mirror folder with the four gzipped files, and their SHA-1s."""
    mirror = tmp_path / 'mirror'
    arrays = make_mnist_folder(mirror)
    sha1 = {n + '.gz': sha1_of(mirror / (n + '.gz')) for n in NAMES}
    return str(mirror), sha1, arrays


@pytest.fixture
def http_mirror(served):
    """The mirror folder served on 127.0.0.1; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=served[0])
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_first_mirror_fails_second_serves_over_http(tmp_path, served, http_mirror, monkeypatch,
                                                     capsys):
    _, sha1, (_, test) = served
    monkeypatch.setitem(FASHION_MNIST, 'sha1', sha1)
    root = tmp_path / 'cache'
    root.mkdir()  # a given folder is never created: a typo must not become an empty folder
    _, test_iter = load_data_fashion_mnist(
        8, root=str(root), ctx=CPU, mirrors=[http_mirror + 'missing/', http_mirror])
    assert sorted(os.listdir(root)) == sorted(sha1)  # exactly the files, no temporaries
    assert all(sha1_of(root / name) == digest for name, digest in sha1.items())
    np.testing.assert_array_equal(test_iter.images[:, 0], test[0])
    assert 'downloading train-images-idx3-ubyte.gz' in capsys.readouterr().err


def test_file_mirrors_fetch_into_an_empty_folder(tmp_path, served):
    mirror, sha1, _ = served
    root = tmp_path / 'cache'
    root.mkdir()
    paths = ensure_files(str(root), sha1, [file_url(tmp_path / 'nope'), file_url(mirror)],
                         progress=False)
    assert sorted(os.listdir(root)) == sorted(sha1)
    assert all(sha1_of(paths[name]) == digest for name, digest in sha1.items())


def test_a_partial_folder_names_the_missing_files_and_downloads_nothing(tmp_path, served):
    mirror, sha1, _ = served
    root = tmp_path / 'data'
    root.mkdir()
    # another copy of the data set: an official file must not be paired with it
    write(root / 'train-images-idx3-ubyte', b'local copy', gz=False)
    with pytest.raises(DataError) as err:
        ensure_files(str(root), sha1, [file_url(mirror)], progress=False)
    msg = str(err.value)
    assert '\n' not in msg and all(name in msg for name in list(sha1)[1:]), msg
    assert 'train-images' not in msg.split('not ')[1].split(':')[0]
    assert os.listdir(root) == ['train-images-idx3-ubyte']


def test_a_missing_data_folder_is_not_created(tmp_path, served):
    mirror, sha1, _ = served
    root = tmp_path / 'typo'
    with pytest.raises(DataError, match='typo does not exist'):
        load_data_fashion_mnist(8, root=str(root), ctx=CPU, mirrors=[file_url(mirror)])
    assert not root.exists()


def test_root_and_env_take_the_files_folder_or_its_parent(tmp_path, monkeypatch):
    _, test = make_mnist_folder(tmp_path / 'data' / 'fashion-mnist', n_train=30)
    for root in (tmp_path / 'data', tmp_path / 'data' / 'fashion-mnist'):
        _, test_iter = load_data_fashion_mnist(8, root=str(root), ctx=CPU, mirrors=[])
        np.testing.assert_array_equal(test_iter.images[:, 0], test[0])
        monkeypatch.setenv('GLUON_CLASSICS_DATA', str(root))
        _, test_iter = load_data_fashion_mnist(8, ctx=CPU, mirrors=[])
        np.testing.assert_array_equal(test_iter.images[:, 0], test[0])
    assert not (tmp_path / 'data' / 'fashion-mnist' / 'fashion-mnist').exists()


def test_checksum_mismatch_leaves_no_file(tmp_path, served):
    mirror, _, _ = served
    root = tmp_path / 'cache'
    with pytest.raises(DownloadError, match='SHA-1') as err:
        download('train-labels-idx1-ubyte.gz', str(root), [file_url(mirror)], sha1='0' * 40,
                 progress=False)
    assert 'train-labels-idx1-ubyte.gz' in str(err.value)
    assert os.listdir(root) == []


class _CutResponse(io.BytesIO):
    """A response that dies halfway through, like a dropped connection."""

    def __init__(self, data, exc):
        super().__init__(data[:len(data) // 2])
        self.headers, self.exc = {'Content-Length': str(len(data))}, exc

    def read(self, n=-1):
        chunk = super().read(n)
        if not chunk:
            raise self.exc
        return chunk


@pytest.mark.parametrize('exc', [ConnectionResetError('reset by peer'), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_half_file(tmp_path, served, monkeypatch, exc):
    mirror, sha1, _ = served
    name = 'train-images-idx3-ubyte.gz'
    data = open(os.path.join(mirror, name), 'rb').read()
    real_urlopen = urllib.request.urlopen

    def urlopen(url, timeout=None):
        return _CutResponse(data, exc) if 'flaky' in url else real_urlopen(url, timeout=timeout)

    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    root = tmp_path / 'cache'
    mirrors = ['http://flaky.invalid/', file_url(mirror)]
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C stops everything, cleanly
        with pytest.raises(KeyboardInterrupt):
            download(name, str(root), mirrors, sha1[name], progress=False)
        assert os.listdir(root) == []
    else:  # a dropped connection moves on to the next mirror
        path = download(name, str(root), mirrors, sha1[name], progress=False)
        assert os.listdir(root) == [name] and sha1_of(path) == sha1[name]


def test_no_network_is_one_line_naming_folder_and_files(tmp_path):
    root = tmp_path / 'empty'
    root.mkdir()
    with pytest.raises(DataError) as err:
        load_data_fashion_mnist(8, root=str(root), ctx=CPU,
                                mirrors=[file_url(tmp_path / 'a'), file_url(tmp_path / 'b')])
    msg = str(err.value)
    assert '\n' not in msg and str(root) in msg, msg
    assert all(name + '.gz' in msg for name in NAMES), msg
    assert [p for p in os.listdir(root)] == []  # nothing half-written


def test_default_folders(monkeypatch, tmp_path):
    monkeypatch.setenv('GLUON_CLASSICS_DATA', str(tmp_path / 'data'))
    assert default_root('mnist') == str(tmp_path / 'data' / 'mnist')
    monkeypatch.delenv('GLUON_CLASSICS_DATA')
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxhome'))
    assert default_root('fashion-mnist') == str(tmp_path / 'mxhome' / 'datasets' / 'fashion-mnist')


def test_env_folder_is_used_without_root(monkeypatch, tmp_path):
    make_mnist_folder(tmp_path / 'mnist', n_train=30)
    monkeypatch.setenv('GLUON_CLASSICS_DATA', str(tmp_path))
    train_iter, _ = load_data('mnist', 8, ctx=CPU)
    assert train_iter.num_examples == 30 and train_iter.text_labels[3] == '3'


# ---------------------------------------------------------------- the loader

def make_loader(n=50, batch_size=16, **kwargs):
    images = indexed_images(n)[:, None]
    return ArrayLoader(images, np.arange(n) % 10, batch_size, ctx=CPU, **kwargs)


def test_batches_len_and_last_partial_batch():
    loader = make_loader(50, 16, shuffle=True, shuffle_seed=3)
    batches = list(loader)
    assert len(loader) == 4 == len(batches)
    assert [X.shape[0] for X, _ in batches] == [16, 16, 16, 2]
    X, y = batches[0]
    assert X.dtype == np.float32 and X.shape == (16, 1, 28, 28) and X.context == CPU
    assert y.dtype == np.float32 and y.shape == (16,)  # as mx.io iterators give labels
    assert 0 <= X.min().asscalar() and X.max().asscalar() <= 1
    seen = np.concatenate([indices_of(X) for X, _ in batches])
    assert sorted(seen) == list(range(50))  # every example exactly once
    labels = np.concatenate([y.asnumpy() for _, y in batches])
    np.testing.assert_array_equal(labels, seen % 10)  # labels follow their images


def test_shuffled_batches_gathered_in_chunks_equal_the_images():
    # 16 MiB of floats per gather: 334 batches of 16, so 6000 images take two gathers
    n, b = 6000, 16
    images = indexed_images(n)[:, None]
    loader = ArrayLoader(images, np.arange(n) % 10, b, shuffle=True, shuffle_seed=5, ctx=CPU)
    order = epoch_permutation(n, 5, 0)
    batches = list(loader)
    assert [X.shape[0] for X, _ in batches] == [b] * (n // b)
    X = np.concatenate([X.asnumpy() for X, _ in batches])
    np.testing.assert_array_equal(X, images[order].astype(np.float32) / 255)
    np.testing.assert_array_equal(np.concatenate([y.asnumpy() for _, y in batches]), order % 10)


def test_test_order_is_unshuffled_and_reiterable():
    loader = make_loader(50, 16)
    for _ in range(2):
        assert list(np.concatenate([indices_of(X) for X, _ in loader])) == list(range(50))
    assert loader.epoch == 2


def _order(loader):
    return np.concatenate([indices_of(X) for X, _ in loader])


def test_shuffle_is_a_function_of_seed_and_epoch():
    a, b = make_loader(shuffle=True, shuffle_seed=7), make_loader(shuffle=True, shuffle_seed=7)
    a0, a1, a2 = _order(a), _order(a), _order(a)
    assert a.epoch == 3
    assert not np.array_equal(a0, a1) and not np.array_equal(a1, a2)
    b.epoch = 2  # a resumed run
    np.testing.assert_array_equal(_order(b), a2)
    b.epoch = 0
    np.testing.assert_array_equal(_order(b), a0)
    np.testing.assert_array_equal(a0, epoch_permutation(50, 7, 0))
    assert not np.array_equal(_order(make_loader(shuffle=True, shuffle_seed=8)), a0)


def test_unseeded_shuffle_uses_numpys_global_rng():
    loader = make_loader(shuffle=True)
    np.random.seed(1)
    first = _order(loader)
    np.random.seed(1)
    np.testing.assert_array_equal(_order(loader), first)
    assert not np.array_equal(_order(loader), first)


def _bilinear_reference(img, out_h, out_w):
    """Half-pixel (OpenCV) bilinear resize of one float (H, W) image, in numpy."""
    def weights(n_in, n_out):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), (src - i0)[:, None]
    r0, r1, wr = weights(img.shape[0], out_h)
    c0, c1, wc = weights(img.shape[1], out_w)
    rows = img[r0] * (1 - wr) + img[r1] * wr
    return rows[:, c0] * (1 - wc.T) + rows[:, c1] * wc.T


@pytest.mark.parametrize('size', [(56, 56), (40, 20), (14, 14)])
def test_resized_batches_match_a_float_reference(size):
    loader = make_loader(20, 8, resize=size if size[0] != size[1] else size[0])
    X, _ = next(iter(loader))
    assert X.shape == (8, 1) + size and loader.image_shape == (1,) + size
    X = X.asnumpy()
    for i in range(8):
        img = loader.images[i, 0].astype(np.float32) / 255
        np.testing.assert_allclose(X[i, 0], _bilinear_reference(img, *size), atol=1e-5)
        ref = mx.image.imresize(mx.nd.array(img[:, :, None]), size[1], size[0], interp=1)
        np.testing.assert_allclose(X[i, 0], ref.asnumpy()[:, :, 0], atol=1e-5)
    # d2l-zh PR 140: resizing uint8 before scaling gave all-zero images
    assert X.max() > 0.9


def test_both_resize_paths_agree_on_colour_batches():
    # The GPU path is BilinearResize2D(align_corners=False); check on the CPU
    # that this convention is the one the CPU path (OpenCV) computes.
    X = mx.nd.array(np.random.RandomState(0).rand(3, 3, 10, 12).astype(np.float32))
    cpu = resize_batch(X, (30, 17)).asnumpy()
    gpu_op = mx.nd.contrib.BilinearResize2D(X, height=30, width=17, align_corners=False)
    np.testing.assert_allclose(cpu, gpu_op.asnumpy(), atol=1e-5)
    np.testing.assert_allclose(cpu[1, 2], _bilinear_reference(X.asnumpy()[1, 2], 30, 17),
                               atol=1e-5)


def test_subset():
    loader = make_loader(50, 16, shuffle=True, shuffle_seed=1, resize=32)
    sub = loader.subset(10, seed=4)
    assert sub.num_examples == 10 and len(sub) == 1 and sub.epoch == 0
    assert (sub.batch_size, sub.resize, sub.shuffle, sub.shuffle_seed, sub.ctx) == \
           (16, (32, 32), True, 1, CPU)
    picked = sub.images[:, 0, 0, 0] + 256 * sub.images[:, 0, 0, 1].astype(int)
    np.testing.assert_array_equal(picked, np.random.default_rng(4).permutation(50)[:10])
    np.testing.assert_array_equal(sub.labels, picked % 10)
    np.testing.assert_array_equal(loader.subset(10, seed=4).images, sub.images)
    assert not np.array_equal(loader.subset(10, seed=5).images, sub.images)
    with pytest.raises(ValueError, match=r'^subset size must be in 1\.\.50, got 51$'):
        loader.subset(51)


def test_shard():
    loader = make_loader(50, 16)
    parts = [loader.shard(3, i) for i in range(3)]
    assert [p.num_examples for p in parts] == [16, 17, 17]
    order = np.concatenate([_order(p) for p in parts])
    assert list(order) == list(range(50))  # disjoint, contiguous, covering
    with pytest.raises(ValueError, match=r'^need 0 <= index < num_parts <= 50, got index=3, '
                                         r'num_parts=3$'):
        loader.shard(3, 3)


def test_loader_rejects_bad_arrays():
    with pytest.raises(ValueError, match='uint8'):
        ArrayLoader(np.zeros((4, 1, 5, 5), np.float32), np.zeros(4), 2, ctx=CPU)
    with pytest.raises(ValueError, match='labels'):
        ArrayLoader(np.zeros((4, 1, 5, 5), np.uint8), np.zeros(3), 2, ctx=CPU)


# ---------------------------------------------------------------- registry

def test_registry_mnist_like(mnist_dir):
    folder, _ = mnist_dir
    train_iter, test_iter = load_data('fashion-mnist', 8, resize=32, root=folder, ctx=CPU)
    for it in (train_iter, test_iter):
        assert it.num_classes == 10 and it.image_shape == (1, 32, 32)
        assert it.text_labels[9] == 'ankle boot'
    assert train_iter.shuffle and not test_iter.shuffle
    assert next(iter(test_iter))[0].shape == (8, 1, 32, 32)
    assert load_data('mnist', 8, root=folder, ctx=CPU)[0].text_labels == list('0123456789')


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError) as err:
        load_data('imagenet', 8)
    msg = str(err.value)
    assert all(c in msg for c in ('fashion-mnist', 'mnist', 'cifar10', 'folder:PATH'))
    assert '\n' not in msg


def _png_folder(root, counts, size=(12, 10)):
    """Class folders of solid red ('cat') or blue ('dog') PNGs of mixed sizes."""
    from PIL import Image
    for label, (name, n) in enumerate(zip(('cat', 'dog'), counts)):
        os.makedirs(root / name, exist_ok=True)
        for i in range(n):
            rgb = np.zeros((size[0] + i, size[1], 3), np.uint8)
            rgb[..., 0 if label == 0 else 2] = 200
            Image.fromarray(rgb).save(root / name / f'{i}.png')


def _check_colours(loader):
    for X, y in loader:
        red = X.asnumpy()[:, 0].mean(axis=(1, 2)) > X.asnumpy()[:, 2].mean(axis=(1, 2))
        np.testing.assert_array_equal(red, y.asnumpy() == 0)


def test_registry_image_folder_split(tmp_path):
    _png_folder(tmp_path, (6, 6))
    train_iter, test_iter = load_data(f'folder:{tmp_path}', 4, resize=16, ctx=CPU,
                                      shuffle_seed=0)
    assert (train_iter.num_examples, test_iter.num_examples) == (11, 1)
    assert train_iter.num_classes == 2 and test_iter.text_labels == ['cat', 'dog']
    assert train_iter.image_shape == (3, 16, 16) and train_iter.images.shape == (11, 3, 16, 16)
    _check_colours(train_iter)
    _check_colours(test_iter)
    # the split is seeded: the same test image every time
    again = load_data(f'folder:{tmp_path}', 4, resize=16, ctx=CPU)[1]
    np.testing.assert_array_equal(again.images, test_iter.images)


def test_registry_image_folder_train_test_subfolders(tmp_path):
    _png_folder(tmp_path / 'train', (3, 2))
    _png_folder(tmp_path / 'test', (1, 2))
    train_iter, test_iter = load_data(f'folder:{tmp_path}', 4, ctx=CPU)
    assert (train_iter.num_examples, test_iter.num_examples) == (5, 3)
    assert test_iter.image_shape == (3, 224, 224)  # the default size
    _check_colours(test_iter)
    (tmp_path / 'test' / 'bird').mkdir()
    (tmp_path / 'test' / 'bird' / '0.png').write_bytes((tmp_path / 'test/dog/0.png').read_bytes())
    with pytest.raises(DataError, match='different class folders'):
        load_data(f'folder:{tmp_path}', 4, ctx=CPU)


def test_registry_cifar10_decodes_gluons_arrays_once(monkeypatch, tmp_path):
    nhwc = np.random.RandomState(0).randint(0, 256, (5, 32, 32, 3)).astype(np.uint8)

    class FakeCIFAR10:  # Gluon's dataset holds one NHWC NDArray and int32 labels
        def __init__(self, root, train):
            self._data = mx.nd.array(nhwc, dtype=np.uint8)
            self._label = np.arange(5, dtype=np.int32) + (0 if train else 5)

    monkeypatch.setattr(mx.gluon.data.vision, 'CIFAR10', FakeCIFAR10)
    train_iter, test_iter = load_data('cifar10', 2, root=str(tmp_path), ctx=CPU)
    assert train_iter.image_shape == (3, 32, 32) and train_iter.text_labels[0] == 'airplane'
    np.testing.assert_array_equal(test_iter.images, nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(test_iter.labels, np.arange(5, 10))
    X, _ = next(iter(test_iter))
    np.testing.assert_allclose(X.asnumpy(), nhwc[:2].transpose(0, 3, 1, 2) / 255, atol=1e-7)


# ---------------------------------------------------------------- labels and plots

def test_text_labels():
    expected = ['t-shirt', 'ankle boot', 'bag']
    assert get_fashion_mnist_labels([0, 9, 8]) == expected
    assert get_fashion_mnist_labels(np.array([0, 9, 8])) == expected
    assert get_fashion_mnist_labels(mx.nd.array([0, 9, 8], dtype=np.int32)) == expected


def test_show_images_saves_a_file(tmp_path):
    import matplotlib.pyplot as plt
    loader = make_loader(6, 6)
    X, y = next(iter(loader))
    path = tmp_path / 'grid.png'
    axes = show_images(X, 2, 3, titles=get_fashion_mnist_labels(y), path=str(path))
    assert len(axes) == 6 and axes[1].get_title() == 'trouser'
    assert path.stat().st_size > 1000
    assert_png(path)
    plt.close('all')


def test_package_exports():
    for name in ('load_data_fashion_mnist', 'get_fashion_mnist_labels', 'show_images',
                 'load_data', 'DataError'):
        assert name in gluon_classics.__all__ and hasattr(gluon_classics, name)


# ---------------------------------------------------------------- the real data set

@pytest.fixture(scope='module')
def real_fashion_mnist(data_root):
    """The shared Fashion-MNIST copy, read through $GLUON_CLASSICS_DATA (no ``root``)."""
    return load_data_fashion_mnist(256, ctx=CPU, shuffle_seed=0)


def test_real_fashion_mnist(real_fashion_mnist):
    train_iter, test_iter = real_fashion_mnist
    assert (train_iter.num_examples, test_iter.num_examples) == (59946, 10000)
    assert (len(train_iter), len(test_iter)) == (235, 40)
    assert train_iter.images.shape == (59946, 1, 28, 28) and train_iter.images.dtype == np.uint8
    assert sorted(set(train_iter.labels)) == list(range(10))
    np.testing.assert_array_equal(np.bincount(test_iter.labels), [1000] * 10)
    sizes, lo, hi = [], 1.0, 0.0
    for X, y in test_iter:
        assert X.dtype == np.float32 and X.shape[1:] == (1, 28, 28) and y.dtype == np.float32
        sizes.append(X.shape[0])
        lo, hi = min(lo, X.min().asscalar()), max(hi, X.max().asscalar())
    assert sum(sizes) == 10000 and sizes[-1] == 10000 - 39 * 256
    assert lo == 0.0 and hi == 1.0


def test_real_fashion_mnist_resized_for_alexnet(real_fashion_mnist):
    train_iter, _ = real_fashion_mnist
    sub = ArrayLoader(train_iter.images[:4], train_iter.labels[:4], 4, resize=224, ctx=CPU)
    X = next(iter(sub))[0].asnumpy()
    assert X.shape == (4, 1, 224, 224) and X.max() > 0.5
    ref = _bilinear_reference(train_iter.images[0, 0].astype(np.float32) / 255, 224, 224)
    np.testing.assert_allclose(X[0, 0], ref, atol=1e-5)
