"""The chapter notebooks run top to bottom, at a small size, and show what they promise.

Each notebook is executed once per session by ``notebooks/run.py`` (nbclient,
kernel ``python3``, working directory a temporary folder), with its small
parameters injected in a cell right after its ``parameters`` cell, papermill
style. Any error in any
cell fails the test. Fashion-MNIST comes from ``$GLUON_CLASSICS_DATA``: without
it the tests fail (CI must not silently skip them). The MNIST exercise reads a
tiny MNIST folder the tests write (CI has no MNIST).
"""
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from gluon_classics.devices import num_gpus
from helpers import bar_images, write_idx_folder

NOTEBOOKS = Path(__file__).resolve().parent.parent / 'notebooks'
sys.path.insert(0, str(NOTEBOOKS))
from run import KERNEL, SMALL, execute  # noqa: E402  (notebooks/run.py)


def _read(name):
    return nbformat.read(str(NOTEBOOKS / name), as_version=4)


def _tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.metadata.get('tags', [])]
    assert cells, f'no cell tagged {tag!r}'
    return cells


def _execute(name, tmp_path_factory, data_root):
    cwd = tmp_path_factory.mktemp(name.replace('.', '_'))
    return execute(name, dict(SMALL[name], DATA_DIR=data_root), str(cwd))


@pytest.fixture(scope='module')
def lenet_data(tmp_path_factory, data_root):
    """A data root holding the real fashion-mnist/ (linked) and a tiny mnist/ (3,000 training
    and 1,000 test digits, as many as the notebook's small run takes: bar_images)."""
    root = tmp_path_factory.mktemp('data')
    (root / 'fashion-mnist').symlink_to(os.path.join(data_root, 'fashion-mnist'))
    images, labels = bar_images(4000)
    write_idx_folder(root / 'mnist', images[:3000], labels[:3000], images[3000:], labels[3000:])
    return str(root)


@pytest.fixture(scope='module')
def lenet_nb(tmp_path_factory, lenet_data):
    return _execute('lenet.ipynb', tmp_path_factory, lenet_data)


@pytest.fixture(scope='module')
def alexnet_nb(tmp_path_factory, data_root):
    return _execute('alexnet.ipynb', tmp_path_factory, data_root)


def _text(cell):
    return ''.join(o.get('text', '') for o in cell.get('outputs', []) if o.output_type == 'stream')


def _images(cell):
    return sum('image/png' in o.get('data', {}) for o in cell.get('outputs', []))


def _all_text(nb):
    return '\n'.join(_text(c) for c in nb.cells if c.cell_type == 'code')


@pytest.mark.parametrize('name', sorted(SMALL))
def test_committed_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f'{name}: strip outputs and execution counts (code cells {dirty})'
    assert _tagged(nb, 'parameters')[0] is code[0], f'{name}: parameters must be the first code cell'
    assert nb.metadata['kernelspec']['name'] == KERNEL


@pytest.mark.parametrize('name', sorted(SMALL))
def test_small_parameters_exist(name):
    source = _tagged(_read(name), 'parameters')[0].source
    for key in list(SMALL[name]) + ['DATA_DIR']:
        assert f'\n{key} = ' in '\n' + source, f'{name}: parameters cell lacks {key}'


def test_lenet_runs_and_shows_its_pictures(lenet_nb):
    shapes = _text(_tagged(lenet_nb, 'shapes')[0])
    for line in ('conv0 output shape: (1, 6, 28, 28)', 'pool1 output shape: (1, 16, 5, 5)',
                 'dense2 output shape: (1, 10)',          # d2l
                 'conv0 output shape: (1, 6, 24, 24)',    # the Gluon article
                 'conv2 output shape: (1, 120, 1, 1)'):   # LeNet-5
        assert line in shapes
    assert '61,706 parameters' in shapes
    for tag in ('shapes-picture', 'samples', 'curve', 'predictions', 'feature-maps',
                'activations', 'exercise-summary', 'numpy-mode'):
        assert all(_images(c) for c in _tagged(lenet_nb, tag)), f'no picture in the {tag!r} cell'
    assert 'epoch 2, loss' in _text(_tagged(lenet_nb, 'train')[0])
    text = _all_text(lenet_nb)
    assert 'test acc' in _text(_tagged(lenet_nb, 'curve')[0])
    assert 'max-pool' in text and 'kernel 7x7' in text and 'uniform noise' in text
    # the 2nd edition's train_ch6 in numpy mode: the book's two lines (the live plot is above)
    book = _text(_tagged(lenet_nb, 'numpy-mode')[0])
    assert re.search(r'^loss \d\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}$', book,
                     re.M), book
    assert re.search(r'^\d+\.\d examples/sec on (cpu|gpu)\(0\)$', book, re.M), book
    assert 'batches are mxnet.numpy.ndarray' in book


def test_lenet_mnist_exercise_trains_on_the_mnist_folder(lenet_nb):
    cell = _tagged(lenet_nb, 'mnist')[0]
    text = _text(cell)
    assert 'MNIST skipped' not in text and re.search(r'^MNIST +test acc \d\.\d{3}', text, re.M), \
        text
    assert _images(cell) >= 1, 'no picture of the MNIST samples'


def test_alexnet_runs(alexnet_nb):
    text = _all_text(alexnet_nb)
    shapes = _text(_tagged(alexnet_nb, 'shapes')[0])
    assert 'conv0 output shape: (1, 96, 54, 54)' in shapes
    assert 'dense2 output shape: (1, 10)' in shapes
    assert '46,764,746' in _text(_tagged(alexnet_nb, 'parameters-table')[0])
    assert 'smallest input AlexNet takes: 67x67' in text
    speed = _text(_tagged(alexnet_nb, 'speed')[0])
    device = 'GPU' if num_gpus() else 'CPU'  # the kernel runs on this machine
    assert re.match(rf'AlexNet at 224x224 trains at about [\d.]+ images/s on this {device}',
                    speed), speed
    small = _text(_tagged(alexnet_nb, 'small-shapes')[0])
    assert 'pool2 output shape: (1, 64, 2, 2)' in small and '713,418' in small
    assert 'fewer multiply-adds per image' in small
    assert 'epoch 1, loss' in _text(_tagged(alexnet_nb, 'train')[0])
    assert 'test acc' in _text(_tagged(alexnet_nb, 'curve')[0])
    assert 'shown are right' in _text(_tagged(alexnet_nb, 'predictions')[0])
    for tag in ('parameters-table', 'samples', 'curve', 'predictions'):
        assert all(_images(c) for c in _tagged(alexnet_nb, tag)), f'no picture in the {tag!r} cell'
