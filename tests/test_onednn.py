"""The oneDNN-shaped training graph computes the same loss, count and gradients,
and applies only where the net's forward is the chain of its layers. LeNet's
two conv blocks run on our own operators (conv_pool.cc) there, checked here
for the same numbers in every shape they take."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init
from mxnet.gluon import nn

from gluon_classics import alexnet, lenet
from gluon_classics.model_zoo import LeNet
from gluon_classics.accel import kernels
from gluon_classics.training import make_objective
from gluon_classics.training.objective import plain_objective
from helpers import HAVE_COMPILER, fast_objective, without_kernels

# our kernels where a compiler is (CI has one); else the same checks on MXNet's operators
FIRST_BLOCK = 'conv_pool' if HAVE_COMPILER else 'conv'
TWO_BLOCKS = ['conv_pool', 'conv_pool_maps'] if HAVE_COMPILER else ['conv', 'pool']


def _sequential():  # a user's own chain, not the zoo's class
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, padding=2, activation='sigmoid'), nn.AvgPool2D(2, 2),
            nn.Conv2D(16, 5, activation='relu'), nn.MaxPool2D(2, 2), nn.Dropout(0.0),
            nn.Dense(120, activation='tanh'), nn.Dense(10))
    net.input_shape = (1, 28, 28)
    return net


CASES = {
    'd2l': dict(variant='d2l'),
    'gluon': dict(variant='gluon'),
    'lenet5 (32x32)': dict(variant='lenet5'),
    'relu+max': dict(activation='relu', pool='max'),
    'kernel 3': dict(kernel_size=3),
    'kernel 7': dict(kernel_size=7),
    'channels 6-16-16': dict(channels=(6, 16, 16)),
    'channels 3-5, no dense': dict(channels=(3, 5), dense_units=()),
    'channels 1-16': dict(channels=(1, 16)),
    'channels 1-1-9': dict(channels=(1, 1, 9)),
    'channels 17-7': dict(channels=(17, 7)),
    'HybridSequential': _sequential,
}


def _batch(net, n=32):
    rng = np.random.default_rng(0)
    size = net.input_shape[-1]
    X = mx.nd.array(rng.random((n, 1, size, size)))
    y = mx.nd.array(rng.integers(0, 10, n), dtype='int32')
    return X, y


def _grads(objective, net, X, y):
    for p in net.collect_params().values():
        p.zero_grad()
    with autograd.record():
        loss, correct = objective(X, y)
    loss.backward()
    return loss.asscalar(), correct.asscalar(), {
        name: p.grad().asnumpy().copy() for name, p in net.collect_params().items()}


def _assert_same(objective, net, X, y):
    """``objective`` computes what the net's own (imperative) forward computes."""
    loss_a, count_a, grads_a = _grads(plain_objective(net, hybridize=False), net, X, y)
    loss_b, count_b, grads_b = _grads(objective, net, X, y)
    assert loss_b == pytest.approx(loss_a, rel=1e-5) and count_a == count_b
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        scale = np.abs(grads_a[name]).max() + 1e-12
        assert np.abs(grads_a[name] - grads_b[name]).max() / scale < 1e-4, name


def _built(make):
    mx.random.seed(0)
    net = make()
    net.initialize(init.Xavier())
    X, y = _batch(net)
    net(X)
    return net, X, y


@pytest.mark.parametrize('case', list(CASES))
def test_same_loss_count_and_gradients(case):
    spec = CASES[case]
    net, X, y = _built(spec if callable(spec) else lambda: lenet(**spec))
    fast = fast_objective(net, [mx.cpu()])
    assert fast is not None, 'the rewrite should apply to every LeNet'
    # our kernels take both conv blocks, except LeNet-5's (tanh, which they do not compute)
    ops = [op['op'] for op in fast.graph()._ops]
    assert ops[:2] == (['conv', 'pool'] if case == 'lenet5 (32x32)' else TWO_BLOCKS)
    _assert_same(fast, net, X, y)
    # the Parameters keep the chapter's shapes, and the net is not hybridized behind its back
    first = next(layer for layer in net._children.values() if isinstance(layer, nn.Conv2D)) \
        if case == 'HybridSequential' else net.features[0]
    assert first.weight.shape[:2] == (first._channels, 1)
    assert not any(block._active for block in _blocks(net))


