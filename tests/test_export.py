"""ONNX export (gluon_classics.export, gluon-classics export) checked by ONNX Runtime on all
10,000 Fashion-MNIST test images, MXNet's own export, and the extras' one-line messages."""
import configparser
import importlib.metadata
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mxnet import autograd, gluon, init
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gluon_classics import export_onnx, load_data_fashion_mnist
from gluon_classics import export as export_module
from gluon_classics.data import ArrayLoader
from gluon_classics.data.fashion_mnist import FASHION_MNIST_TEXT_LABELS
from gluon_classics.export import OPSET, ExportMismatch, export_mxnet
from gluon_classics.model_zoo import LENET_VARIANTS, get_model
from gluon_classics.utils.extras import EXTRAS
from helpers import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every LeNet variant of the table and the AlexNet that takes 28x28 images
NETS = [('lenet', v) for v in LENET_VARIANTS] + [('alexnet', 'small')]


@pytest.fixture(scope='module')
def loaders(data_root):
    """Per image side: Fashion-MNIST's (train, test) loaders, batches of 1000 for the check."""
    return {side: load_data_fashion_mnist(1000, resize=None if side == 28 else side,
                                          root=os.path.join(data_root, 'fashion-mnist'))
            for side in (28, 32)}


# Adam steps, batch size and rate that give a seeded net varied argmaxes (measured)
BRIEF = {'lenet': (60, 128, 0.005), 'alexnet': (20, 128, 0.002)}


def _briefly_trained(model, variant, train_iter):
    """A seeded net after a few Adam steps on a fixed subset in a fixed order: its logits vary
    from image to image (a fresh sigmoid LeNet gives every image the same class)."""
    steps, batch, lr = BRIEF[model]
    subset = train_iter.subset(steps * batch, seed=0)
    batches = ArrayLoader(subset.images, subset.labels, batch, resize=train_iter.resize,
                          ctx=mx.cpu())
    mx.random.seed(0)
    net = get_model(model, variant=variant)
    net.initialize(init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': lr})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    for X, y in batches:
        with autograd.record():
            l = loss(net(X), y)
        l.backward()
        trainer.step(X.shape[0])
    return net


def _session(path):
    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize('model,variant', NETS, ids=[f'{m}-{v}' for m, v in NETS])
def test_onnx_runtime_agrees_with_mxnet_on_every_test_image(model, variant, loaders, tmp_path):
    side = get_model(model, variant=variant).input_shape[-1]
    train_iter, test_iter = loaders[side]
    net = _briefly_trained(model, variant, train_iter)
    path = tmp_path / f'{model}-{variant}.onnx'
    result = export_onnx(net, str(path), test_iter, class_names=test_iter.text_labels)
    assert result['images'] == result['same_argmax'] == 10000
    assert result['max_abs_diff'] <= 1e-4 and result['path'] == str(path)

    # the file itself, read here with onnx and ONNX Runtime, not through the library
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert [(o.domain, o.version) for o in m.opset_import] == [('', OPSET)]
    assert [i.name for i in m.graph.input] == ['data']  # the weights are constants
    assert _dims(m.graph.input[0]) == ['batch', 1, side, side]
    assert [o.name for o in m.graph.output] == ['logits'] and _dims(m.graph.output[0])[0] == 'batch'
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta['class_names']) == FASHION_MNIST_TEXT_LABELS
    assert meta['input_shape'] == f'1,{side},{side}'
    # ONNX Runtime and MXNet here, on the first 1000 images (the library's check above
    # covered all 10,000; test_a_file_that_disagrees_is_not_written shows it can fail)
    session = _session(path)
    X = next(iter(test_iter))[0]
    ours, theirs = net(X).asnumpy(), session.run(None, {'data': X.asnumpy()})[0]
    assert len(np.unique(ours.argmax(axis=1))) >= 3  # not one class for every image
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()
    assert np.abs(ours - theirs).max() <= 1e-4
    for batch in (1, 7):  # the batch axis is dynamic
        out = session.run(None, {'data': X[:batch].asnumpy()})[0]
        assert out.shape == (batch, 10)
        np.testing.assert_allclose(out, ours[:batch], atol=1e-4)


