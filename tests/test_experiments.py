"""Experiments: the LeNet exercise ablation and the feature-map report.

Training runs use one epoch on a small copy of the real Fashion-MNIST
(512 training and 1,000 test images, written as IDX files to a temporary
folder), so that loading and evaluating cost next to nothing.
"""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import init
from mxnet.gluon import nn

from gluon_classics import count_parameters, layer_shapes, lenet
from gluon_classics.cli import main
from gluon_classics.experiments import (ABLATION_LR, ABLATIONS, ablate, activation_stats,
                                        feature_maps, lenet_options)
from gluon_classics.experiments import ablation
from gluon_classics.model_zoo import leaves
from gluon_classics.data import FASHION_MNIST, load_data, read_mnist_folder
from gluon_classics.training import TrainingDiverged, fit
from helpers import assert_png, idx_bytes, one_line_error


def _write_idx(path, array, magic):
    with open(path, 'wb') as f:
        f.write(idx_bytes(array, magic))


@pytest.fixture(scope='module')
def data(fashion_mnist_dir, tmp_path_factory):
    """Folder with the first 512 training and 1,000 test images of Fashion-MNIST."""
    folder = tmp_path_factory.mktemp('fashion-mnist-small')
    (train_x, train_y), (test_x, test_y) = read_mnist_folder(FASHION_MNIST, fashion_mnist_dir,
                                                             progress=False)
    for name, array, magic in (('train-images-idx3-ubyte', train_x[:512, 0], 2051),
                               ('train-labels-idx1-ubyte', train_y[:512], 2049),
                               ('t10k-images-idx3-ubyte', test_x[:1000, 0], 2051),
                               ('t10k-labels-idx1-ubyte', test_y[:1000], 2049)):
        _write_idx(folder / name, array, magic)
    return str(folder)


@pytest.fixture
def quick(data):
    return dict(epochs=1, data_dir=data, ctx=mx.cpu(), num_examples=256)


def _signature(net):
    """What each layer is: kind, activation, kernel, output shape."""
    layers = leaves(net)
    shapes = layer_shapes(net, (1, 1, 28, 28))
    return tuple((type(layer).__name__, getattr(getattr(layer, 'act', None), '_act_type', None),
                  getattr(layer, '_kwargs', {}).get('kernel'), shape)
                 for layer, (_, shape) in zip(layers, shapes))


def test_variants_are_model_options_that_change_the_layers():
    signatures = {}
    for name, (description, kwargs) in ABLATIONS.items():
        assert description
        sig = (_signature(lenet('d2l', **kwargs)), ABLATION_LR.get(name))
        assert sig not in signatures.values(), f'{name} repeats {signatures}'
        signatures[name] = sig
    assert ABLATIONS['baseline'][1] == {}
    relu = lenet('d2l', **ABLATIONS['relu+max'][1])
    assert {type(l) for l in leaves(relu)} >= {nn.MaxPool2D}
    assert leaves(relu)[0].act._act_type == 'relu'
    # 'same' padding of the first conv: every kernel size keeps 28x28
    for name in ('kernel-3', 'kernel-7'):
        assert layer_shapes(lenet('d2l', **ABLATIONS[name][1]), (1, 1, 28, 28))[0][1] == \
            (1, 6, 28, 28)
    convs = [l for l in leaves(lenet('d2l', **ABLATIONS['extra-conv'][1]))
             if isinstance(l, nn.Conv2D)]
    assert len(convs) == 3


def test_lenet_options():
    assert lenet_options('relu') == ('d2l', {'activation': 'relu'})
    assert lenet_options('gluon') == ('gluon', {})
    with pytest.raises(ValueError, match='unknown variant'):
        lenet_options('nope')


def test_ablate_rejects_bad_names_before_training():
    with pytest.raises(ValueError, match="unknown ablation variant.*'nope'"):
        ablate(['baseline', 'nope'], data_dir='/nonexistent')
    with pytest.raises(ValueError, match='seed'):
        ablate(['baseline'], seed=3)


def test_ablate_writes_table_json_and_curves(tmp_path, quick):
    names = ['baseline', 'relu+max-lr0.1']
    lines = []
    results = ablate(names, seeds=2, out=str(tmp_path), log=lambda *a: lines.append(a), **quick)
    assert [r['name'] for r in results] == names
    for r in results:
        built = lenet('d2l', **ABLATIONS[r['name']][1])
        assert r['parameters'] == count_parameters(built)
        assert r['seeds'] == [0, 1] and len(r['test_acc']) == 2
        assert all(len(run['history']) == 1 for run in r['runs'])
        assert r['test_acc'] == [run['history'][-1]['test_acc'] for run in r['runs']]
        assert r['test_acc_mean'] == pytest.approx(np.mean(r['test_acc']), abs=1e-12)
        assert r['test_acc_std'] == pytest.approx(np.std(r['test_acc'], ddof=1), abs=1e-12)
        assert r['seconds_per_epoch'] > 0
    assert results[1]['lr'] == 0.1 and results[0]['lr'] == 0.9
    assert any('[relu+max-lr0.1 seed 1]' in a[0] for a in lines)

    table = (tmp_path / 'results.md').read_text()
    rows = [l for l in table.splitlines() if l.startswith('| ') and not l.startswith('| variant')]
    assert [row.split('|')[1].strip() for row in rows] == names
    assert f'{results[0]["parameters"]:,}' in rows[0] and ' ± ' in rows[0]
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert [r['parameters'] for r in saved['results']] == [r['parameters'] for r in results]
    assert saved['config']['train_examples'] == 256 and saved['config']['epochs'] == 1
    assert_png(tmp_path / 'curves.png')