def _blocks(block):
    yield block
    for child in block._children.values():
        yield from _blocks(child)


class ShiftedReLU(nn.HybridBlock):
    """LeNet's layers, but the forward does more than chain them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_shape = (1, 28, 28)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(nn.Conv2D(6, 5, padding=2, activation='sigmoid'),
                              nn.AvgPool2D(2, 2), nn.Conv2D(16, 5, activation='sigmoid'))
            self.output = nn.Dense(10)

    def hybrid_forward(self, F, x):
        return self.output(F.relu(self.features(x) - 0.5) * 3)


class OutOfOrder(nn.HybridBlock):
    """The dense layer registered before the convs it follows."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_shape = (1, 28, 28)
        with self.name_scope():
            self.output = nn.Dense(10)
            self.pool = nn.MaxPool2D(2, 2)
            self.conv = nn.Conv2D(6, 5, activation='relu')

    def hybrid_forward(self, F, x):
        return self.output(self.pool(self.conv(x)))


class DeeperLeNet(LeNet):
    """A zoo subclass with its own forward: its class no longer vouches for the chain."""

    def hybrid_forward(self, F, x):
        return self.output(F.tanh(self.features(x)))


def _d2l_lenet(cls, convs=((6, 'same', True), (16, 0, True))):
    return cls(convs=convs, dense_units=(120, 84))


@pytest.mark.parametrize('make', [ShiftedReLU, OutOfOrder, lambda: _d2l_lenet(DeeperLeNet)],
                         ids=['ShiftedReLU', 'OutOfOrder', 'DeeperLeNet'])
def test_other_forwards_train_on_their_own_function(make):
    net, X, y = _built(make)
    assert fast_objective(net, [mx.cpu()]) is None
    objective = make_objective(net, [mx.cpu()])  # what train_ch5 trains on
    _assert_same(objective, net, X, y)
    assert not any(block._active for block in _blocks(net))


def test_zoo_subclass_keeping_the_forward_is_rewritten():
    class Wider(LeNet):
        pass
    net, X, y = _built(lambda: _d2l_lenet(Wider, ((8, 'same', True), (16, 0, True))))
    _assert_same(fast_objective(net, [mx.cpu()]), net, X, y)


def test_hooks_and_patched_forwards_are_left_alone():
    net, X, y = _built(lenet)
    net.features[2].register_forward_hook(lambda block, inputs, output: None)
    assert fast_objective(net, [mx.cpu()]) is None
    net, X, y = _built(lenet)
    net.hybrid_forward = lambda F, x: net.output(net.features(x) * 2)
    assert fast_objective(net, [mx.cpu()]) is None
    _assert_same(make_objective(net, [mx.cpu()]), net, X, y)


def test_alexnet_is_left_alone():
    net = alexnet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 224, 224)))
    assert fast_objective(net, [mx.cpu()]) is None


def test_not_used_on_gpu_contexts():
    net = lenet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    assert fast_objective(net, [mx.gpu(0)]) is None


class Doubled(nn.Sequential):
    """A Sequential subclass whose forward is not its chain."""

    def forward(self, x):
        return super().forward(x) * 2


def test_sequential_subclass_trains_on_its_own_forward():
    def make():
        net = Doubled()
        net.add(nn.Conv2D(6, 5, activation='sigmoid'), nn.AvgPool2D(2, 2), nn.Dense(10))
        net.input_shape = (1, 28, 28)
        return net
    net, X, y = _built(make)
    loss, _ = make_objective(net, [mx.cpu()])(X, y)
    own = gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y.astype('float32')).sum()
    assert loss.asscalar() == pytest.approx(own.asscalar(), rel=1e-5)


