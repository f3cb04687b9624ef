"""The fast path is exact or steps aside, also when the net or the request changes
after its graph was built; and its one switch (accel=, else $GLUON_CLASSICS_ACCEL).

Each case compares the public ``make_objective`` (what ``train_ch5`` trains on)
with plain autograd on ``net(X)``: loss, every parameter gradient and the
images' gradient.
"""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init
from mxnet.gluon import nn

from gluon_classics import accel, alexnet, lenet, train_ch5
from gluon_classics.model_zoo.lenet import LeNet
from gluon_classics.accel import bfloat16
from gluon_classics.training import make_objective, plain_objective
from gluon_classics.training.config import resolve_accel
from gluon_classics.training.objective import _Graph
from helpers import HAVE_COMPILER

OURS = HAVE_COMPILER  # else the graph runs on MXNet's operators


def _net(make=lenet, size=28, channels=1, **kwargs):
    mx.random.seed(0)
    net = make(**kwargs)
    net.initialize(init.Xavier())
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.random((16, channels, size, size)))
    y = mx.nd.array(rng.integers(0, 10, 16), dtype='int32')
    net(X)
    return net, X, y


def _plain_loss(net, X, y):
    return gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y.astype('float32')).sum()


def _run(objective, net, X, y, halves=1, x_grad=False, seed=None):
    """Loss, parameter gradients and (with ``x_grad``) dL/dX, over ``halves`` backward passes;
    ``seed``: mx.random.seed before each (dropout's masks)."""
    for p in net.collect_params().values():
        p.zero_grad()
    X = X.copy()
    if x_grad:
        X.attach_grad()
    total = 0.0
    size = X.shape[0] // halves
    for start in range(0, X.shape[0], size):
        if seed is not None:
            mx.random.seed(seed)
        with autograd.record():
            loss = objective(X[start:start + size], y[start:start + size])
            loss = loss[0] if isinstance(loss, (tuple, list)) else loss
        loss.backward()
        total += loss.asscalar()
    grads = {name: p.grad().asnumpy().copy() for name, p in net.collect_params().items()}
    return total, grads, (X.grad.asnumpy().copy() if x_grad else None)


def _assert_close(a, b, what):
    """Within 1e-4 of a's largest finite magnitude; NaN and infinities where a has them."""
    assert np.array_equal(np.isnan(a), np.isnan(b)), f'{what}: NaN elsewhere'
    finite = np.isfinite(a)
    assert np.array_equal(a[~finite & ~np.isnan(a)], b[~finite & ~np.isnan(a)]), what
    a, b = a[finite], b[finite]
    if a.size:
        scale = np.abs(a).max() + 1e-12
        assert np.abs(a - b).max() / scale < 1e-4, what


def _assert_exact(objective, net, X, y, **kwargs):
    loss_a, grads_a, dx_a = _run(lambda X, y: _plain_loss(net, X, y), net, X, y, **kwargs)
    loss_b, grads_b, dx_b = _run(objective, net, X, y, **kwargs)
    assert np.isfinite(loss_a) and loss_b == pytest.approx(loss_a, rel=1e-5)
    for name in grads_a:
        _assert_close(grads_a[name], grads_b[name], name)
    if dx_a is not None:
        assert np.abs(dx_a).max() > 0
        _assert_close(dx_a, dx_b, 'dL/dX')


def test_the_fast_graph_is_in_use_for_lenet():
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()])
    assert isinstance(objective, accel.FastObjective)
    ops = [op['op'] for op in objective.graph(X)._ops]
    assert ops[:2] == (['conv_pool', 'conv_pool_maps'] if OURS else ['conv', 'pool'])


def test_grad_req_add_set_after_the_graph_is_built():
    """Gradient accumulation over two half batches: our operators write their
    gradients, so the call that sees 'add' gets a graph on MXNet's operators."""
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()])
    _run(objective, net, X, y)  # built with grad_req 'write'
    for p in net.collect_params().values():
        p.grad_req = 'add'
    _assert_exact(objective, net, X, y, halves=2)
    for p in net.collect_params().values():  # and back: 'write' again gets the first graph
        p.grad_req = 'write'
    _assert_exact(objective, net, X, y)


def test_the_images_gradient():
    """X.attach_grad() (saliency maps, adversarial examples): ours computes no
    dL/dX, so such a call gets the graph whose first block is MXNet's."""
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()])
    _run(objective, net, X, y)  # built for images that need no gradient
    _assert_exact(objective, net, X, y, x_grad=True)


