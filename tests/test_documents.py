"""The documents' own code runs with gluon_classics in d2l's place (issue #12).

The listings live in tests/documents/ as the documents print them (re-indented; the few
changed lines are marked there): the MXNet Gluon article (shared/seeds/001) and the d2l 2nd
edition's LeNet section. Each runs in its own process, because Gluon numbers layer names per
process (the printouts say conv0) and numpy mode (``npx.set_np()``) is process-wide. A test
only shrinks sizes (epochs, batch size, a subset of the data) by replacing exact lines, each of
which must still be in the listing. Parity with d2l uses the real ``d2l.mxnet`` (d2l 1.0.3).
"""
import io
import json
import math
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init

from gluon_classics import evaluate_accuracy, evaluate_accuracy_gpu, lenet, train_ch5, train_ch6
from gluon_classics.data import ArrayLoader

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / 'tests' / 'documents'

# The article's printouts (its spacing differs: spaces are ignored when comparing).
ARTICLE_LENET_SHAPES = ['conv0 output shape: (1,6,24,24)', 'pool0 output shape:(1,6,12,12)',
                        'conv1 output shape:(1,16,8,8)', 'pool1 output shape:(1,16,4,4)',
                        'dense0 output shape:(1,120)', 'dense1 output shape:(1,84)',
                        'dense2 output shape:(1,10)']
ARTICLE_ALEXNET_SHAPES = ['conv0 (1, 96, 54, 54)', 'pool0 (1, 96, 26, 26)',
                          'conv1 (1, 256, 26, 26)', 'pool1 (1, 256, 12, 12)',
                          'conv2 (1, 384, 12, 12)', 'conv3 (1, 384, 12, 12)',
                          'conv4 (1, 256, 12, 12)', 'pool2 (1, 256, 5, 5)', 'dense0 (1, 4096)',
                          'dropout0 (1, 4096)', 'dense1 (1, 4096)', 'dropout1 (1, 4096)',
                          'dense2 (1, 10)']
BOOK_LENET_SHAPES = ['conv0 (1, 6, 28, 28)', 'pool0 (1, 6, 14, 14)', 'conv1 (1, 16, 10, 10)',
                     'pool1 (1, 16, 5, 5)', 'dense0 (1, 120)', 'dense1 (1, 84)',
                     'dense2 (1, 10)']
BOOK_LINE1 = re.compile(r'^loss (\d\.\d{3}), train acc (\d\.\d{3}), test acc (\d\.\d{3})$')
BOOK_LINE2 = re.compile(r'^(\d+\.\d) examples/sec on cpu\(0\)$')


def _squeeze(text):
    return text.replace(' ', '').replace('\t', '')


