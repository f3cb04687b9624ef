"""The chapter's objective is written once (``training/objective.py``): the loop, the plain
graph and the accelerator all compute that definition, so changing it changes every path."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init

from gluon_classics import lenet, train_ch5
from gluon_classics.accel import FastObjective
from gluon_classics.choices import ACCEL_MODES
from gluon_classics.training import make_objective
from gluon_classics.training import objective as chapter


def _net(**kwargs):
    mx.random.seed(0)
    net = lenet(**kwargs)
    net.initialize(init.Xavier())
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.random((16, 1, 28, 28)))
    y = mx.nd.array(rng.integers(0, 10, 16), dtype='int32')
    net(X)
    return net, X, y


def _loss_and_grads(objective, net, X, y):
    with autograd.record():
        loss, correct = objective(X, y)
    loss.backward()
    return (float(loss.asscalar()), float(correct.asscalar()),
            [p.grad().asnumpy().copy() for p in net.collect_params().values()])


def _squares(y_hat, y):
    """Another objective: the summed squared scores (and the same count)."""
    return (y_hat * y_hat).sum(), chapter.count_correct(y_hat, y)


def _assert_same(got, want, what):
    assert got[0] == pytest.approx(want[0], rel=1e-5), what
    assert got[1] == want[1], what
    for a, b in zip(got[2], want[2]):
        assert np.abs(a - b).max() <= 1e-4 * (np.abs(b).max() + 1e-12), what


@pytest.mark.parametrize('kwargs', [{}, {'activation': 'relu', 'pool': 'max'}])
def test_every_path_computes_the_one_definition(monkeypatch, kwargs):
    net, X, y = _net(**kwargs)
    assert isinstance(make_objective(net, [mx.cpu()], accel='on'), FastObjective)
    before = {m: _loss_and_grads(make_objective(net, [mx.cpu()], accel=m), net, X, y)
              for m in ACCEL_MODES}
    # the book's code, imperative: the definition each path must follow
    chapter_loss = gluon.loss.SoftmaxCrossEntropyLoss()
    book = _loss_and_grads(lambda X, y: (chapter_loss(net(X), y.astype('float32')).sum(),
                                         (net(X).argmax(axis=1) == y.astype('float32')).sum()),
                           net, X, y)
    for mode in ACCEL_MODES:
        _assert_same(before[mode], book, mode)

    monkeypatch.setattr(chapter, 'objective', _squares)  # the definition changed, once
    want = _loss_and_grads(lambda X, y: _squares(net(X), y), net, X, y)
    assert want[0] != pytest.approx(book[0], rel=1e-2)
    for mode in ACCEL_MODES:
        objective = make_objective(net, [mx.cpu()], accel=mode)
        assert isinstance(objective, FastObjective) == (mode != 'off'), mode
        _assert_same(_loss_and_grads(objective, net, X, y), want, mode)
    _assert_same(_loss_and_grads(lambda X, y: chapter.forward(net, X, y), net, X, y), want,
                 'forward')


@pytest.mark.parametrize('accel', ['on', 'off'])
def test_the_loop_trains_the_one_definition(monkeypatch, accel):
    net, X, y = _net()
    monkeypatch.setattr(chapter, 'objective', _squares)
    want = float(_squares(net(X), y)[0].asscalar()) / len(y)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.0})  # no step
    [record] = train_ch5(net, [(X, y)], [(X, y)], 16, trainer, mx.cpu(), 1, accel=accel,
                         progress=False, log=lambda *a: None)
    assert record['loss'] == pytest.approx(want, rel=1e-5)