def test_the_gradient_of_what_made_the_images():
    """Images computed under autograd from a Parameter need dL/dX too, without attach_grad."""
    net, X, y = _net()
    scale = mx.nd.array([0.7])
    objective = make_objective(net, [mx.cpu()])
    grads = []
    for run in (objective, lambda X, y: _plain_loss(net, X, y)):
        scale.attach_grad()
        with autograd.record():
            out = run(X * scale, y)
            out = out[0] if isinstance(out, (tuple, list)) else out
        out.backward()
        grads.append(scale.grad.asscalar())
    assert grads[0] != 0 and grads[0] == pytest.approx(grads[1], rel=1e-4)


def _shifted_conv(conv):
    """Replace ``conv``'s forward on the instance: the conv, plus 0.1."""
    original = conv.hybrid_forward

    def hybrid_forward(F, x, weight, bias=None):
        return original(F, x, weight, bias) + 0.1
    conv.hybrid_forward = hybrid_forward


def test_a_layer_whose_forward_was_replaced_is_not_rewritten():
    net, X, y = _net()
    _shifted_conv(net.features[0])
    objective = make_objective(net, [mx.cpu()])
    assert not isinstance(objective, accel.FastObjective)
    _assert_exact(objective, net, X, y)


def test_a_forward_replaced_after_the_graph_is_built_steps_aside(capsys):
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()])
    _run(objective, net, X, y)
    _shifted_conv(net.features[2])
    _assert_exact(objective, net, X, y)
    _assert_exact(objective, net, X, y)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('gluon_classics: the fast path steps aside: ')


def test_a_hook_added_after_the_graph_is_built_runs():
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()])
    _run(objective, net, X, y)
    seen = []
    net.features[1].register_forward_hook(lambda block, inputs, output: seen.append(1))
    _run(objective, net, X, y)
    assert seen


@pytest.mark.parametrize('mode, kind', [('on', accel.FastObjective),
                                        ('graph', accel.FastObjective), ('off', _Graph)])
def test_the_switch_as_an_argument(mode, kind):
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    assert type(objective) is kind
    if mode == 'graph':  # the rewrite on MXNet's operators only
        assert [op['op'] for op in objective.graph(X)._ops][:2] == ['conv', 'pool']
    _assert_exact(objective, net, X, y)


def test_the_switch_in_the_environment(monkeypatch):
    net, _, _ = _net()
    assert isinstance(make_objective(net, [mx.cpu()]), accel.FastObjective)
    monkeypatch.setenv('GLUON_CLASSICS_ACCEL', 'off')
    assert type(make_objective(net, [mx.cpu()])) is _Graph
    assert isinstance(make_objective(net, [mx.cpu()], accel='on'), accel.FastObjective)


def test_a_bad_switch_is_one_line(monkeypatch):
    with pytest.raises(ValueError, match=r"^unknown fast-path mode 'fast' \(accel= or "
                                         r"\$GLUON_CLASSICS_ACCEL\): choose one of on, graph, "
                                         r"off$"):
        resolve_accel('fast')
    monkeypatch.setenv('GLUON_CLASSICS_ACCEL', 'yes')
    with pytest.raises(ValueError, match="unknown fast-path mode 'yes'"):
        make_objective(lenet(), [mx.cpu()])


def test_plain_objective_is_the_function_as_written():
    net, X, y = _net()
    _assert_exact(plain_objective(net), net, X, y, x_grad=True)


CPUINFO = 'vendor_id\t: {vendor}\nmodel name\t: {model}\nflags\t\t: avx2 avx512f {bf16}\n'


@pytest.mark.parametrize('vendor, bf16, amx_on, says', [
    ('GenuineIntel', 'avx512_bf16', False, 'measured slower on this CPU class, 0.66x float32'),
    ('AuthenticAMD', 'avx512_bf16', False, 'measured faster on this CPU class, 1.71x float32'),
    ('GenuineIntel', 'avx512_bf16 amx_bf16', True,
     'measured faster on this CPU class, 1.80x float32'),
    ('GenuineIntel', 'avx512_bf16 amx_bf16', False,  # AMX off: oneDNN runs avx512_bf16
     'measured slower on this CPU class, 0.66x float32'),
    ('AuthenticAMD', '', False, 'unavailable (no avx512_bf16 or AMX)'),
])
def test_bfloat16_advice_by_cpu_class(tmp_path, vendor, bf16, amx_on, says):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(CPUINFO.format(vendor=vendor, model='CPU', bf16=bf16))
    assert says in bfloat16.advice(str(cpuinfo), amx_on=amx_on)