def test_a_file_that_disagrees_is_not_written(loaders, tmp_path, monkeypatch):
    """A wrong graph (the output layer's bias off by 0.01) fails the check; the old file
    stays whole."""
    train_iter, test_iter = loaders[28]
    net = _briefly_trained('lenet', 'gluon', train_iter)
    real = export_module._onnx_model

    def bias_off(*args):
        model = real(*args)
        last = model.graph.node[-1]  # the output Gemm: data, weight, bias
        bias, = [t for t in model.graph.initializer if t.name == last.input[2]]
        bias.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) + 0.01,
                                                   bias.name))
        return model
    monkeypatch.setattr(export_module, '_onnx_model', bias_off)
    path = tmp_path / 'lenet.onnx'
    path.write_bytes(b'the old file')
    with pytest.raises(ExportMismatch, match=r'ONNX Runtime disagrees with MXNet: the same '
                                             r'argmax on \d+ of 10000 images, max \|logit '
                                             r'difference\| .*the file was not written'):
        export_onnx(net, str(path), test_iter)
    assert path.read_bytes() == b'the old file'
    assert sorted(os.listdir(tmp_path)) == ['lenet.onnx']  # no temporaries, no lock left


def test_a_graph_the_checker_rejects_is_not_written(tmp_path, monkeypatch):
    real = onnx.load

    def unknown_op(path):
        model = real(path)
        model.graph.node[0].op_type = 'NoSuchOp'
        return model
    monkeypatch.setattr(onnx, 'load', unknown_op)
    net = get_model('lenet')
    net.initialize()
    with pytest.raises(ExportMismatch, match=r'^onnx.checker rejects the exported graph \(No Op '
                                             r'registered for NoSuchOp .*the file was not '
                                             r'written$'):
        export_onnx(net, str(tmp_path / 'lenet.onnx'))
    assert os.listdir(tmp_path) == []


@pytest.mark.filterwarnings('ignore:Cannot decide type')  # SymbolBlock.imports, here
def test_mxnet_format_reloads_and_agrees(loaders, tmp_path):
    train_iter, test_iter = loaders[28]
    net = _briefly_trained('lenet', 'd2l', train_iter)
    result = export_mxnet(net, str(tmp_path / 'lenet'), test_iter)
    assert result['paths'] == [str(tmp_path / 'lenet-symbol.json'),
                               str(tmp_path / 'lenet-0000.params')]
    assert result['images'] == result['same_argmax'] == 10000 and result['max_abs_diff'] <= 1e-4
    loaded = gluon.SymbolBlock.imports(*result['paths'][:1], ['data'], result['paths'][1])
    X = next(iter(test_iter))[0]
    np.testing.assert_allclose(loaded(X).asnumpy(), net(X).asnumpy(), atol=1e-6)




def test_cli_exports_the_main_commands_lenet_params(fashion_mnist_dir, tmp_path, capsys,
                                                    monkeypatch):
    """README's lenet.params (1 epoch here) -> ONNX, the agreement printed; and the checkpoint
    as --params; and --format mxnet."""
    monkeypatch.chdir(tmp_path)
    data = ['--data-dir', fashion_mnist_dir]
    status, _, err = run_cli(capsys, 'train', 'lenet', '--epochs', '1', '--num-examples', '6000',
                           '--seed', '0', '--save', 'lenet.params', *data)
    assert status == 0, err
    for params in ('lenet.params', 'lenet.params.ckpt'):
        status, out, err = run_cli(capsys, 'export', 'lenet', '--params', params, '--out',
                                 'lenet.onnx', *data)
        assert status == 0, err
        lines = out.strip().splitlines()
        assert lines[0] == 'wrote lenet.onnx (input: batch x 1x28x28)'
        assert lines[1].startswith(f'checked: onnx.checker passed; ONNX Runtime '
                                   f'{ort.__version__} (CPU) against MXNet on the 10000 test '
                                   f'images: argmax identical on 10000/10000, max |logit '
                                   f'difference| ')
        assert float(lines[1].split('| ')[1].split()[0]) <= 1e-4
        meta = {p.key: p.value for p in onnx.load('lenet.onnx').metadata_props}
        assert json.loads(meta['class_names']) == FASHION_MNIST_TEXT_LABELS
        assert meta['variant'] == 'd2l'
    status, out, err = run_cli(capsys, 'export', 'lenet', '--params', 'lenet.params', '--out',
                             'mx/lenet', '--format', 'mxnet', *data)
    assert status == 0, err
    assert sorted(os.listdir('mx')) == ['lenet-0000.params', 'lenet-symbol.json']
    assert 'argmax identical on 10000/10000' in out