def run_python(script, data_root, tmp_path, timeout=300):
    """Run ``script`` in a fresh interpreter on this checkout; return its stdout and stderr."""
    env = dict(os.environ, GLUON_CLASSICS_DATA=data_root, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=timeout, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stdout, run.stderr


def run_listing(name, data_root, tmp_path, replace=(), after=''):
    """Run a listing of tests/documents, seeded, with exact-line replacements that shrink it."""
    source = (DOCS / name).read_text()
    for old, new in replace:
        assert source.count(old) == 1, f'{name} no longer holds {old!r} exactly once'
        source = source.replace(old, new)
    seed = 'import mxnet, numpy\nmxnet.random.seed(0)\nnumpy.random.seed(0)\n'
    return run_python(seed + source + after, data_root, tmp_path)


def _lines(stdout, pattern):
    return [m for m in map(re.compile(pattern).match, stdout.splitlines()) if m]


# ---------------------------------------------------------------- the MXNet Gluon article

def test_article_lenet_listing_trains_one_epoch(data_root, tmp_path):
    """Its loop compares ``argmax == y`` without a cast: our float32 labels make that work."""
    after = '''
import numpy as onp
from gluon_classics.data import FASHION_MNIST, read_mnist_folder
_, (images, labels) = read_mnist_folder(FASHION_MNIST, progress=False)
X = nd.array(images.astype('float32') / 255, ctx=ctx)
pred = onp.concatenate([net(X[i:i + 2000]).argmax(axis=1).asnumpy()
                       for i in range(0, len(X), 2000)])
print('independent test acc', (pred == labels).mean(), 'train examples', train_iter.num_examples)
'''
    out, _ = run_listing('article_lenet.py', data_root, tmp_path, after=after,
                         replace=[('batch_size, trainer, ctx, 5)', 'batch_size, trainer, ctx, 1)')])
    assert [_squeeze(l) for l in out.splitlines()[:7]] == \
        [_squeeze(l) for l in ARTICLE_LENET_SHAPES]
    (epoch,) = _lines(out, r'^epoch 1, loss (\S+), train acc (\S+), test acc (\S+), '
                           r'time (\S+) sec$')
    loss, train_acc, test_acc = (float(v) for v in epoch.groups()[:3])
    assert math.isfinite(loss) and 0 < loss < 3 and 0 <= train_acc <= 1
    (check,) = _lines(out, r'^independent test acc (\S+) train examples (\d+)$')
    assert int(check.group(2)) > 50000  # the whole shared training set: one full epoch
    assert test_acc == pytest.approx(float(check.group(1)), abs=6e-4)  # printed with 3 decimals


def _counted(accuracy, n):
    """Whether ``accuracy``, printed to 3 decimals, is a count of right answers out of n."""
    return abs(accuracy * n - round(accuracy * n)) <= 0.0005 * n + 1e-9


def test_article_alexnet_listing_shapes_and_three_steps(data_root, tmp_path):
    """At 224x224, batch 8, three steps. Our loader stands in for its FashionMNIST one."""
    after = "\nprint('steps', trainer._optimizer.num_update)\n"
    out, err = run_listing('article_alexnet.py', data_root, tmp_path, after=after, replace=[
        ('batch_size = 128\n', 'batch_size = 8\n'),
        ('train_iter, test_iter = load_data_fashion_mnist(batch_size, resize=224)\n',
         'train_iter, test_iter = load_data_fashion_mnist(batch_size, resize=224)\n'
         'train_iter, test_iter = train_iter.subset(3 * batch_size), test_iter.subset(16)\n'),
        ('d2l.try_gpu(), 0.01, 5', 'd2l.try_gpu(), 0.01, 1')])
    shapes = [l for l in out.splitlines() if 'output shape:\t' in l]
    assert [_squeeze(l) for l in shapes] == \
        [_squeeze(s.replace(' (', ' output shape: (')) for s in ARTICLE_ALEXNET_SHAPES]
    (epoch,) = _lines(out, r'^epoch 1, loss (\S+), train acc (\S+), test acc (\S+)$')
    loss, train_acc, test_acc = (float(v) for v in epoch.groups())
    # counts of right answers over the 3 batches of 8 and the 16 test images
    assert math.isfinite(loss) and _counted(train_acc, 24) and _counted(test_acc, 16)
    assert 'steps 3' in out.splitlines()
    # As written, the listing initializes twice: MXNet keeps the first (default) init and warns.
    assert 'already initialized' in err


# ---------------------------------------------------------------- d2l 2nd edition, numpy mode

BOOK_SUBSET = ("batch_size=batch_size)  # d2l's\n",
               "batch_size=batch_size)  # d2l's\n"
               "train_iter, test_iter = train_iter.subset(2000), test_iter.subset(500)\n")
BOOK_EPOCHS = ('lr, num_epochs = 0.9, 10', 'lr, num_epochs = 0.9, 2')
BOOK_CALL = 'd2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())'


@pytest.mark.parametrize('trainer', ['book', 'gluon_classics'])
def test_d2l2_lenet_section_in_numpy_mode(trainer, data_root, tmp_path):
    """The section on our loader, with the book's own train_ch6 and with ours."""
    replace = [BOOK_SUBSET, BOOK_EPOCHS]
    if trainer == 'gluon_classics':
        replace.append((BOOK_CALL, 'gluon_classics.train_ch6(net, train_iter, test_iter, '
                                   'num_epochs, lr)'))
    out, _ = run_listing('d2l2_lenet.py', data_root, tmp_path, replace=replace)
    lines = [l for l in out.splitlines() if l.strip()]
    shapes = [l for l in lines if 'output shape:\t' in l]
    assert [_squeeze(l) for l in shapes] == \
        [_squeeze(s.replace(' (', ' output shape: (')) for s in BOOK_LENET_SHAPES]
    first, second = lines[-2].split('\x1b[2K')[-1], lines[-1]  # the book's animator clears lines
    loss, train_acc, test_acc = (float(v) for v in BOOK_LINE1.match(first).groups())
    assert 0 < loss < 3 and 0 <= train_acc <= 1 and _counted(test_acc, 500)  # of the subset
    assert float(BOOK_LINE2.match(second).group(1)) > 0
    if trainer == 'gluon_classics':  # in a plain process: the two lines and nothing else
        assert lines[len(shapes):] == [first, second]


PARITY = """
import io, json
from contextlib import redirect_stdout
import mxnet as mx
from mxnet import np, npx
from mxnet.gluon import nn
from d2l import mxnet as d2l
import gluon_classics as gc
npx.set_np()

def book_lenet(act):  # the book's LeNet; 'relu' is its exercise, which learns in a few steps
    net = nn.Sequential()
    net.add(nn.Conv2D(channels=6, kernel_size=5, padding=2, activation=act),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(channels=16, kernel_size=5, activation=act),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation=act), nn.Dense(84, activation=act), nn.Dense(10))
    return net

def loaders():
    train_iter, test_iter = gc.load_data_fashion_mnist(256, ctx=mx.cpu(), shuffle_seed=0)
    return train_iter.subset(2000), test_iter.subset(500)

def run(train_ch6, net, num_epochs, lr):
    train_iter, test_iter = loaders()
    mx.random.seed(1)
    printed = io.StringIO()
    with redirect_stdout(printed):
        train_ch6(net, train_iter, test_iter, num_epochs, lr)
    return printed.getvalue().split('\x1b[2K')[-1].strip().splitlines(), test_iter

out = {}
net = book_lenet('sigmoid')
for name, train_ch6 in (('book', lambda *a: d2l.train_ch6(*a, mx.cpu())), ('ours', gc.train_ch6)):
    printed, _ = run(train_ch6, net, 3, 0.9)
    out[name] = dict(printed=printed,
                     params=[p.data().asnumpy().tolist() for p in net.collect_params().values()])
net = book_lenet('relu')
_, test_iter = run(gc.train_ch6, net, 2, 0.2)
out['eval'] = [d2l.evaluate_accuracy_gpu(net, test_iter), gc.evaluate_accuracy_gpu(net, test_iter),
               gc.evaluate_accuracy(test_iter, net)]
print(json.dumps(out))
"""


def test_train_ch6_and_evaluate_accuracy_gpu_match_d2l(data_root, tmp_path):
    """The real d2l.mxnet and ours, on the same net, batches and seed, in numpy mode.

    Training is compared where it is smooth (sigmoid, still near chance after 24 steps): once
    ReLU units start to die or revive, float rounding decides which, and runs drift apart.
    """
    out, _ = run_python(PARITY, data_root, tmp_path)
    runs = json.loads(out.splitlines()[-1])
    book, ours = (BOOK_LINE1.match(runs[k]['printed'][0]).groups() for k in ('book', 'ours'))
    for a, b in zip(book, ours):  # training: the same function, up to float rounding
        assert float(a) == pytest.approx(float(b), abs=2e-3)
    for a, b in zip(runs['book']['params'], runs['ours']['params']):
        a, b = np.array(a), np.array(b)
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    assert BOOK_LINE2.match(runs['ours']['printed'][1])
    book_eval, our_eval, ch5_eval = runs['eval']  # a net that learned: exactly the same count
    assert book_eval == our_eval == ch5_eval > 0.3


NUMPY_MODE = '''
import io, json
from contextlib import redirect_stdout
import mxnet as mx, numpy as onp
from mxnet import autograd, gluon, init, np, npx
import gluon_classics as gc
from gluon_classics.training import predict
from gluon_classics.accel import objective as fast_objective
from gluon_classics.training.objective import objective, plain_objective
npx.set_np()
out = {}

def loaders():
    train, test = gc.load_data_fashion_mnist(128, ctx=mx.cpu(), shuffle_seed=0)
    return train.subset(1024), test.subset(500)

train, test = loaders()
X, y = next(iter(train))
out['batch'] = [type(X).__module__ + '.' + type(X).__name__, type(y).__name__, str(y.dtype)]
printed = io.StringIO()
with redirect_stdout(printed):
    gc.print_shapes(gc.lenet(), (1, 1, 28, 28))
    gc.print_shapes(gc.alexnet(), (1, 1, 224, 224))
out['shapes'] = printed.getvalue().splitlines()
alex = gc.alexnet()
alex.initialize()
out['alexnet_out'] = [type(alex(np.zeros((1, 1, 224, 224)))).__name__]

def grads(objective, net, X, y):  # grad_req 'write': each backward replaces the gradients
    with autograd.record():
        loss, correct = objective(X, y)
    loss.backward()
    return float(loss), float(correct), [p.grad().asnumpy() for p in net.collect_params().values()]

out['onednn'] = {}
rng = onp.random.default_rng(0)
cases = {'d2l': {}, 'gluon': {'variant': 'gluon'},
         'relu+max': {'activation': 'relu', 'pool': 'max'}}
for case, kwargs in cases.items():
    net = gc.lenet(**kwargs)
    net.initialize(init.Xavier())
    Xc = np.array(rng.random((32, 1, 28, 28)), dtype='float32')
    yc = np.array(rng.integers(0, 10, 32), dtype='int32')
    net(Xc)
    fast = fast_objective(net, [mx.cpu()], objective, plain_objective(net))
    la, ca, ga = grads(plain_objective(net, hybridize=False), net, Xc, yc)
    lb, cb, gb = grads(fast, net, Xc, yc)
    out['onednn'][case] = dict(kind=type(fast).__name__, loss=[la, lb], count=[ca, cb],
                               grad=max(float(abs(a - b).max() / (abs(a).max() + 1e-12))
                                        for a, b in zip(ga, gb)))

def train_two_epochs(net):
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    train, test = loaders()
    history = gc.train_ch5(net, train, test, 128, trainer, mx.cpu(), 2, log=lambda *a: None)
    return history, test

mx.random.seed(0)
net = gc.lenet(activation='relu')  # it learns in a few steps: the accuracies mean something
net.initialize(init.Xavier(), ctx=mx.cpu())
net(np.zeros((1, 1, 28, 28)))
start = [p.data().asnumpy() for p in net.collect_params().values()]
out['np_history'], test = train_two_epochs(net)
out['np_eval'] = [gc.evaluate_accuracy(test, net), gc.evaluate_accuracy_gpu(net, test)]
logits = net(np.array(test.images.astype('float32') / 255)).asnumpy()
out['np_numpy_acc'] = float((logits.argmax(1) == test.labels).mean())
out['np_predict'] = predict(net, test, n=5, ctx=mx.cpu())[2].tolist()
out['np_predict_ref'] = logits.argmax(1)[:5].tolist()

npx.reset_np()  # legacy mode, the same start: the same training
out['legacy_batch'] = type(next(iter(test))[0]).__name__
legacy = gc.lenet(activation='relu')
legacy.initialize(ctx=mx.cpu())
legacy(mx.nd.zeros((1, 1, 28, 28)))
for p, value in zip(legacy.collect_params().values(), start):
    p.set_data(mx.nd.array(value))
out['legacy_history'], _ = train_two_epochs(legacy)
print(json.dumps(out))
'''


def test_numpy_mode_loaders_models_shapes_and_training(data_root, tmp_path):
    out, _ = run_python(NUMPY_MODE, data_root, tmp_path)
    res = json.loads(out.splitlines()[-1])
    assert res['batch'] == ['mxnet.numpy.ndarray', 'ndarray', 'float32']
    assert res['legacy_batch'] == 'NDArray'  # npx.reset_np() brings legacy batches back
    assert res['shapes'][0] == 'conv0 output shape: (1, 6, 28, 28)'
    assert 'pool2 output shape: (1, 256, 5, 5)' in res['shapes']
    assert res['shapes'][-1] == 'dense2 output shape: (1, 10)'
    assert res['alexnet_out'] == ['ndarray']
    for case, r in res['onednn'].items():  # the fast graph in numpy mode: the same function
        assert r['kind'] == 'FastObjective', case
        assert r['loss'][1] == pytest.approx(r['loss'][0], rel=1e-5)
        assert r['count'][0] == r['count'][1]
        assert r['grad'] < 1e-4, case
    np_hist, legacy_hist = res['np_history'], res['legacy_history']
    assert len(np_hist) == 2 and all(math.isfinite(r['loss']) for r in np_hist)
    for a, b in zip(np_hist, legacy_hist):  # numpy mode trains exactly as legacy mode
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-5)
        assert (a['train_acc'], a['test_acc']) == (b['train_acc'], b['test_acc'])
    assert res['np_eval'] == [np_hist[-1]['test_acc']] * 2 and res['np_eval'][0] > 0.3
    assert res['np_eval'][0] == pytest.approx(res['np_numpy_acc'], abs=1e-9)
    assert res['np_predict'] == res['np_predict_ref']