def _block(size, channels=5, kernel=5, padding=2, act='relu', pool=nn.MaxPool2D, q=2):
    """A conv block on 1-channel images, then another conv and a dense layer."""
    def make():
        net = nn.HybridSequential()
        net.add(nn.Conv2D(channels, kernel, padding=padding, activation=act), pool(q, q),
                nn.Conv2D(4, 3, activation='sigmoid'), nn.Dense(10))
        net.input_shape = (1, size, size)
        return net
    return make


@pytest.mark.parametrize('make', [
    _block(64),  # two tiles of 32 columns
    _block(70, kernel=3, padding=1, act='sigmoid', pool=nn.AvgPool2D),
    _block(80, q=4, act=None),
    _block(40, kernel=9, padding=4, q=8, pool=nn.AvgPool2D),
    _block(30, q=4),  # rows and columns 28, 29 under no window
    _block(33, q=1, channels=9, padding=0),
], ids=['64px', '70px k3 avg', '80px pool4 identity', '40px k9 pool8', '30px pool4', 'pool1 9ch'])
def test_our_kernel_in_other_shapes(make):
    net, X, y = _built(make)
    fast = fast_objective(net, [mx.cpu()])
    assert fast.graph()._ops[0]['op'] == FIRST_BLOCK
    _assert_same(fast, net, X, y)


def test_max_pool_ties_go_to_the_first_maximum():
    """Constant images make equal activations in every inner window: MXNet's
    pooling gives the gradient to the first of them, and so must ours."""
    net, _, y = _built(_block(28, padding=0))
    X = mx.nd.ones((32, 1, 28, 28))
    X[:, :, ::7] = 0.5  # a few rows that differ, so the gradient is not all one tie
    _assert_same(fast_objective(net, [mx.cpu()]), net, X, y)


def test_a_nan_weight_gives_a_nan_loss():
    net, X, y = _built(lenet)
    weight = net.features[0].weight.data()
    weight[0, 0, 0, 0] = float('nan')
    loss, _ = fast_objective(net, [mx.cpu()])(X, y)
    assert np.isnan(loss.asscalar())


@pytest.mark.parametrize('conv', [0, 2])
def test_gradients_added_not_written_keep_mxnets_operators(conv):
    net, X, y = _built(lenet)
    net.features[conv].weight.grad_req = 'add'
    fast = fast_objective(net, [mx.cpu()])
    ops = [op['op'] for op in fast.graph()._ops]
    if conv == 0:
        assert ops[:2] == ['conv', 'pool']
    elif FIRST_BLOCK == 'conv_pool':  # the first block stays ours, padded for MXNet's conv
        assert ops[:3] == ['conv_pool', 'conv', 'pool'] and fast.graph()._ops[0]['out_channels'] == 8
    else:
        assert ops[:3] == ['conv', 'pool', 'conv']
    _assert_same(fast, net, X, y)


@pytest.mark.parametrize('q', [3, 5])
def test_pool_sizes_not_dividing_the_tile_keep_mxnets_operators(q):
    net, X, y = _built(_block(30, q=q))
    fast = fast_objective(net, [mx.cpu()])
    assert fast.graph()._ops[0]['op'] == 'conv'
    _assert_same(fast, net, X, y)


def _two_blocks(size, channels=(6, 16), kernel=5, padding=0, act='sigmoid', pool=nn.AvgPool2D,
                q=2):
    """LeNet's first block, then a second conv block in other shapes, then a dense layer."""
    def make():
        net = nn.HybridSequential()
        net.add(nn.Conv2D(channels[0], 5, padding=2, activation='sigmoid'), nn.AvgPool2D(2, 2),
                nn.Conv2D(channels[1], kernel, padding=padding, activation=act), pool(q, q),
                nn.Dense(10))
        net.input_shape = (1, size, size)
        return net
    return make