@pytest.mark.parametrize('net, vendor, says', [
    (alexnet, 'GenuineIntel', '0.66x float32 for alexnet'),
    (alexnet, 'AuthenticAMD', None),  # measured faster there: nothing to say
    (lenet, 'AuthenticAMD', '0.55x float32 for lenet'),  # LeNet: slower everywhere measured
    (lenet, 'GenuineIntel', '0.20x float32 for lenet'),
])
def test_bfloat16_where_it_measured_slower_says_so_once(tmp_path, monkeypatch, net, vendor,
                                                        says):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(CPUINFO.format(vendor=vendor, model='Xeon', bf16='avx512_bf16'))
    real = bfloat16.cpu_info
    monkeypatch.setattr(bfloat16, 'cpu_info', lambda path=None: real(str(cpuinfo)))
    monkeypatch.setattr(bfloat16, 'cpu_vendor', lambda path=None: vendor)
    said = []
    bfloat16.check_dtype(net(), [mx.cpu()], 'bfloat16', log=said.append)
    if says is None:
        assert said == []
    else:
        assert len(said) == 1 and says in said[0] and 'float32 is faster here' in said[0]


@pytest.mark.parametrize('net, variant, vendor, flags, amx_on, speedup', [
    (alexnet, 'd2l', 'GenuineIntel', 'avx512_bf16 amx_bf16 amx_tile', True, '1.80x'),
    (alexnet, 'd2l', 'AuthenticAMD', 'avx512_bf16', False, '1.71x'),
    (alexnet, 'd2l', 'GenuineIntel', 'avx512_bf16 amx_bf16 amx_tile', False, None),  # AMX off
    (alexnet, 'small', 'AuthenticAMD', 'avx512_bf16', False, None),  # 1.48x: under 1.5
    (lenet, 'd2l', 'GenuineIntel', 'avx512_bf16 amx_bf16 amx_tile', True, None),
])
def test_float32_training_hints_at_bfloat16_where_it_measured_1_5x_faster(
        tmp_path, net, variant, vendor, flags, amx_on, speedup):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(CPUINFO.format(vendor=vendor, model='Xeon', bf16=flags))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bfloat16, 'cpu_vendor', lambda path=None: vendor)
        mp.setattr(bfloat16.amx, 'state', lambda: dict(state='on' if amx_on else 'off'))
        line = bfloat16.hint(net(variant=variant), [mx.cpu()], cpuinfo=str(cpuinfo))
    if speedup is None:
        assert line is None
    else:
        assert line.startswith(f'gluon_classics: bfloat16 measured {speedup} float32 for alexnet')
    assert bfloat16.hint(net(variant=variant), [mx.cpu()], hybridize=False) is None


def test_the_measured_table_is_data_by_network_and_cpu_class():
    rows = bfloat16.measured()
    assert {(r['network'], r['vendor'], r['bf16']) for r in rows} >= {
        ('alexnet', 'GenuineIntel', 'amx_bf16'), ('lenet', 'GenuineIntel', 'amx_bf16'),
        ('alexnet', 'AuthenticAMD', 'avx512_bf16'), ('lenet', 'AuthenticAMD', 'avx512_bf16')}
    assert all(r['speedup'] < 1 for r in rows if r['network'] == 'lenet')
    amx = bfloat16.lookup('alexnet', 'd2l', 'GenuineIntel', 'amx_bf16')
    assert (amx['speedup'], amx['figures'], amx['date']) == (1.80, '48.1 vs 26.8 images/s',
                                                             '2026-12-06')
    assert 'MEASURED' not in vars(bfloat16)  # the figures are data, not literals


@pytest.mark.parametrize('mode', ['on', 'off'])
def test_parameters_reinitialized_after_the_graph_is_built(mode):
    """force_reinit gives the Parameters new gradient buffers; a static graph built
    before would write into the old ones (both the fast and the plain graph did)."""
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    _run(objective, net, X, y)
    net.initialize(init.Xavier(), force_reinit=True)
    _assert_exact(objective, net, X, y)


MODES = ['on', 'graph', 'off']