# ---------------------------------------------------------------- labels, contexts, train_ch6

def _tiny(n=96, label_dtype='float32', seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    return images, labels, ArrayLoader(images, labels, 32, shuffle=True, ctx=mx.cpu(),
                                       shuffle_seed=seed, label_dtype=label_dtype)


def test_labels_are_float32_as_mxnet_iterators_give_them():
    _, _, loader = _tiny()
    X, y = next(iter(loader))
    assert y.dtype == np.float32 and X.dtype == np.float32
    y_hat = mx.nd.random.uniform(shape=(32, 10))
    (y_hat.argmax(axis=1) == y).sum().asscalar()  # the article's comparison, no cast needed
    mnist_iter_label = mx.io.NDArrayIter(np.zeros((4, 2)), np.arange(4), 2).next().label[0]
    assert mnist_iter_label.dtype == y.dtype
    _, _, int_loader = _tiny(label_dtype='int32')
    with pytest.raises(mx.base.MXNetError, match='expected float32, got int32'):  # argmax's
        (y_hat.argmax(axis=1) == next(iter(int_loader))[1]).sum().asscalar()


@pytest.mark.parametrize('label_dtype', ['float32', 'int32', 'int64', 'uint8', 'float64'])
def test_evaluate_accuracy_and_train_ch5_for_every_label_dtype(label_dtype):
    mx.random.seed(0)
    net = lenet()
    net.initialize(init.Xavier(), ctx=mx.cpu())
    images, labels, loader = _tiny(label_dtype=label_dtype)
    logits = net(mx.nd.array(images.astype(np.float32) / 255)).asnumpy()
    assert evaluate_accuracy(loader, net) == pytest.approx((logits.argmax(1) == labels).mean())
    loader.epoch = 0  # train on the same shuffles as the float32 run below
    start = {k: p.data().copy() for k, p in net.collect_params().items()}
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    history = train_ch5(net, loader, loader, 32, trainer, mx.cpu(), 1, log=lambda *a: None)
    # the same run with float32 labels, from the same start
    for k, p in net.collect_params().items():
        p.set_data(start[k])
    _, _, ref_loader = _tiny()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    ref = train_ch5(net, ref_loader, ref_loader, 32, trainer, mx.cpu(), 1, log=lambda *a: None)
    for key in ('loss', 'train_acc', 'test_acc'):
        assert history[0][key] == ref[0][key], key


def test_evaluate_accuracy_uses_the_nets_context():
    """With no context, where the parameters are (cpu(1) here), as d2l does; not try_gpu()."""
    mx.random.seed(0)
    net = lenet()
    net.initialize(init.Xavier(), ctx=mx.cpu(1))
    _, _, loader = _tiny()  # batches on cpu(0)
    expected = evaluate_accuracy(loader, net, mx.cpu(1))
    assert evaluate_accuracy(loader, net) == expected == evaluate_accuracy_gpu(net, loader)
    with pytest.raises(RuntimeError, match='cpu'):  # the old default, try_gpu() = cpu(0)
        evaluate_accuracy(loader, net, mx.cpu(0))


def test_train_ch6_legacy_mode_prints_the_books_two_lines():
    net = lenet()
    _, _, loader = _tiny(n=128)
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert train_ch6(net, loader, loader, 2, 0.5, mx.cpu()) is None  # the book returns None
    lines = printed.getvalue().splitlines()
    assert len(lines) == 2 and BOOK_LINE1.match(lines[0]) and BOOK_LINE2.match(lines[1])
    # Xavier re-init and training happened: the net now scores what the first line says
    assert float(BOOK_LINE1.match(lines[0]).group(3)) == \
        pytest.approx(evaluate_accuracy_gpu(net, loader), abs=5e-4)
