"""evaluate --report (loss, per-class accuracy, the confusion matrix as CSV and PNG) and
predict --only-wrong: on a known toy net, and through the CLI on real Fashion-MNIST."""
import csv
import math
import re

import matplotlib.image
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from gluon_classics import cli, evaluate_accuracy
from gluon_classics.cli import commands
from gluon_classics.data import ArrayLoader
from gluon_classics.data.fashion_mnist import FASHION_MNIST_TEXT_LABELS
from gluon_classics.training.report import (evaluation_report, find_mistakes, format_report,
                                            most_confused)
from helpers import run_cli


class _Guess(gluon.HybridBlock):
    """A 'net' whose logits are the image's first pixels: pixel k of row 0 scores class k."""

    def hybrid_forward(self, F, x):
        return F.slice_axis(F.reshape(x, (0, -1)), axis=1, begin=0, end=3) * 10


def _toy(true, guess, batch_size=4):
    """Images that _Guess classifies as ``guess``; their labels are ``true``."""
    images = np.zeros((len(true), 1, 4, 4), np.uint8)
    images[np.arange(len(true)), 0, 0, guess] = 255
    return ArrayLoader(images, np.array(true), batch_size, ctx=mx.cpu(),
                       text_labels=['a', 'b', 'c'])


def test_the_report_of_a_known_net():
    true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    guess = [0, 1, 0, 1, 2, 2, 0, 0, 2, 1]
    net = _Guess()
    net.initialize()
    data = _toy(true, guess)
    report = evaluation_report(net, data, data.text_labels, mx.cpu())
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (true, guess), 1)
    assert report['matrix'].tolist() == expected.tolist() == [[2, 1, 0], [0, 2, 1], [2, 0, 2]]
    assert report['acc'] == 0.6 == evaluate_accuracy(data, net, mx.cpu())
    assert report['per_class'] == [2 / 3, 2 / 3, 0.5]
    # the loss: softmax cross-entropy of logits 10 * one-hot(guess), averaged
    right, wrong = math.log(1 + 2 * math.exp(-10)), 10 + math.log(1 + 2 * math.exp(-10))
    assert report['loss'] == pytest.approx((6 * right + 4 * wrong) / 10, rel=1e-5)
    assert report['confused'] == [('c', 'a', 2), ('a', 'b', 1), ('b', 'c', 1)]
    assert format_report(report) == [
        'test acc 0.6000 (6/10)', f'test loss {report["loss"]:.4f}', 'per-class accuracy:',
        '  a  0.667 (2/3)', '  b  0.667 (2/3)', '  c  0.500 (2/4)',
        'most confused (true -> predicted: images):', '  c -> a: 2', '  a -> b: 1',
        '  b -> c: 1']


def test_most_confused_leaves_out_the_diagonal_and_zeros():
    assert most_confused([[9, 0], [3, 7]], ['x', 'y']) == [('y', 'x', 3)]
    assert most_confused([[5, 0], [0, 5]], ['x', 'y']) == []


def test_find_mistakes_returns_the_first_n_wrong_in_order():
    true = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    guess = [0, 2, 2, 1, 1, 0, 2, 1, 2]  # wrong: examples 1, 3, 5, 6
    net = _Guess()
    net.initialize()
    images, t, p, seen = find_mistakes(net, _toy(true, guess, batch_size=2), n=3, ctx=mx.cpu())
    assert t.tolist() == [1, 0, 2] and p.tolist() == [2, 1, 0] and seen == 6
    assert images.shape == (3, 1, 4, 4) and images[:, 0, 0, p].diagonal().tolist() == [1] * 3
    _, t, p, seen = find_mistakes(net, _toy(true, guess), n=10, ctx=mx.cpu())
    assert t.tolist() == [1, 0, 2, 0] and seen == 9




@pytest.fixture(scope='module')
def lenet_params(tmp_path_factory, fashion_mnist_dir):
    folder = tmp_path_factory.mktemp('report')
    save = folder / 'lenet.params'
    assert cli.main(['train', 'lenet', '--epochs', '1', '--num-examples', '10000', '--seed',
                     '0', '--activation', 'relu', '--lr', '0.1', '--save', str(save),
                     '--data-dir', fashion_mnist_dir]) == 0
    return save


