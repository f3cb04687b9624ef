"""The oneDNN-shaped training graph computes the same loss, count and gradients."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, init

from gluon_classics import alexnet, lenet
from gluon_classics.training.onednn import onednn_objective
from gluon_classics.training.trainer import _Objective

CASES = {
    'd2l': dict(variant='d2l'),
    'gluon': dict(variant='gluon'),
    'lenet5 (32x32)': dict(variant='lenet5'),
    'relu+max': dict(activation='relu', pool='max'),
    'kernel 3': dict(kernel_size=3),
    'kernel 7': dict(kernel_size=7),
    'channels 6-16-16': dict(channels=(6, 16, 16)),
    'channels 3-5, no dense': dict(channels=(3, 5), dense_units=()),
}


def _grads(objective, net, X, y):
    for p in net.collect_params().values():
        p.zero_grad()
    with autograd.record():
        loss, correct = objective(X, y)
    loss.backward()
    return loss.asscalar(), correct.asscalar(), {
        name: p.grad().asnumpy().copy() for name, p in net.collect_params().items()}


@pytest.mark.parametrize('case', list(CASES))
def test_same_loss_count_and_gradients(case):
    mx.random.seed(0)
    net = lenet(**CASES[case])
    size = net.input_shape[-1]
    net.initialize(init.Xavier())
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.random((32, 1, size, size)))
    y = mx.nd.array(rng.integers(0, 10, 32), dtype='int32')
    net(X)
    fast = onednn_objective(net, [mx.cpu()])
    assert fast is not None, 'the rewrite should apply to every LeNet'
    plain = _Objective(net)
    loss_a, count_a, grads_a = _grads(plain, net, X, y)
    loss_b, count_b, grads_b = _grads(fast, net, X, y)
    assert loss_b == pytest.approx(loss_a, rel=1e-5) and count_a == count_b
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        scale = np.abs(grads_a[name]).max() + 1e-12
        assert np.abs(grads_a[name] - grads_b[name]).max() / scale < 1e-4, name
    # the Parameters keep the chapter's shapes
    assert net.features[0].weight.shape[:2] == (net.features[0]._channels, 1)


def test_alexnet_is_left_alone():
    net = alexnet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 224, 224)))
    assert onednn_objective(net, [mx.cpu()]) is None


def test_not_used_on_gpu_contexts():
    net = lenet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    assert onednn_objective(net, [mx.gpu(0)]) is None
