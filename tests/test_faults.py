"""The faults of issue 14: outputs, resume, one-line errors, signals, seeds, progress.

Each test provokes one fault the way a user would and checks what happens;
docs/faults.md lists them. The CLI runs in-process (``cli.main``) except
where a real signal is needed.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile

import mxnet as mx
import numpy as np
import pytest

from gluon_classics import cli, lenet
from gluon_classics.data import ArrayLoader
from gluon_classics.training import (ReduceLROnPlateau, epoch_seeds, fit, load_checkpoint,
                                     load_params, progress as progress_module, train_ch5)
from gluon_classics.utils.outputs import OutputError, atomic_write, check_output, write_text
from helpers import assert_png, one_line_error, run_cli

TINY = ['--epochs', '1', '--num-examples', '500', '--seed', '0']




def _one_line_error(status, err, *words):
    """Exit status 2 and one error line (tiny runs may also warn of chance-level accuracy)."""
    one_line_error(status, err, *words, warnings=True)


# ---------------------------------------------------------------- output files

def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    target = tmp_path / 'real' / 'metrics.json'
    target.parent.mkdir()
    target.write_text('old')
    os.chmod(target, 0o640)
    link = tmp_path / 'link.json'
    link.symlink_to(target)
    write_text(str(link), 'new')
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == 'new'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # a rewritten file keeps its mode
    assert sorted(os.listdir(target.parent)) == ['metrics.json']  # no temporary left
    # a dangling link: its target is created
    dangling = tmp_path / 'dangling.json'
    dangling.symlink_to(tmp_path / 'real' / 'later.json')
    write_text(str(dangling), 'x')
    assert dangling.is_symlink() and (tmp_path / 'real' / 'later.json').read_text() == 'x'


def _a_device():
    # a shared machine's /dev/null can be a plain file already (old code replaced it)
    return next(d for d in ('/dev/full', '/dev/zero', os.devnull)
                if stat.S_ISCHR(os.stat(d).st_mode))


def test_special_files_and_folders_are_refused_not_replaced(tmp_path):
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    device = _a_device()
    for path, kind in ((fifo, 'a FIFO'), (device, 'a device'), (tmp_path, 'a folder')):
        with pytest.raises(OutputError, match=f'it is {kind}') as err:
            atomic_write(str(path), lambda tmp: open(tmp, 'w').close())
        assert '\n' not in str(err.value)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat(device).st_mode)
    link = tmp_path / 'to-fifo'
    link.symlink_to(fifo)
    with pytest.raises(OutputError, match='FIFO'):
        check_output(str(link))
    assert link.is_symlink()


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / 'keep.txt'
    path.write_text('old')

    def fail(tmp):
        with open(tmp, 'w') as f:
            f.write('half')
        raise OSError(28, 'No space left on device')
    with pytest.raises(OutputError, match='could not write .*keep.txt: No space left on device'):
        atomic_write(str(path), fail)
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['keep.txt']


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / 'fifo'
    os.mkfifo(path)
    return path


@pytest.mark.parametrize('option,path,words', [
    ('--save', 'fifo', ['--save', 'a FIFO']),
    ('--save', '/dev/full', ['--save /dev/full', 'a device']),
    ('--save', 'afile/lenet.params', ['afile is not a folder']),
    ('--metrics', '.', ['--metrics', 'a folder']),
    ('--plot', 'curve.pgn', ['--plot', '.pgn extension']),
    ('--checkpoint', 'afile/run.ckpt', ['--checkpoint', 'not a folder']),
    ('--save', 'same.params', ['is also the']),  # --checkpoint same.params below
])
def test_unwritable_outputs_fail_before_training(tmp_path, capsys, fifo, fashion_mnist_dir,
                                                 monkeypatch, option, path, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'afile').write_text('a file')
    extra = ['--checkpoint', 'same.params'] if path == 'same.params' else []
    status, out, err = run_cli(capsys, 'train', 'lenet', option, path, *extra, *TINY,
                             '--data-dir', fashion_mnist_dir)
    _one_line_error(status, err, *words)
    assert 'training on' not in out  # refused before the first epoch
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat('/dev/full').st_mode)
    assert not (tmp_path / 'runs').exists()


@pytest.fixture(params=['read-only', 'immutable'])
def read_only_folder(tmp_path, request):
    """tmp_path/readonly, where no one can write, root included (CI runs as root): mode 0555,
    and as root a read-only tmpfs mounted there, or the folder made immutable."""
    folder = tmp_path / 'readonly'
    folder.mkdir(mode=0o555)
    do, undo = {'read-only': (['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', str(folder)],
                              ['umount', str(folder)]),
                'immutable': (['chattr', '+i', str(folder)], ['chattr', '-i', str(folder)])}[
        request.param]
    if os.geteuid() != 0:  # mode 0555 is enough
        if request.param == 'immutable':
            pytest.skip('an immutable folder needs root (chattr +i); mode 0555 is tested')
        undo = None
    elif not shutil.which(do[0]) or subprocess.run(do, capture_output=True).returncode:
        pytest.skip(f'as root, a {request.param} folder needs {" ".join(do[:-1])}, which fails '
                    f'here (mount needs CAP_SYS_ADMIN, chattr a file system with attributes)')
    try:
        with pytest.raises(OSError):  # really read-only, for whoever runs the tests
            open(folder / 'probe', 'w').close()
        yield folder
    finally:
        if undo:
            subprocess.run(undo, check=True)


def test_a_read_only_folder_fails_before_training(tmp_path, capsys, read_only_folder,
                                                  fashion_mnist_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, 'train', 'lenet', '--save', 'readonly/lenet.params', *TINY,
                             '--data-dir', fashion_mnist_dir)
    _one_line_error(status, err)
    assert err.splitlines()[-1] == (
        f'gluon-classics: error: cannot write --save readonly/lenet.params: folder '
        f'{read_only_folder} is not writable; choose a path in a writable folder')
    assert 'training on' not in out and not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('args,words', [
    (['ablate', 'lenet', '--out', 'afile'], ['--out afile', 'not a folder']),
    (['ablate', 'lenet', '--out', 'fifo'], ['--out fifo', 'not a folder']),
    (['features', 'lenet', '--params', 'afile', '--out', 'afile/x'], ['afile is not a folder']),
    (['predict', 'lenet', '--params', 'afile', '--out', 'fifo'], ['--out fifo', 'a FIFO']),
    (['predict', 'lenet', '--params', 'afile', '--out', 'grid.pnj'], ['.pnj extension']),
])
def test_out_paths_of_other_commands_fail_before_the_work(tmp_path, capsys, fifo, monkeypatch,
                                                          fashion_mnist_dir, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'afile').write_text('a file')
    status, out, err = run_cli(capsys, *args, '--epochs', '1', '--data-dir', fashion_mnist_dir) \
        if args[0] == 'ablate' else run_cli(capsys, *args, '--data-dir', fashion_mnist_dir)
    _one_line_error(status, err, *words)
    assert out == '' and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_data_folder_errors_name_the_option(tmp_path, capsys):
    status, _, err = run_cli(capsys, 'train', 'lenet', '--data-dir', tmp_path / 'typo')
    _one_line_error(status, err, 'typo does not exist', '--data-dir DIR')
    assert 'root=' not in err and not (tmp_path / 'typo').exists()


@pytest.fixture(scope='module')
def trained(tmp_path_factory, fashion_mnist_dir):
    """A 1-epoch LeNet trained with --resize 32: its parameters, checkpoint and metrics."""
    folder = tmp_path_factory.mktemp('trained')
    save = folder / 'lenet.params'
    assert cli.main(['train', 'lenet', *TINY, '--resize', '32', '--activation', 'relu',
                     '--lr', '0.1', '--save', str(save), '--metrics', str(folder / 'm.json'),
                     '--data-dir', fashion_mnist_dir]) == 0
    return {'params': str(save), 'ckpt': str(save) + '.ckpt', 'folder': folder,
            'test_acc': json.loads((folder / 'm.json').read_text())[-1]['test_acc']}


def test_a_late_write_failure_says_where_the_weights_are(tmp_path, capsys, fashion_mnist_dir,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)

    def disk_full(self, filename, *args, **kwargs):
        raise OSError(28, 'No space left on device')
    # only --save's temporary fails (the checkpoint's is .lenet.params.ckpt.XXXXXXXX.tmp)
    real_save = mx.gluon.Block.save_parameters
    monkeypatch.setattr(mx.gluon.Block, 'save_parameters', lambda self, f, *a, **k: (
        disk_full(self, f) if re.fullmatch(r'\.lenet\.params\.\w{8}\.tmp', os.path.basename(f))
        else real_save(self, f, *a, **k)))
    status, _, err = run_cli(capsys, 'train', 'lenet', *TINY, '--save', 'lenet.params',
                           '--data-dir', fashion_mnist_dir)
    _one_line_error(status, err, 'could not write --save lenet.params: No space left on device',
                    'epoch 1 are in the checkpoint lenet.params.ckpt',
                    'unzip -p lenet.params.ckpt net.params')
    assert not (tmp_path / 'lenet.params').exists()
    # the way out the message names works
    with zipfile.ZipFile(tmp_path / 'lenet.params.ckpt') as z:
        (tmp_path / 'out.params').write_bytes(z.read('net.params'))
    load_params(lenet(), str(tmp_path / 'out.params'))


# ---------------------------------------------------------------- resume

def test_momentum_resume_equals_the_uninterrupted_run(fashion_mnist_dir, tmp_path, monkeypatch):
    # The plateau rule drops the rate after every epoch here, so the checkpoint
    # of epoch 2 must hold the rate it set (lr / 100), not the one epoch 2 used.
    monkeypatch.setattr(ReduceLROnPlateau, 'observe', lambda self, record: True)
    common = dict(data_dir=fashion_mnist_dir, num_examples=600, seed=3, ctx=mx.cpu(),
                  log=lambda *a: None, model_kwargs={'activation': 'relu'}, lr=0.1,
                  optimizer='momentum', progress=False)
    net_a, straight = fit('lenet', epochs=3, **common)
    ckpt = str(tmp_path / 'a.ckpt')
    fit('lenet', epochs=2, checkpoint=ckpt, **common)
    assert load_checkpoint(ckpt)['learning_rate'] == pytest.approx(0.001)
    net_b, resumed = fit(resume=ckpt, checkpoint=ckpt, epochs=3, ctx=mx.cpu(),
                         log=lambda *a: None, progress=False)
    assert len(straight) == len(resumed) == 3
    for a, b in zip(straight, resumed):
        for key in ('loss', 'train_acc', 'test_acc'):
            assert a[key] == b[key], (key, a, b)
    for (name, pa), pb in zip(net_a.collect_params().items(), net_b.collect_params().values()):
        np.testing.assert_array_equal(pa.data().asnumpy(), pb.data().asnumpy(), err_msg=name)


def test_sigterm_then_bare_resume_finishes_the_run_into_its_checkpoint(fashion_mnist_dir,
                                                                      tmp_path, capsys,
                                                                      monkeypatch):
    proc = subprocess.Popen([sys.executable, '-u', '-m', 'gluon_classics', 'train', 'lenet',
                             '--epochs', '12', '--num-examples', '500', '--seed', '0',
                             '--save', 'lenet.params', '--metrics', 'm.json',
                             '--data-dir', fashion_mnist_dir],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        for line in proc.stdout:
            if line.startswith('epoch 1,'):
                proc.terminate()  # SIGTERM, as a batch system or `kill` sends it
                break
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert 'stopped by SIGTERM' in err and 'continue with --resume lenet.params.ckpt' in err
    done = load_checkpoint(str(tmp_path / 'lenet.params.ckpt'))['epoch']
    assert 1 <= done < 12 and not (tmp_path / 'lenet.params').exists()

    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, 'train', 'lenet', '--resume', 'lenet.params.ckpt')
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f'the parameters to {tmp_path / "lenet.params"}, as the run was started', lines
    assert lines[1] == f'the metrics to {tmp_path / "m.json"}, as the run was started'
    assert lines[3].startswith(f'epoch {done + 1},'), lines
    meta = load_checkpoint('lenet.params.ckpt')
    assert meta['epoch'] == 12 and meta['config']['epochs'] == 12
    assert len(json.loads((tmp_path / 'm.json').read_text())) == 12
    load_params(lenet(), 'lenet.params')
    assert not (tmp_path / 'runs').exists()  # nothing went to the default checkpoint


def test_resume_applies_and_announces_or_refuses_a_contradicting_option(trained, capsys,
                                                                        fashion_mnist_dir):
    ckpt = trained['ckpt']
    status, _, err = run_cli(capsys, 'train', 'lenet', '--resume', ckpt, '--batch-size', '64',
                           '--checkpoint', trained['folder'] / 'other.ckpt')
    _one_line_error(status, err, '--batch-size 64 contradicts checkpoint', 'records 256')
    status, _, err = run_cli(capsys, 'train', 'lenet', '--resume', ckpt, '--activation', 'tanh',
                           '--checkpoint', trained['folder'] / 'other.ckpt')
    _one_line_error(status, err, '--activation tanh contradicts checkpoint')
    status, out, err = run_cli(capsys, 'train', 'lenet', '--resume', ckpt, '--epochs', '2',
                             '--lr', '0.05', '--checkpoint', trained['folder'] / 'other.ckpt',
                             '--save', trained['folder'] / 'other.params',
                             '--metrics', trained['folder'] / 'other.json')
    assert status == 0, err
    assert 'training to 2 epochs (the run was started for 1)' in out
    assert 'learning rate 0.05 (the checkpoint had 0.1)' in out
    meta = load_checkpoint(str(trained['folder'] / 'other.ckpt'))
    assert meta['epoch'] == 2 and meta['learning_rate'] == pytest.approx(0.05)


# ---------------------------------------------------------------- one-line errors

@pytest.mark.parametrize('args,words', [
    (['train', 'lenet', '--lr', 'inf'], ['learning rate', 'got inf']),
    (['train', 'lenet', '--lr', '1e39'], ['learning rate', '3.4e38']),
    (['train', 'lenet', '--ctx', 'cpu:0,0'], ['names a device twice', 'cpu:0']),
    (['train', 'lenet', '--activation', 'bogus'], ["unknown activation 'bogus'", 'relu']),
    (['train', 'alexnet', '--activation', 'relu'], ['alexnet does not take', 'LeNet options']),
    (['train', 'lenet', '--seed', '-1'], ['seed must be a non-negative integer']),
    (['train', 'lenet', '--bogus'], ['unrecognized arguments: --bogus']),
    (['train', 'lenet', '--dtype', 'float16'], ["invalid choice: 'float16'"]),
    (['train', 'alexnet', '--variant', 'small', '--dtype', 'bfloat16', '--no-hybridize'],
     ['dtype bfloat16 trains in the hybridized graph', 'leave hybridize on']),
])
def test_bad_options_are_one_line_before_any_work(capsys, args, words):
    status, out, err = run_cli(capsys, *args)
    _one_line_error(status, err, *words)
    assert out == ''


def test_lenet5_trains_at_its_own_input_size(capsys, fashion_mnist_dir, tmp_path):
    status, out, err = run_cli(capsys, 'train', 'lenet', '--variant', 'lenet5', *TINY,
                             '--checkpoint', tmp_path / 'l5.ckpt', '--data-dir',
                             fashion_mnist_dir)
    assert status == 0, err
    assert load_checkpoint(str(tmp_path / 'l5.ckpt'))['config']['resize'] == 32


def test_evaluate_takes_a_checkpoint_and_blames_the_right_thing(trained, capsys, tmp_path,
                                                                fashion_mnist_dir):
    data = ['--data-dir', fashion_mnist_dir]
    # the checkpoint records variant, overrides and resize: nothing else is needed
    status, out, err = run_cli(capsys, 'evaluate', 'lenet', '--params', trained['ckpt'])
    assert status == 0, err
    assert out.strip() == f"test acc {trained['test_acc']:.4f}"
    status, out, err = run_cli(capsys, 'predict', 'lenet', '--params', trained['ckpt'], '--num',
                             '64', '--out', tmp_path / 'grid.png')
    assert status == 0, err
    assert_png(tmp_path / 'grid.png')
    # the plain parameters without the training --resize, or with the wrong variant
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', trained['params'], *data)
    _one_line_error(status, err, 'do not take this data', '--resize', 'checkpoint as --params')
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', trained['ckpt'],
                           '--variant', 'gluon')
    _one_line_error(status, err, '--variant gluon contradicts the checkpoint',
                    'lenet --variant d2l --activation relu --resize 32')
    # empty and truncated files are blamed as such, not on the model
    (tmp_path / 'empty.params').write_bytes(b'')
    (tmp_path / 'cut.params').write_bytes(open(trained['params'], 'rb').read()[:1000])
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', tmp_path / 'empty.params',
                           *data)
    _one_line_error(status, err, 'empty.params is empty')
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', tmp_path / 'cut.params',
                           *data)
    _one_line_error(status, err, 'cut.params is truncated or not an MXNet parameter file',
                    'Invalid NDArray file format')


def test_ctrl_c_during_evaluate_is_one_line(trained, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli.commands, 'evaluate_accuracy', interrupted)
    status, out, err = run_cli(capsys, 'evaluate', 'lenet', '--params', trained['ckpt'])
    assert status == 130 and out == ''
    assert err == 'gluon-classics: interrupted; nothing was written\n'


def test_chance_level_is_a_warning_not_silence(capsys, fashion_mnist_dir, tmp_path):
    status, _, err = run_cli(capsys, 'train', 'lenet', '--lr', '1e9', *TINY,
                           '--checkpoint', tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    assert status == 0
    assert err.startswith('gluon-classics: warning: test accuracy') and 'chance level' in err
    assert 'learning rate 1e+09' in err and err.count('\n') == 1, err


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(['--version'])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith('gluon-classics 0.')


def test_predict_lays_out_a_grid():
    assert cli.commands._grid(64) == (8, 8) and cli.commands._grid(8) == (1, 8) and cli.commands._grid(10) == (2, 8)


# ---------------------------------------------------------------- seeds and progress

def _loader(shuffle_seed):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (200, 1, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 200).astype(np.int32)
    return (ArrayLoader(images, labels, 50, shuffle=True, ctx=mx.cpu(),
                        shuffle_seed=shuffle_seed),
            ArrayLoader(images[:50], labels[:50], 50, ctx=mx.cpu()))


def _seeded_run(shuffle_seed, seed=5):
    mx.random.seed(0)
    net = lenet(activation='relu')
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    np.random.seed(None)  # whatever state the global generator was left in
    train_iter, test_iter = _loader(shuffle_seed)
    return train_ch5(net, train_iter, test_iter, 50, trainer, mx.cpu(), 2, seed=seed,
                     log=lambda *a: None, progress=False)


def test_a_seed_fixes_the_run_whichever_way_the_loader_was_built():
    # without shuffle_seed the loader shuffles with numpy's global generator
    a, b = _seeded_run(None), _seeded_run(None)
    assert [(r['loss'], r['train_acc'], r['test_acc']) for r in a] == \
        [(r['loss'], r['train_acc'], r['test_acc']) for r in b]


def test_epoch_streams_of_neighbouring_seeds_differ():
    # seed + epoch would give seed 1's second epoch the stream of seed 2's first
    assert epoch_seeds(1, 1) != epoch_seeds(2, 0)
    for k in range(3):  # MXNet's, numpy's and Python's seeds: no pair of 20 x 20 shares one
        assert len({epoch_seeds(s, e)[k] for s in range(20) for e in range(20)}) == 400
    assert epoch_seeds(7, 0)[0] == 7  # a seed keeps its initial weights (deferred init)


def test_without_a_terminal_progress_is_a_heartbeat_with_an_estimate(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "HEARTBEAT_SECONDS", 0)
    net = lenet()
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    train_iter, test_iter = _loader(0)
    train_ch5(net, train_iter, test_iter, 50, trainer, mx.cpu(), 1, log=lambda *a: None)
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    assert 's a batch: about' in err and 'for 4 batches' in err
    assert 'epoch 1: batch 4/4 (100%)' in err
