"""doctor's data lines: the folder `train --data-dir` reads, and damaged files found cheaply."""
import gzip
import os
import shutil

import numpy as np
import pytest

from gluon_classics import doctor
from gluon_classics.data.fashion_mnist import FASHION_MNIST, read_mnist_folder
from gluon_classics.data.idx import IMAGES_MAGIC, LABELS_MAGIC, check_idx_file
from helpers import IDX_FILES as FILES, idx_bytes


def _idx(magic, shape):
    return idx_bytes(np.zeros(shape, np.uint8), magic)


def _write(path, raw, compress=True):
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return str(path)


def _line(facts):
    line, = [x for x in doctor.format_report(facts) if x.startswith('fashion-mnist: ')]
    return line


@pytest.mark.parametrize('level', ['parent', 'folder'])
def test_data_dir_at_either_level_as_train_reads_it(data_root, fashion_mnist_dir, level):
    """`train --data-dir ../shared/data` works: doctor finds the same four files there."""
    given = data_root if level == 'parent' else fashion_mnist_dir
    facts = doctor.report(given)
    data = facts['fashion_mnist']
    assert data['folder'] == fashion_mnist_dir
    assert all(data['files'].values()) and data['damaged'] == {}
    read_mnist_folder(FASHION_MNIST, given, mirrors=[])  # the loader reads that folder too
    assert _line(facts) == f'fashion-mnist: {fashion_mnist_dir} (4 of 4 files there)'
    assert not any('Fashion-MNIST' in hint for hint in facts['hints'])


def test_gluon_classics_data_is_resolved_the_same_way(monkeypatch, data_root, fashion_mnist_dir):
    monkeypatch.setenv('GLUON_CLASSICS_DATA', data_root)
    assert doctor.report()['fashion_mnist']['folder'] == fashion_mnist_dir


def test_whole_files_pass_the_check(fashion_mnist_dir, tmp_path):
    for name in FILES:
        magic = IMAGES_MAGIC if '-images-' in name else LABELS_MAGIC
        assert check_idx_file(os.path.join(fashion_mnist_dir, name + '.gz'), magic) is None
    plain = _write(tmp_path / 'labels', _idx(LABELS_MAGIC, (5,)), compress=False)
    assert check_idx_file(plain, LABELS_MAGIC) is None


def test_damaged_files_are_named(tmp_path):
    raw = _idx(IMAGES_MAGIC, (3, 28, 28))
    whole = gzip.compress(raw)
    truncated = _write(tmp_path / 'cut.gz', whole[:len(whole) // 2], compress=False)
    assert 'truncated or damaged' in check_idx_file(truncated, IMAGES_MAGIC)
    assert 'gzip trailer says' in check_idx_file(truncated, IMAGES_MAGIC)
    short = _write(tmp_path / 'short', raw[:-1], compress=False)
    assert check_idx_file(short, IMAGES_MAGIC) == (
        'truncated or damaged: its header says 3x28x28 (2368 bytes), the file has 2367 bytes')
    labels = _write(tmp_path / 'labels.gz', _idx(LABELS_MAGIC, (3,)))
    assert check_idx_file(labels, IMAGES_MAGIC) == \
        'not an IDX file of images (magic 0x00000803)'
    (tmp_path / 'tiny.gz').write_bytes(whole[:12])
    assert check_idx_file(str(tmp_path / 'tiny.gz'), IMAGES_MAGIC) == \
        'truncated gzip data (12 bytes)'
    (tmp_path / 'junk.gz').write_bytes(b'\x1f\x8b' + bytes(40))
    assert check_idx_file(str(tmp_path / 'junk.gz'), IMAGES_MAGIC).startswith(
        'corrupt gzip data')


def test_doctor_counts_a_truncated_gz_as_damaged(fashion_mnist_dir, tmp_path):
    for name in FILES:
        shutil.copy(os.path.join(fashion_mnist_dir, name + '.gz'), tmp_path)
    cut = tmp_path / 't10k-labels-idx1-ubyte.gz'
    cut.write_bytes(cut.read_bytes()[:-100])
    facts = doctor.report(str(tmp_path))
    assert list(facts['fashion_mnist']['damaged']) == ['t10k-labels-idx1-ubyte']
    assert _line(facts) == f'fashion-mnist: {tmp_path} (4 of 4 files there, 1 damaged)'
    hint, = [h for h in facts['hints'] if h.startswith('Fashion-MNIST: ')]
    assert hint.startswith(f'Fashion-MNIST: {cut}: truncated or damaged: its header says 10000 '
                           f'(10008 bytes), the gzip trailer says ')
    assert hint.endswith(': replace it with a whole copy')