def test_ablate_reports_divergence_instead_of_hiding_it(tmp_path, monkeypatch, quick):
    def diverging(*args, callbacks=(), **kwargs):
        for cb in callbacks:  # one finished epoch, then NaN
            cb({'epoch': 1, 'loss': 2.3, 'train_acc': 0.1, 'test_acc': 0.1, 'seconds': 1.0,
                'examples_per_sec': 100.0}, None)
        raise TrainingDiverged('loss became nan in epoch 2')
    monkeypatch.setattr(ablation, 'fit', diverging)
    (r,) = ablate(['relu'], out=str(tmp_path), log=lambda *a: None, **quick)
    assert r['diverged'] == 1 and r['test_acc_mean'] is None
    assert r['runs'][0]['diverged']['epoch'] == 2
    assert 'diverged (NaN loss, epoch 2)' in (tmp_path / 'results.md').read_text()
    assert json.loads((tmp_path / 'results.json').read_text())['results'][0]['diverged'] == 1


@pytest.mark.parametrize('variant', ['baseline', 'kernel-3', 'extra-conv'])
def test_feature_maps_match_layer_shapes(variant):
    net = lenet('d2l', **ABLATIONS[variant][1])
    net.initialize(init.Xavier())
    X = mx.nd.random.uniform(shape=(3, 1, 28, 28))
    maps = feature_maps(net, X)
    expected = [(n, s) for n, s in layer_shapes(net, X.shape) if n.startswith('conv')]
    assert [(n, m.shape) for n, m in maps] == expected
    # conv0's maps are the first layer's output, activation included
    assert np.allclose(maps[0][1].asnumpy(), net.features[0](X).asnumpy())


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    """A ReLU LeNet after one epoch on 512 examples, and its parameter file."""
    net, _ = fit('lenet', 'd2l', epochs=1, lr=0.1, seed=0, data_dir=data, ctx=mx.cpu(),
                 model_kwargs=ABLATIONS['relu'][1], log=lambda *a: None)
    path = str(tmp_path_factory.mktemp('params') / 'relu.params')
    net.save_parameters(path)
    return net, path


def test_activation_stats_differ_between_noise_and_an_image(trained, data):
    net, _ = trained
    test_iter = load_data('fashion-mnist', 1, root=data, ctx=mx.cpu())[1]
    image = next(iter(test_iter))[0]
    noise = mx.nd.array(np.random.default_rng(0).random((1, 1, 28, 28)))
    stats = activation_stats(net, mx.nd.concat(image, noise, dim=0))
    assert [s['layer'] for s in stats] == ['conv0', 'conv1', 'dense0', 'dense1']
    for s in stats:
        assert s['activation'] == 'relu' and s['saturation'] == 'x = 0'
        assert s['mean'].shape == s['std'].shape == s['saturated'].shape == (2,)
        assert np.all((0 <= s['saturated']) & (s['saturated'] <= 1))
    conv0 = stats[0]
    # Test image #0 (a dress) is mostly black background; noise excites
    # every position, so its maps are brighter and more varied.
    assert conv0['mean'][1] > 1.5 * conv0['mean'][0]
    assert conv0['std'][1] > 1.5 * conv0['std'][0]
    # sigmoid units are counted as saturated near 0 and 1, not at exactly 0
    sig = lenet()
    sig.initialize(init.Xavier())
    (s0, *_) = activation_stats(sig, noise)
    assert s0['activation'] == 'sigmoid' and s0['saturation'] == 'x > 0.99 or x < 0.01'


def test_cli_features_writes_report(trained, data, tmp_path, capsys):
    _, params = trained
    out = tmp_path / 'features'
    rc = main(['features', 'lenet', '--variant', 'relu', '--params', params, '--out', str(out),
               '--data-dir', data, '--ctx', 'cpu', '--num-images', '2'])
    assert rc == 0, capsys.readouterr().err
    for name in ('conv0.png', 'conv1.png', 'activations.png'):
        assert_png(out / name)
    table = (out / 'activations.md').read_text()
    assert '| uniform noise |' in table and '| t-shirt (test #' in table
    saved = json.loads((out / 'activations.json').read_text())
    assert len(saved['inputs']) == 11 and len(saved['layers'][0]['mean']) == 11
    assert saved['layers'][0]['activation'] == 'relu'  # built from --variant relu


def _one_line_error(capsys):
    return one_line_error(2, capsys.readouterr().err)  # the status is checked where returned


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(['ablate', 'lenet', '--variants', 'baseline,nope', '--out', str(tmp_path)]) == 2
    assert "'nope'" in _one_line_error(capsys)
    assert not (tmp_path / 'results.md').exists()
    missing = str(tmp_path / 'missing.params')
    rc = main(['features', 'lenet', '--params', missing, '--out', str(tmp_path / 'f'),
               '--data-dir', str(tmp_path), '--ctx', 'cpu'])
    assert rc == 2
    assert 'missing.params' in _one_line_error(capsys)
    with pytest.raises(SystemExit) as stop:
        main(['ablate', 'alexnet'])
    assert stop.value.code == 2
    assert "invalid choice: 'alexnet' (choose from 'lenet')" in _one_line_error(capsys)


def test_cli_ablate(data, tmp_path, capsys):
    rc = main(['ablate', 'lenet', '--variants', 'max-pool', '--epochs', '1',
               '--num-examples', '128', '--data-dir', data, '--ctx', 'cpu',
               '--out', str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert '| max-pool | max instead of average pooling | 61,706 |' in \
        (tmp_path / 'results.md').read_text()


def test_cli_help_lists_every_variant(capsys):
    with pytest.raises(SystemExit):
        main(['ablate', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert all(name in text for name in ABLATIONS)
