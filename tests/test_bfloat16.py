"""The opt-in bfloat16 training graph: where it runs, what it refuses, and that it learns.

bfloat16 is not the function the user wrote (8 significant bits per
activation), so the checks are tolerances and learning, not equality. On a CPU
without avx512_bf16 the same tests check the refusal instead.
"""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init
from mxnet.gluon import nn

from gluon_classics import alexnet, cli, evaluate_accuracy, fit, lenet, load_data, train_ch5
from gluon_classics.training import DTYPES, default_resize, load_checkpoint, make_objective
from gluon_classics.accel import bfloat16 as onednn
from gluon_classics.devices import cpu_info

HAS_BF16 = any(f in cpu_info()[2] for f in onednn.BF16_FLAGS)


def _built(net, n=64, seed=0):
    rng = np.random.default_rng(seed)
    net.initialize(init.Xavier(), ctx=mx.cpu())
    X = mx.nd.array(rng.random((n, 1, 28, 28)))
    y = mx.nd.array(rng.integers(0, 10, n), dtype='int32')
    net(X[:1])
    return X, y


def _loss_and_grads(objective, net, X, y):
    for p in net.collect_params().values():
        p.zero_grad()
    mx.random.seed(7)  # the same dropout masks for both (dropout stays float32)
    # train mode: in predict mode MXNet's max-pooling gradient is not the training one
    with autograd.record():
        loss, correct = objective(X, y)
    loss.backward()
    return loss.asscalar(), {k: p.grad().asnumpy().copy()
                             for k, p in net.collect_params().items()}


def _refused_here(net):
    """On a CPU without bfloat16 kernels, what the bfloat16 tests check is the refusal."""
    if HAS_BF16:
        return False
    with pytest.raises(ValueError, match='needs a CPU with AVX512_BF16 or AMX'):
        make_objective(net, [mx.cpu()], dtype='bfloat16')
    return True


@pytest.mark.parametrize('make', [lenet, lambda: alexnet(variant='small')],
                         ids=['lenet', 'alexnet-small'])
def test_bf16_graph_is_float32_graph_within_bf16_rounding(make):
    net = make()
    X, y = _built(net)
    if _refused_here(net):
        return
    loss32, g32 = _loss_and_grads(make_objective(net, [mx.cpu()]), net, X, y)
    loss16, g16 = _loss_and_grads(make_objective(net, [mx.cpu()], dtype='bfloat16'), net, X, y)
    assert loss16 != loss32  # it really computes in another type
    assert abs(loss16 - loss32) < 1e-2 * abs(loss32)
    for name, g in g32.items():
        assert g16[name].dtype == np.float32 and g16[name].shape == g.shape
        assert np.isfinite(g16[name]).all()
        cos = (g * g16[name]).sum() / (np.linalg.norm(g) * np.linalg.norm(g16[name]) + 1e-30)
        assert cos > 0.95, (name, cos)