def test_cli_refuses_a_bad_out_before_reading_anything(tmp_path, capsys):
    (tmp_path / 'params').write_bytes(b'')
    status, _, err = run_cli(capsys, 'export', 'lenet', '--params', tmp_path / 'params', '--out',
                           tmp_path, '--data-dir', tmp_path / 'no-data')
    assert status == 2
    assert err == f'gluon-classics: error: cannot write --out {tmp_path}: it is a folder, not ' \
                  f'a regular file; give a file path inside it\n'


def _child(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))


# (hidden module, command, extra, the line's feature); OUT is the output path
MISSING = [('onnx', ['export', 'lenet', '--params', 'p', '--out', 'OUT'], 'export',
            'gluon-classics export'),
           ('onnxruntime', ['export', 'lenet', '--params', 'p', '--out', 'OUT'], 'export',
            'gluon-classics export'),
           ('tensorboardX', ['train', 'lenet', '--tensorboard', 'OUT'], 'tensorboard',
            '--tensorboard')]


def test_a_missing_extra_is_one_line_naming_it(tmp_path):
    """Each module hidden in turn (a None entry in sys.modules), in one child process: one
    line, exit 2, before any data is read (--data-dir points nowhere), nothing written."""
    out = tmp_path / 'out'
    cases = [(hidden, [str(out) if a == 'OUT' else a for a in command]
              + ['--data-dir', str(tmp_path / 'nowhere')]) for hidden, command, *_ in MISSING]
    code = (f"import contextlib, io, json, sys\n"
            f"from gluon_classics.cli import main\n"
            f"results = []\n"
            f"for hidden, argv in {cases!r}:\n"
            f"    sys.modules[hidden] = None  # import fails: ModuleNotFoundError\n"
            f"    err = io.StringIO()\n"
            f"    with contextlib.redirect_stderr(err):\n"
            f"        status = main(argv)\n"
            f"    sys.modules.pop(hidden)\n"
            f"    results.append((status, err.getvalue()))\n"
            f"print(json.dumps(results))\n")
    run = _child(code)
    assert run.returncode == 0, run.stderr
    for (status, err), (hidden, _, extra, feature) in zip(json.loads(run.stdout), MISSING):
        assert status == 2, err
        assert err == (f'gluon-classics: error: {feature} needs the {extra!r} extra '
                       f'({hidden} did not import): pip install "gluon_classics[{extra}]", or '
                       f'pip install -r requirements.txt from the checkout\n')
    assert not out.exists()


def test_the_library_raises_missing_extra():
    run = _child("import sys; sys.modules['onnxruntime'] = None\n"
                 "import gluon_classics as gc\n"
                 "from gluon_classics.utils.extras import MissingExtra\n"
                 "try:\n    gc.export_onnx(gc.lenet(), 'x.onnx')\n"
                 "except MissingExtra as err:\n    print(isinstance(err, ImportError), err)\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("True export_onnx needs the 'export' extra "
                                 "(onnxruntime did not import)")


def test_extras_name_what_setup_cfg_installs():
    """EXTRAS (what the code imports per extra) and setup.cfg's extras name the same
    distributions, and the lock installed them (they import here)."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, 'setup.cfg'))
    declared = config['options.extras_require']
    provides = importlib.metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        listed = {canonicalize_name(Requirement(line).name)
                  for line in declared[extra].splitlines() if line.strip()}
        imported = {canonicalize_name(d) for m in modules for d in provides[m]}
        assert listed == imported, (extra, listed, imported)