def test_evaluate_report_writes_the_matrix_its_accuracy_printed(lenet_params, tmp_path,
                                                                 capsys, fashion_mnist_dir):
    data = ['--data-dir', fashion_mnist_dir, '--activation', 'relu']
    status, out, err = run_cli(capsys, 'evaluate', 'lenet', '--params', lenet_params, *data,
                             '--report', tmp_path / 'report')
    assert status == 0, err
    lines = out.strip().splitlines()
    acc, right, n = re.fullmatch(r'test acc (0\.\d{4}) \((\d+)/(\d+)\)', lines[0]).groups()
    assert re.fullmatch(r'test loss \d+\.\d{4}', lines[1]) and lines[2] == 'per-class accuracy:'
    with open(tmp_path / 'report' / 'confusion.csv', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['true\\predicted'] + FASHION_MNIST_TEXT_LABELS
    assert [r[0] for r in rows[1:]] == FASHION_MNIST_TEXT_LABELS
    matrix = np.array([[int(c) for c in r[1:]] for r in rows[1:]])
    assert matrix.sum() == int(n) == 10000  # the whole test split
    assert np.trace(matrix) == int(right) and f'{np.trace(matrix) / 10000:.4f}' == acc
    assert (matrix.sum(axis=1) == 1000).all()  # Fashion-MNIST's test classes
    for i, name in enumerate(FASHION_MNIST_TEXT_LABELS):  # per class: the diagonal
        assert lines[3 + i].split() == [*name.split(), f'{matrix[i, i] / 1000:.3f}',
                                        f'({matrix[i, i]}/1000)']
    off = matrix - np.diag(np.diag(matrix))
    worst = off.max()
    t, p = np.unravel_index(off.argmax(), off.shape)
    assert lines[14] == f'  {FASHION_MNIST_TEXT_LABELS[t]} -> {FASHION_MNIST_TEXT_LABELS[p]}: {worst}'
    assert lines[-1] == f'wrote confusion.csv, confusion.png to {tmp_path / "report"}'
    png = matplotlib.image.imread(tmp_path / 'report' / 'confusion.png')
    assert png.shape[0] > 600 and png.shape[1] > 600  # 10 classes, counts readable
    # the plain evaluate of the same parameters prints the same accuracy
    status, out, _ = run_cli(capsys, 'evaluate', 'lenet', '--params', lenet_params, *data)
    assert status == 0 and out == f'test acc {acc}\n'


def test_evaluate_report_refuses_a_bad_folder_before_reading(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', tmp_path / 'file',
                           '--report', tmp_path / 'file', '--data-dir', tmp_path / 'nowhere')
    assert status == 2
    assert err == f'gluon-classics: error: cannot write into --report {tmp_path / "file"}: it ' \
                  f'is not a folder; give a folder path\n'


def test_predict_only_wrong_draws_only_mistakes_marked(lenet_params, tmp_path, capsys,
                                                      fashion_mnist_dir, monkeypatch):
    drawn = []
    real = commands.show_images
    monkeypatch.setattr(commands, 'show_images', lambda images, *grid, titles, path: (
        drawn.append((images, titles)), real(images, *grid, titles=titles, path=path)))
    data = ['--data-dir', fashion_mnist_dir, '--activation', 'relu']
    status, out, err = run_cli(capsys, 'predict', 'lenet', '--params', lenet_params, *data,
                             '--num', '12', '--only-wrong', '--out', tmp_path / 'wrong.png')
    assert status == 0, err
    seen = int(re.fullmatch(r'saved the 12 misclassified images among the first (\d+) test '
                            r'images with true \(top\) and predicted \(bottom, marked \u2717\) '
                            rf'labels to {re.escape(str(tmp_path / "wrong.png"))}\n', out)[1])
    images, titles = drawn[0]
    assert len(titles) == 12 and all(t.endswith(' \u2717') for t in titles)
    true, pred = zip(*(t[:-2].split('\n') for t in titles))
    assert all(a != b for a, b in zip(true, pred))
    assert (tmp_path / 'wrong.png').stat().st_size > 0
    # the same mistakes as a plain predict of the first `seen` images shows, in order
    drawn.clear()
    status, _, err = run_cli(capsys, 'predict', 'lenet', '--params', lenet_params, *data,
                           '--num', seen, '--out', tmp_path / 'all.png')
    assert status == 0, err
    _, all_titles = drawn[0]
    assert [t for t in all_titles if t.endswith('\u2717')] == titles
    assert sum(not t.endswith('\u2717') for t in all_titles) == seen - 12