def _blobs(n, seed):
    """Images whose class is where a bright patch sits: learnable in a few dozen steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    X = rng.random((n, 1, 28, 28)).astype('float32') * 0.2
    for i, c in enumerate(y):
        row, col = divmod(int(c), 5)
        X[i, 0, 4 + 10 * row:10 + 10 * row, 1 + 5 * col:6 + 5 * col] += 0.8
    return mx.nd.array(X), mx.nd.array(y, dtype='int32')


def test_bf16_training_learns_like_float32():
    """From the same start, both dtypes learn the small AlexNet to held-out accuracy."""
    X, y = _blobs(64, seed=0)
    X_test, y_test = _blobs(200, seed=1)
    accuracy = {}
    for dtype in DTYPES:
        mx.random.seed(0)
        net = alexnet(variant='small')
        net.initialize(init.Xavier(), ctx=mx.cpu())
        net(X[:1])
        if dtype == 'bfloat16' and _refused_here(net):
            break
        trainer = gluon.Trainer(net.collect_params(), 'sgd',
                                {'learning_rate': 0.05, 'momentum': 0.9})
        objective = make_objective(net, [mx.cpu()], dtype=dtype)
        losses = []
        for _ in range(40):
            with autograd.record():
                loss, _ = objective(X, y)
            loss.backward()
            trainer.step(X.shape[0])
            losses.append(loss.asscalar() / X.shape[0])
        assert np.mean(losses[-5:]) < 0.5 * losses[0], (dtype, losses)
        # the float32 net, as evaluation runs it
        accuracy[dtype] = (net(X_test).argmax(axis=1).asnumpy() == y_test.asnumpy()).mean()
    # Held-out accuracy far above chance (0.1) on every CPU class: float32 reached 0.85 after
    # 30 steps on an AVX2 EPYC, 0.9+ on AVX-512; bfloat16 as well as float32 on this CPU.
    assert accuracy['float32'] >= 0.5, accuracy
    assert accuracy.get('bfloat16', 1) >= accuracy['float32'] - 0.1, accuracy


@pytest.mark.filterwarnings('ignore:test accuracy .* is chance level')  # 16 batches
def test_fit_records_dtype_and_evaluates_in_float32(tmp_path, fashion_mnist_dir):
    ckpt = str(tmp_path / 'run.ckpt')
    if not HAS_BF16:  # refused before the data is read
        with pytest.raises(ValueError, match='AVX512_BF16'):
            fit('alexnet', 'small', data_dir='/nonexistent', ctx=mx.cpu(), dtype='bfloat16')
        return
    net, history = fit('alexnet', 'small', epochs=1, num_examples=1024, batch_size=64,
                       data_dir=fashion_mnist_dir, ctx=mx.cpu(), seed=0,
                       dtype='bfloat16', checkpoint=ckpt, progress=False, log=lambda *a: None)
    assert all(p.data().dtype == np.float32 for p in net.collect_params().values())
    assert np.isfinite(history[0]['loss'])
    _, test_iter = load_data('fashion-mnist', 64, resize=default_resize('alexnet', 'small'),
                             root=fashion_mnist_dir, ctx=mx.cpu())
    assert history[0]['test_acc'] == evaluate_accuracy(test_iter, net)  # the float32 net's
    assert load_checkpoint(ckpt)['config']['dtype'] == 'bfloat16'
    with pytest.raises(ValueError, match=r'^dtype=float32 contradicts checkpoint .*'
                                         r"which records 'bfloat16'"):
        fit(resume=ckpt, epochs=2, dtype='float32', progress=False, log=lambda *a: None)


@pytest.mark.filterwarnings('ignore:test accuracy .* is chance level')  # 4 batches
def test_resume_refuses_another_dtype_on_every_cpu(tmp_path, fashion_mnist_dir):
    # The other side of the test above, on every CPU class: the settings are reconciled
    # before the dtype is checked against the CPU, so an AVX2 machine runs this too.
    ckpt = str(tmp_path / 'run.ckpt')
    fit('lenet', epochs=1, num_examples=256, batch_size=64, data_dir=fashion_mnist_dir,
        ctx=mx.cpu(), seed=0, checkpoint=ckpt, progress=False, log=lambda *a: None)
    assert load_checkpoint(ckpt)['config']['dtype'] == 'float32'
    with pytest.raises(ValueError, match=r'^dtype=bfloat16 contradicts checkpoint .*'
                                         r"which records 'float32'"):
        fit(resume=ckpt, epochs=2, dtype='bfloat16', progress=False, log=lambda *a: None)


@pytest.mark.filterwarnings('ignore:test accuracy .* is chance level')  # 4 batches
@pytest.mark.parametrize('speedup, dtype, says', [
    (2.0, 'float32', 'dtype bfloat16 trains faster here'),  # the hint, in float32 only
    (1.4, 'float32', None), (2.0, 'bfloat16', None),
    (0.5, 'bfloat16', 'float32 is faster here'),
])
def test_fit_says_where_bfloat16_measured_faster_or_slower_for_this_network(
        monkeypatch, fashion_mnist_dir, speedup, dtype, says):
    """The measured table (faked for this CPU's class and LeNet) decides fit's one line."""
    if not HAS_BF16:
        pytest.skip('this CPU has no bfloat16 instructions: nothing to hint at')
    vendor, bf16 = onednn.cpu_class()
    row = dict(network='lenet', variant=None, vendor=vendor, bf16=bf16, speedup=speedup,
               machine='this CPU', figures='-', date='2026-12-06')
    monkeypatch.setattr(onednn, 'measured', lambda path=None: (row,))
    said = []
    fit('lenet', epochs=1, num_examples=256, batch_size=64, data_dir=fashion_mnist_dir,
        ctx=mx.cpu(), seed=0, dtype=dtype, progress=False,
        log=lambda *a: said.append(' '.join(map(str, a))))
    lines = [line for line in said if 'bfloat16 measured' in line]
    assert len(lines) == (says is not None) and all(says in line for line in lines)
    assert all(f'{speedup:.2f}x float32 for lenet' in line for line in lines)


def test_refused_without_avx512_bf16(monkeypatch):
    monkeypatch.setattr(onednn, 'cpu_info', lambda *_: ('Old CPU', 2, {'avx2', 'avx512f'}))
    net = lenet()
    with pytest.raises(ValueError, match=r'AVX512_BF16 or AMX \(bfloat16 instructions\); '
                                         r'Old CPU has neither: use float32$'):
        train_ch5(net, [], [], 256, None, mx.cpu(), 1, dtype='bfloat16')


def test_cli_refuses_before_reading_the_data(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(onednn, 'cpu_info', lambda *_: ('Old CPU', 2, {'avx2'}))
    status = cli.main(['train', 'alexnet', '--variant', 'small', '--dtype', 'bfloat16',
                       '--data-dir', str(tmp_path / 'nowhere'), '--save', str(tmp_path / 'a')])
    err = capsys.readouterr().err
    assert status == 2 and err.count('\n') == 1, err
    assert err.startswith('gluon-classics: error: dtype bfloat16 needs a CPU with AVX512_BF16')
    assert sorted(os.listdir(tmp_path)) == []  # no data folder made, nothing written


@pytest.mark.parametrize('net, ctxs, kwargs, message', [
    (lenet, [mx.cpu()], dict(dtype='float16'), "unknown dtype 'float16': choose one of "
                                                'float32, bfloat16'),
    (lenet, [mx.gpu(0)], {}, r'runs on CPUs .*not on gpu\(0\): use float32 there'),
    (lenet, [mx.cpu()], dict(hybridize=False), 'hybridized graph'),
], ids=['unknown', 'gpu', 'imperative'])
def test_impossible_requests_get_one_line(net, ctxs, kwargs, message):
    kwargs = dict(dict(dtype='bfloat16'), **kwargs)
    with pytest.raises(ValueError, match=message) as err:
        onednn.check_dtype(net(), ctxs, **kwargs)
    assert '\n' not in str(err.value)


def test_custom_forward_is_refused_not_rewritten(monkeypatch):
    monkeypatch.setattr(onednn, 'cpu_info', lambda *_: ('CPU', 2, {'avx512_bf16'}))

    class Custom(nn.HybridSequential):
        def hybrid_forward(self, F, x):
            return F.relu(super().hybrid_forward(F, x) - 0.5)
    net = Custom()
    net.add(nn.Conv2D(8, 3), nn.Dense(10))
    with pytest.raises(ValueError, match='Custom is not one: use float32'):
        onednn.check_dtype(net, [mx.cpu()], 'bfloat16')
    onednn.check_dtype(net, [mx.cpu()], 'float32')  # float32: its own forward, as always