def _tanh_lenet_with_dropout():
    """LeNet-5's activation (its first conv is not ours: its 6 maps are padded to 8), then
    Dropout on those maps."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, padding=2, activation='tanh'), nn.AvgPool2D(2, 2), nn.Dropout(0.5),
            nn.Conv2D(16, 5, activation='tanh'), nn.AvgPool2D(2, 2),
            nn.Dense(120, activation='tanh'), nn.Dense(10))
    return net


@pytest.mark.parametrize('mode', MODES)
def test_a_seeded_dropout_after_padded_maps_draws_the_plain_mask(mode):
    """The mask is drawn over the user's 6 maps, not the 8 the graph computes: the same
    seed gives the same numbers as the plain graph."""
    net, X, y = _net(_tanh_lenet_with_dropout)
    objective = make_objective(net, [mx.cpu()], accel=mode)
    assert isinstance(objective, accel.FastObjective) == (mode != 'off')
    if mode != 'off':
        assert objective.graph(X)._ops[0]['zero_out'] == 2  # the padded maps meet the dropout
    _assert_exact(objective, net, X, y, seed=42)


NONFINITE_NETS = {  # LeNet-5 (tanh, 1x32x32), 3-channel images, the chapter's LeNet, and
    # the gluon article's (max pooling)
    'lenet5': dict(variant='lenet5', size=32), 'in_channels=3': dict(in_channels=3, channels=3),
    'd2l': {}, 'gluon': dict(variant='gluon'),
}


@pytest.mark.parametrize('name', NONFINITE_NETS)
@pytest.mark.parametrize('pixel', [np.inf, -np.inf])
@pytest.mark.parametrize('mode', MODES)
def test_an_infinite_pixel_gives_the_plain_loss(name, pixel, mode, capsys):
    """Zero-padded filters would make 0 x inf = NaN where the plain graph stays finite:
    such a batch trains on the net's own forward, said once."""
    net, X, y = _net(**NONFINITE_NETS[name])
    X[3, 0, 10, 12] = pixel
    objective = make_objective(net, [mx.cpu()], accel=mode)
    _assert_exact(objective, net, X, y)
    err = capsys.readouterr().err.splitlines()
    if mode == 'off':
        assert err == []
    else:
        assert err == ['gluon_classics: the fast path steps aside: images with an infinite '
                       "pixel: such batches train on the net's own forward (padded filters "
                       'would make 0 x inf = NaN)']
        _, X, y = _net(**NONFINITE_NETS[name])  # finite images: the fast graph again
        assert objective.graph(X) is not None
        _assert_exact(objective, net, X, y)


@pytest.mark.parametrize('kwargs', [dict(variant='gluon'), dict(variant='gluon', activation='relu'),
                                    dict(activation='relu', pool='max')],
                         ids=['gluon', 'gluon relu', 'd2l relu max'])
@pytest.mark.parametrize('mode', MODES)
def test_a_nan_pixel_into_max_pooling_is_dropped_as_mxnet_drops_it(kwargs, mode, capsys):
    """MXNet's max pooling skips NaN (a window of NaNs gives float's lowest, the gradient
    its first entry) and its relu makes NaN 0: so do our operators; nothing steps aside."""
    net, X, y = _net(**kwargs)
    X[3, 0, 10, 12] = np.nan
    objective = make_objective(net, [mx.cpu()], accel=mode)
    if mode == 'on':
        ops = [op['op'] for op in objective.graph(X)._ops]
        assert ops[:2] == (['conv_pool', 'conv_pool_maps'] if OURS else ['conv', 'pool'])
    _assert_exact(objective, net, X, y)
    assert capsys.readouterr().err == ''


def _replace_forward(block, shift):
    """Replace ``block``'s forward on the instance: its own, plus ``shift``."""
    original = type(block).hybrid_forward

    def hybrid_forward(F, x, *args, **kwargs):
        return original(block, F, x, *args, **kwargs) + shift
    block.hybrid_forward = hybrid_forward


@pytest.mark.parametrize('mode', MODES)
def test_a_forward_replaced_undone_and_replaced_again(mode):
    """Each call runs the forward the layer has then: the fallback graph is traced anew."""
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    conv = net.features[2]
    for shift in (0.1, None, 0.3, None):
        if shift is None:
            del conv.hybrid_forward
        else:
            _replace_forward(conv, shift)
        _assert_exact(objective, net, X, y)