@pytest.mark.parametrize('make', [
    _two_blocks(28, channels=(6, 17)),  # two registers of filters
    _two_blocks(28, channels=(9, 33), pool=nn.MaxPool2D, act='relu'),  # two tiles of input maps
    _two_blocks(28, kernel=3, padding=1, q=3, act=None),  # rows and columns under no window
    _two_blocks(40, kernel=7, padding=3),  # 20 columns: two registers of the input's gradient
    _two_blocks(28, kernel=1, q=1, channels=(1, 2)),
    _two_blocks(64, kernel=11, padding=6, q=4, pool=nn.MaxPool2D),
], ids=['17 filters', '9 maps 33 filters relu max', 'k3 pool3 identity', '40px k7',
        'k1 pool1', '64px k11 pad6 pool4'])
def test_our_second_block_in_other_shapes(make):
    net, X, y = _built(make)
    fast = fast_objective(net, [mx.cpu()])
    assert [op['op'] for op in fast.graph()._ops][:2] == TWO_BLOCKS
    _assert_same(fast, net, X, y)


def test_max_pool_ties_in_the_second_block():
    net, _, y = _built(lambda: lenet(activation='relu', pool='max'))
    X = mx.nd.ones((32, 1, 28, 28))
    X[:, :, ::9] = 0.5
    _assert_same(fast_objective(net, [mx.cpu()]), net, X, y)


# each operator's inputs (x, weight) and attributes, LeNet's shapes
OPERATOR_CASES = {
    'conv_pool': ((4, 1, 28, 28), (6, 1, 5, 5), dict(pad=2, out_channels=6)),
    'conv_pool_maps': ((4, 6, 14, 14), (16, 6, 5, 5), dict(pad=0)),
}


@pytest.mark.parametrize('name', list(OPERATOR_CASES))
def test_gradients_follow_the_inputs_the_backward_sees(name):
    """Our operators keep their forward's activations for the backward; a
    backward that sees other inputs (changed in place, a retained graph)
    recomputes them: the gradients are those of a fresh pass."""
    if not kernels.load():  # no compiler: the operators are not there (nor used, above)
        assert TWO_BLOCKS[0] == 'conv'
        without_kernels()
    op = getattr(mx.nd, kernels.OPERATORS[name])
    x_shape, w_shape, attrs = OPERATOR_CASES[name]
    rng = np.random.default_rng(0)
    x, x2 = (mx.nd.array(rng.standard_normal(x_shape)) for _ in range(2))
    w, w2 = (mx.nd.array(rng.standard_normal(w_shape) * 0.2) for _ in range(2))
    b = mx.nd.array(rng.standard_normal(w_shape[0]))
    dy = None

    def grads(x, w, changes=()):
        nonlocal dy
        b_ = b.copy()
        for a in (x, w, b_):
            a.attach_grad()
        with autograd.record():
            y = op(x, w, b_, act='sigmoid', pool='max', pool_size=2, **attrs)
            if dy is None:
                dy = mx.nd.array(rng.standard_normal(y.shape))
            loss = (y * dy).sum()
        if changes:
            loss.backward(retain_graph=True)
            for target, value in changes:
                target[:] = value
        loss.backward()
        return [a.grad.asnumpy() for a in (x, w, b_)]

    stale = grads(x.copy(), w.copy())
    for changes in ([(slice(None), x2), (None, w2)], [(slice(1, 2), x2[1:2]), (None, w)]):
        x_, w_ = x.copy(), w.copy()
        picked = [(x_[part] if part is not None else w_, value) for part, value in changes]
        got = grads(x_, w_, picked)
        fresh = grads(x_.copy(), w_.copy())
        assert all(np.array_equal(g, f) for g, f in zip(got, fresh))
        assert not np.array_equal(got[1], stale[1])  # the change mattered


def test_a_block_past_our_operators_limits_keeps_mxnets():
    """Pooling over 36 maps' columns is past conv_pool_maps's 32 (it would refuse it)."""
    net, X, y = _built(_two_blocks(160, kernel=1, q=36))
    fast = fast_objective(net, [mx.cpu()])
    ours = FIRST_BLOCK == 'conv_pool'  # else no compiler: MXNet's operators throughout
    assert [op['op'] for op in fast.graph()._ops][:2] == (['conv_pool', 'conv'] if ours
                                                           else ['conv', 'pool'])
    _assert_same(fast, net, X, y)
