"""train_ch5, evaluate_accuracy, checkpoints and fit: real training on small data."""
import json
import os
import re
import subprocess
import sys
import zipfile

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init

from gluon_classics import alexnet, evaluate_accuracy, lenet, load_data_fashion_mnist, train_ch5
from gluon_classics.data import ArrayLoader
from gluon_classics.training import (CheckpointError, TrainingDiverged, TrainingInterrupted, fit,
                                     load_checkpoint, load_params, predict)
from helpers import assert_png, bar_images, one_line_error

LINE = re.compile(r'^epoch \d+, loss \d+\.\d{4}, train acc \d\.\d{3}, test acc \d\.\d{3}, '
                  r'time \d+\.\d sec$')


def _toy_data(n=512, size=28, seed=0, batch_size=64, num_test=256):
    """Images whose class is the row of a bright bar: learnable in a few epochs.

    The test set is ``num_test`` further images from the same distribution,
    none of them among the ``n`` training images.
    """
    images, labels = bar_images(n + num_test, seed, size)
    loader = ArrayLoader(images[:n], labels[:n], batch_size, shuffle=True, ctx=mx.cpu(),
                         shuffle_seed=seed)
    return loader, ArrayLoader(images[n:], labels[n:], 128, ctx=mx.cpu())


def _lenet_and_trainer(lr=0.9, seed=0, **kwargs):
    mx.random.seed(seed)
    net = lenet(**kwargs)
    net.initialize(init.Xavier(), ctx=mx.cpu())
    return net, gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})


def test_train_ch5_prints_the_chapter_lines_and_learns(capsys):
    train_iter, test_iter = _toy_data()
    net, trainer = _lenet_and_trainer(activation='relu', pool='max', lr=0.1)
    history = train_ch5(net, train_iter, test_iter, 64, trainer, mx.cpu(), 4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == 'training on cpu(0)'
    assert len(lines) == 5 and all(LINE.match(line) for line in lines[1:]), lines
    assert [r['epoch'] for r in history] == [1, 2, 3, 4]
    assert list(history[0]) == ['epoch', 'loss', 'train_acc', 'test_acc', 'seconds',
                                'examples_per_sec']
    assert history[-1]['loss'] < history[0]['loss'] / 2
    assert history[-1]['test_acc'] > 0.9
    # the printed figures are the returned ones
    assert f"test acc {history[-1]['test_acc']:.3f}" in lines[-1]


def test_train_acc_and_loss_are_those_of_the_batches_seen():
    train_iter, test_iter = _toy_data(n=256, batch_size=256)
    net, trainer = _lenet_and_trainer(lr=0.0)  # no update: metrics must equal a plain pass
    net(mx.nd.zeros((1, 1, 28, 28)))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    X, y = next(iter(train_iter))
    expected_loss = loss_fn(net(X), y).mean().asscalar()
    expected_acc = evaluate_accuracy(train_iter, net, mx.cpu())
    h = train_ch5(net, train_iter, test_iter, 256, trainer, mx.cpu(), 1, log=lambda *a: None)
    assert h[0]['loss'] == pytest.approx(expected_loss, rel=1e-5)
    assert h[0]['train_acc'] == pytest.approx(expected_acc)


def test_evaluate_accuracy_counts_correct_predictions():
    _, test_iter = _toy_data()
    net, _ = _lenet_and_trainer()
    X = mx.nd.array(test_iter.images[:10].astype('float32') / 255)
    pred = net(X).argmax(axis=1).asnumpy().astype(int)
    labels = pred.copy()
    labels[:3] = (labels[:3] + 1) % 10  # exactly 7 of 10 right
    loader = ArrayLoader(test_iter.images[:10], labels.astype(np.int32), 4, ctx=mx.cpu())
    assert evaluate_accuracy(loader, net, mx.cpu()) == pytest.approx(0.7)


def test_nan_loss_stops_with_one_line_naming_the_learning_rate():
    train_iter, test_iter = _toy_data()
    net, trainer = _lenet_and_trainer(lr=1e12, activation='relu')
    with pytest.raises(TrainingDiverged, match=r'learning rate 1e\+12 is too high') as err:
        train_ch5(net, train_iter, test_iter, 64, trainer, mx.cpu(), 3, log=lambda *a: None)
    assert '\n' not in str(err.value)


def test_wrong_input_shape_names_the_expected_shape():
    train_iter, test_iter = _toy_data(size=32)
    net, trainer = _lenet_and_trainer(in_channels=1)
    net(mx.nd.zeros((1, 1, 28, 28)))  # the dense layer is now sized for 28x28
    with pytest.raises(ValueError, match=r'expects \(N, 1, 28, 28\)'):
        train_ch5(net, train_iter, test_iter, 64, trainer, mx.cpu(), 1, log=lambda *a: None)


class _InterruptAt:
    """Iterates like ``loader`` but raises KeyboardInterrupt at one batch of one epoch."""

    def __init__(self, loader, epoch, batch):
        self.loader, self.at, self.calls = loader, (epoch, batch), 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.calls += 1
        for i, batch in enumerate(self.loader):
            if (self.calls, i) == self.at:
                raise KeyboardInterrupt
            yield batch


def test_ctrl_c_keeps_the_last_finished_epoch(tmp_path):
    train_iter, test_iter = _toy_data()
    net, trainer = _lenet_and_trainer()
    ckpt = tmp_path / 'run.ckpt'
    with pytest.raises(TrainingInterrupted) as stop:
        train_ch5(net, _InterruptAt(train_iter, 2, 3), test_iter, 64, trainer, mx.cpu(), 5,
                  checkpoint=str(ckpt), log=lambda *a: None)
    assert stop.value.epoch == 2 and len(stop.value.history) == 1
    meta = load_checkpoint(str(ckpt))
    assert meta['epoch'] == 1 and meta['history'] == stop.value.history
    assert [p.name for p in tmp_path.iterdir()] == ['run.ckpt']  # no temporary left behind


def test_resumed_run_equals_uninterrupted_run(fashion_mnist_dir, tmp_path):
    common = dict(data_dir=fashion_mnist_dir, num_examples=3000, seed=7, ctx=mx.cpu(),
                  log=lambda *a: None, model_kwargs={'activation': 'relu'}, lr=0.1,
                  optimizer='momentum')
    _, straight = fit('lenet', epochs=3, **common)
    ckpt = str(tmp_path / 'a.ckpt')
    fit('lenet', epochs=1, checkpoint=ckpt, **common)
    net, resumed = fit('lenet', epochs=3, resume=ckpt, checkpoint=ckpt, **common)
    assert len(resumed) == 3
    for a, b in zip(straight, resumed):
        for key in ('loss', 'train_acc', 'test_acc'):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a, b)
    assert load_checkpoint(ckpt)['epoch'] == 3