@pytest.mark.parametrize('owner', ['net', 'layer'])
@pytest.mark.parametrize('mode', MODES)
def test_a_forward_set_on_a_class_after_the_graph_is_built(owner, mode, monkeypatch):
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    _run(objective, net, X, y)
    if owner == 'net':
        monkeypatch.setattr(LeNet, 'hybrid_forward',
                            lambda self, F, x: self.output(self.features(x)) * 2)
    else:
        original = nn.Dense.hybrid_forward
        monkeypatch.setattr(nn.Dense, 'hybrid_forward',
                            lambda self, F, x, weight, bias=None:
                            F.tanh(original(self, F, x, weight, bias)))
    _assert_exact(objective, net, X, y)
    monkeypatch.undo()  # and the class's own again: the first graph's numbers
    _assert_exact(objective, net, X, y)


def _batches(X, y, size):
    return gluon.data.DataLoader(gluon.data.ArrayDataset(X, y), batch_size=size)


def _by_hand(net, X, y, size, lr):
    """One epoch as plain autograd trains it: mean loss and train accuracy."""
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
    loss, correct = 0.0, 0.0
    for Xb, yb in _batches(X, y, size):
        with autograd.record():
            y_hat = net(Xb)
            l = gluon.loss.SoftmaxCrossEntropyLoss()(y_hat, yb).sum()
        l.backward()
        trainer.step(Xb.shape[0])
        loss += l.asscalar()
        correct += (y_hat.argmax(axis=1).asnumpy() == yb.asnumpy().reshape(-1)).sum()
    return loss / X.shape[0], correct / X.shape[0]


@pytest.mark.parametrize('case', ['float64 net', 'labels (N, 1)'])
@pytest.mark.parametrize('mode', ['on', 'off'])
def test_train_ch5_on_a_float64_net_or_labels_shaped_n_by_1(case, mode):
    """As plain autograd trains them: the same loss and accuracy over a few batches."""
    rng = np.random.default_rng(1)
    X = mx.nd.array(rng.random((48, 1, 28, 28)))
    y = mx.nd.array(rng.integers(0, 10, 48), dtype='int32')
    if case == 'float64 net':
        X = X.astype('float64')
    else:
        y = y.reshape((-1, 1))
    nets = []
    for _ in range(2):
        net, _, _ = _net()
        if case == 'float64 net':
            net.cast('float64')
        nets.append(net)
    want = _by_hand(nets[0], X, y, 16, 0.5)
    trainer = gluon.Trainer(nets[1].collect_params(), 'sgd', {'learning_rate': 0.5})
    [record] = train_ch5(nets[1], _batches(X, y, 16), _batches(X, y, 16), 16, trainer, mx.cpu(),
                         1, accel=mode, progress=False, log=lambda *a: None)
    assert record['loss'] == pytest.approx(want[0], rel=1e-5)
    assert record['train_acc'] == want[1]
    # evaluate_accuracy's count too (the same parameters; one rounding flip allowed)
    test_acc = (nets[0](X).argmax(axis=1).asnumpy() == y.asnumpy().reshape(-1)).mean()
    assert record['test_acc'] == pytest.approx(test_acc, abs=1 / 48)


def test_float32_images_into_a_float64_net_is_one_line():
    net, X, y = _net()
    net.cast('float64')
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    with pytest.raises(ValueError, match=r"^images are float32 but the net's parameters are "
                                         r"float64: cast the images \(X.astype\('float64'\)\) "
                                         r"or the net \(net.cast\('float32'\)\)$"):
        train_ch5(net, _batches(X, y, 8), _batches(X, y, 8), 8, trainer, mx.cpu(), 1,
                  progress=False, log=lambda *a: None)


@pytest.mark.parametrize('values, has_inf', [
    ([0.5, 1.0], False), ([np.nan, 1.0], False), ([np.inf, 1.0], True), ([1.0, -np.inf], True),
    ([np.nan, -np.inf], True), ([np.inf, -np.inf], True), ([3e38, 3e38], False),
])
@pytest.mark.parametrize('kind', ['nd', 'np'])
def test_the_infinite_pixel_check(values, has_inf, kind):
    """One sum finds it; a NaN or an overflowing sum takes a second look, not a step aside."""
    x = np.array(values * 8, dtype=np.float32).reshape(2, 1, 2, 4)
    x = mx.nd.array(x) if kind == 'nd' else mx.np.array(x)
    assert accel._has_inf(x) is has_inf
