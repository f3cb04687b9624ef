"""The fast path is exact or steps aside, also when the net or the request changes
after its graph was built; and its one switch (accel=, accel.mode(), $GLUON_CLASSICS_ACCEL).

Each case compares the public ``make_objective`` (what ``train_ch5`` trains on)
with plain autograd on ``net(X)``: loss, every parameter gradient and the
images' gradient.
"""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init

from gluon_classics import accel, lenet
from gluon_classics.accel import bfloat16
from gluon_classics.training import make_objective, plain_objective
from gluon_classics.training.objective import _Objective
from helpers import HAVE_COMPILER

OURS = HAVE_COMPILER  # else the graph runs on MXNet's operators


def _net(**kwargs):
    mx.random.seed(0)
    net = lenet(**kwargs)
    net.initialize(init.Xavier())
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.random((16, 1, 28, 28)))
    y = mx.nd.array(rng.integers(0, 10, 16), dtype='int32')
    net(X)
    return net, X, y


def _plain_loss(net, X, y):
    return gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y.astype('float32')).sum()


def _run(objective, net, X, y, halves=1, x_grad=False):
    """Loss, parameter gradients and (with ``x_grad``) dL/dX, over ``halves`` backward passes."""
    for p in net.collect_params().values():
        p.zero_grad()
    X = X.copy()
    if x_grad:
        X.attach_grad()
    total = 0.0
    size = X.shape[0] // halves
    for start in range(0, X.shape[0], size):
        with autograd.record():
            loss = objective(X[start:start + size], y[start:start + size])
            loss = loss[0] if isinstance(loss, (tuple, list)) else loss
        loss.backward()
        total += loss.asscalar()
    grads = {name: p.grad().asnumpy().copy() for name, p in net.collect_params().items()}
    return total, grads, (X.grad.asnumpy().copy() if x_grad else None)


def _assert_close(a, b, what):
    scale = np.abs(a).max() + 1e-12
    assert np.abs(a - b).max() / scale < 1e-4, what


def _assert_exact(objective, net, X, y, **kwargs):
    loss_a, grads_a, dx_a = _run(lambda X, y: _plain_loss(net, X, y), net, X, y, **kwargs)
    loss_b, grads_b, dx_b = _run(objective, net, X, y, **kwargs)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
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
                                        ('graph', accel.FastObjective), ('off', _Objective)])
def test_the_switch_as_an_argument(mode, kind):
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    assert type(objective) is kind
    if mode == 'graph':  # the rewrite on MXNet's operators only
        assert [op['op'] for op in objective.graph(X)._ops][:2] == ['conv', 'pool']
    _assert_exact(objective, net, X, y)


def test_the_switch_as_a_block_and_in_the_environment(monkeypatch):
    net, _, _ = _net()
    with accel.mode('off'):
        assert type(make_objective(net, [mx.cpu()])) is _Objective
        with accel.mode('on'):  # the innermost block wins
            assert isinstance(make_objective(net, [mx.cpu()]), accel.FastObjective)
    monkeypatch.setenv('GLUON_CLASSICS_ACCEL', 'off')
    assert type(make_objective(net, [mx.cpu()])) is _Objective
    assert isinstance(make_objective(net, [mx.cpu()], accel='on'), accel.FastObjective)


def test_a_bad_switch_is_one_line(monkeypatch):
    with pytest.raises(ValueError, match=r"^unknown fast-path mode 'fast' \(accel= or "
                                         r"\$GLUON_CLASSICS_ACCEL\): choose one of on, graph, "
                                         r"off$"):
        accel.resolve_mode('fast')
    monkeypatch.setenv('GLUON_CLASSICS_ACCEL', 'yes')
    with pytest.raises(ValueError, match="unknown fast-path mode 'yes'"):
        make_objective(lenet(), [mx.cpu()])


def test_plain_objective_is_the_function_as_written():
    net, X, y = _net()
    _assert_exact(plain_objective(net), net, X, y, x_grad=True)


CPUINFO = 'vendor_id\t: {vendor}\nmodel name\t: {model}\nflags\t\t: avx2 avx512f {bf16}\n'


@pytest.mark.parametrize('vendor, bf16, says', [
    ('GenuineIntel', 'avx512_bf16', 'measured slower on this CPU class, 0.66x float32'),
    ('AuthenticAMD', 'avx512_bf16', 'measured faster on this CPU class, 1.71x float32'),
    ('GenuineIntel', 'amx_bf16', 'amx_bf16 present, not measured on this CPU class'),
    ('AuthenticAMD', '', 'unavailable (no avx512_bf16 or AMX)'),
])
def test_bfloat16_advice_by_cpu_class(tmp_path, vendor, bf16, says):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(CPUINFO.format(vendor=vendor, model='CPU', bf16=bf16))
    assert says in bfloat16.advice(str(cpuinfo))


def test_bfloat16_where_it_measured_slower_says_so_once(tmp_path, monkeypatch):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(CPUINFO.format(vendor='GenuineIntel', model='Xeon', bf16='avx512_bf16'))
    real = bfloat16.cpu_info
    monkeypatch.setattr(bfloat16, 'cpu_info', lambda path=None: real(str(cpuinfo)))
    monkeypatch.setattr(bfloat16, 'cpu_vendor', lambda path=None: 'GenuineIntel')
    said = []
    bfloat16.check_dtype(lenet(), [mx.cpu()], 'bfloat16', log=said.append)
    assert len(said) == 1 and '0.66x float32' in said[0] and 'float32 is faster here' in said[0]
    monkeypatch.setattr(bfloat16, 'cpu_vendor', lambda path=None: 'AuthenticAMD')
    bfloat16.check_dtype(lenet(), [mx.cpu()], 'bfloat16', log=said.append)
    assert len(said) == 1  # measured faster there: nothing to say


@pytest.mark.parametrize('mode', ['on', 'off'])
def test_parameters_reinitialized_after_the_graph_is_built(mode):
    """force_reinit gives the Parameters new gradient buffers; a static graph built
    before would write into the old ones (both the fast and the plain graph did)."""
    net, X, y = _net()
    objective = make_objective(net, [mx.cpu()], accel=mode)
    _run(objective, net, X, y)
    net.initialize(init.Xavier(), force_reinit=True)
    _assert_exact(objective, net, X, y)