def test_corrupt_checkpoint_and_params_are_one_line_errors(tmp_path):
    bad = tmp_path / 'bad.ckpt'
    bad.write_bytes(b'not a zip')
    with pytest.raises(CheckpointError, match='bad.ckpt is corrupt'):
        load_checkpoint(str(bad))
    # a metadata-only read still checks that the parameters and states are there
    partial = tmp_path / 'partial.ckpt'
    with zipfile.ZipFile(partial, 'w') as z:
        z.writestr('meta.json', '{"format": "gluon_classics-checkpoint-1"}')
    with pytest.raises(CheckpointError, match='partial.ckpt is corrupt .*net.params'):
        load_checkpoint(str(partial))
    with pytest.raises(CheckpointError, match='does not exist'):
        load_params(lenet(), str(tmp_path / 'missing.params'))
    net = alexnet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 224, 224)))
    net.save_parameters(str(tmp_path / 'alexnet.params'))
    with pytest.raises(CheckpointError, match='cannot be loaded into this LeNet') as err:
        load_params(lenet(), str(tmp_path / 'alexnet.params'))
    assert '\n' not in str(err.value)


def test_alexnet_few_steps_on_small_input_lower_the_loss():
    # AlexNet at 224 trains at ~11 images/s on this CPU; 96x96 keeps every layer
    # non-empty and the step fast, with the network otherwise unchanged.
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.random((16, 1, 96, 96)), dtype='float32')
    y = mx.nd.array(rng.integers(0, 10, 16))
    mx.random.seed(0)
    net = alexnet(dropout=0.0)
    net.initialize(init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.05, 'momentum': 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(8):
        with mx.autograd.record():
            loss = loss_fn(net(X), y)
        loss.backward()
        trainer.step(16)
        losses.append(loss.mean().asscalar())
    # fitting 16 fixed examples: the loss falls at every step
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.1, losses


@pytest.mark.filterwarnings('ignore:test accuracy')  # 16 steps: the recipe, not the result
def test_small_alexnet_trains_with_its_own_recipe(fashion_mnist_dir):
    seen = []

    def watch(record, trainer):  # runs before the schedule sets the next epoch's rate
        seen.append((trainer.learning_rate, trainer._optimizer.momentum, trainer._optimizer.wd))
    net, history = fit('alexnet', 'small', epochs=2, num_examples=1024, seed=0, ctx=mx.cpu(),
                       data_dir=fashion_mnist_dir, callbacks=[watch], log=lambda *a: None)
    assert len(history) == 2
    assert net.features[8].weight.shape == (512, 64 * 2 * 2)  # fed 28x28, not resized
    # momentum SGD with weight decay, cosine decay over the epochs asked for
    assert seen == [(0.05, 0.9, 5e-4), (pytest.approx(0.025), 0.9, 5e-4)]


def test_predict_returns_images_labels_and_the_nets_argmax():
    train_iter, test_iter = _toy_data()
    net, trainer = _lenet_and_trainer(activation='relu', pool='max', lr=0.1)
    # trained a little, so that the predictions are not all one class
    train_ch5(net, train_iter, test_iter, 64, trainer, mx.cpu(), 1, log=lambda *a: None)
    # 150 spans two of the loader's batches of 128
    images, true, pred = predict(net, test_iter, 150, ctx=mx.cpu())
    expected = test_iter.images[:150].astype(np.float32) / 255
    assert images.shape == (150, 1, 28, 28) and np.array_equal(images, expected)
    assert true.tolist() == test_iter.labels[:150].tolist()
    argmax = net(mx.nd.array(expected)).argmax(axis=1).asnumpy().astype(int)
    assert pred.tolist() == argmax.tolist() and len(set(argmax)) > 1


def _cli(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, '-m', 'gluon_classics', *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_train_evaluate_predict(fashion_mnist_dir, tmp_path):
    data = ['--data-dir', fashion_mnist_dir]
    run = _cli('train', 'lenet', '--epochs', '2', '--num-examples', '4000', '--seed', '1',
               '--save', 'lenet.params', '--metrics', 'm.json', '--plot', 'curve.png',
               *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0] == 'training on cpu(0)' and all(LINE.match(l) for l in lines[1:])
    history = json.loads((tmp_path / 'm.json').read_text())
    assert [sorted(r) for r in history] == [sorted(['epoch', 'loss', 'train_acc', 'test_acc',
                                                    'seconds', 'examples_per_sec'])] * 2
    assert_png(tmp_path / 'curve.png')
    ckpt = load_checkpoint(str(tmp_path / 'lenet.params.ckpt'))  # the end of the run, resumable
    assert ckpt['epoch'] == 2 and ckpt['history'] == history
    with zipfile.ZipFile(tmp_path / 'lenet.params.ckpt') as z:
        assert z.read('net.params') == (tmp_path / 'lenet.params').read_bytes()
    # parameters load into a freshly built net, and give the test accuracy of the last epoch
    net = load_params(lenet(), str(tmp_path / 'lenet.params'))
    train_iter, test_iter = load_data_fashion_mnist(1000, root=fashion_mnist_dir, ctx=mx.cpu())
    assert evaluate_accuracy(test_iter, net, mx.cpu()) == pytest.approx(history[-1]['test_acc'])
    run = _cli('evaluate', 'lenet', '--params', 'lenet.params', *data, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == f"test acc {history[-1]['test_acc']:.4f}"
    run = _cli('evaluate', 'lenet', '--params', 'lenet.params', '--split', 'train', *data,
               cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f'train acc {evaluate_accuracy(train_iter, net, mx.cpu()):.4f}'
    run = _cli('predict', 'lenet', '--params', 'lenet.params', '--out', 'grid.png', *data,
               cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert_png(tmp_path / 'grid.png')


@pytest.mark.parametrize('args,message', [
    (['train', 'lenet', '--variant', 'lenet7'], "unknown LeNet variant 'lenet7'"),
    (['train', 'lenet', '--lr', '-1', '--epochs', '1'], 'learning rate must be a positive number'),
    (['train', 'lenet', '--resume', 'nowhere.ckpt'], 'checkpoint nowhere.ckpt does not exist'),
    (['evaluate', 'lenet', '--params', 'missing.params'], 'missing.params does not exist'),
])
def test_cli_errors_are_one_line(tmp_path, fashion_mnist_dir, args, message):
    run = _cli(*args, '--data-dir', fashion_mnist_dir, cwd=tmp_path)
    one_line_error(run.returncode, run.stderr, message)


# the CLI with the network cut: the download's urlopen raises instead of connecting
OFFLINE = '''
import sys, urllib.request
def urlopen(url, *args, **kwargs):
    raise OSError('the test cut the network')
urllib.request.urlopen = urlopen
from gluon_classics.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_an_empty_data_dir_tries_the_mirrors_then_says_where_the_files_go(tmp_path):
    (tmp_path / 'empty').mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'MXNET_GLUON_REPO'}  # the default mirrors
    run = subprocess.run([sys.executable, '-c', OFFLINE, 'train', 'lenet', '--data-dir', 'empty'],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    files = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
             't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
    name = files[0]
    tried = '; '.join(f'{base}/{name}: OSError: the test cut the network' for base in (
        'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com',
        'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist'))
    assert (run.returncode, run.stdout, run.stderr) == (2, '', (
        f'gluon-classics: error: could not download {name}: {tried}; put {", ".join(files)} '
        f'(gzipped or not) in {tmp_path / "empty"}, or pass --data-dir DIR naming the folder '
        f'that holds them\n'))
    assert os.listdir(tmp_path / 'empty') == []  # no partial download left


def test_cli_ctrl_c_saves_and_says_how_to_resume(fashion_mnist_dir, tmp_path):
    proc = subprocess.Popen([sys.executable, '-u', '-m', 'gluon_classics', 'train', 'lenet',
                             '--epochs', '50', '--num-examples', '2000', '--seed', '0',
                             '--metrics', 'm.json', '--data-dir', fashion_mnist_dir],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:
            if line.startswith('epoch 2,'):
                proc.send_signal(subprocess.signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert 'continue with --resume runs/lenet-d2l.ckpt' in err
    done = load_checkpoint(str(tmp_path / 'runs' / 'lenet-d2l.ckpt'))['epoch']
    assert done >= 2 and len(json.loads((tmp_path / 'm.json').read_text())) == done


def test_evaluate_accuracy_matches_d2l_evaluate_accuracy_gpu(fashion_mnist_dir, tmp_path):
    """Parity with the book's ``evaluate_accuracy_gpu`` (MXNet edition, numpy mode).

    The real one: d2l 1.0.3 ships ``d2l/mxnet.py`` (``from d2l import mxnet as d2l``).
    It runs in its own process: numpy mode is process-wide.
    """
    net, _ = fit('lenet', epochs=1, num_examples=3000, seed=0, data_dir=fashion_mnist_dir,
                 ctx=mx.cpu(), lr=0.1, model_kwargs={'activation': 'relu'}, log=lambda *a: None)
    _, test_iter = load_data_fashion_mnist(256, root=fashion_mnist_dir, ctx=mx.cpu())
    loader = test_iter.subset(2000, seed=1)
    ours = evaluate_accuracy(loader, net, mx.cpu())
    assert 0.2 < ours < 0.95  # a partly trained net: the comparison means something
    net.save_parameters(str(tmp_path / 'net.params'))
    np.savez(tmp_path / 'batch.npz', images=loader.images, labels=loader.labels)
    script = f'''
import numpy as onp
from d2l import mxnet as d2l
from gluon_classics import lenet, mx
from mxnet import np, npx
npx.set_np()
net = lenet(activation='relu')
net.load_parameters({str(tmp_path / 'net.params')!r})
data = onp.load({str(tmp_path / 'batch.npz')!r})
X, y = data['images'].astype('float32') / 255, data['labels']
batches = [(np.array(X[i:i + 256]), np.array(y[i:i + 256])) for i in range(0, len(y), 256)]
print(d2l.evaluate_accuracy_gpu(net, batches, mx.cpu()))
'''
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.strip().splitlines()[-1]) == pytest.approx(ours, abs=1e-9)
