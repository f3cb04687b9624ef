"""The faults of issue 35 (items 1-16): what a new user still met on the command line.

Each test provokes the fault as the issue tried it (``--epochs 1`` and a few hundred
examples where it trains) and checks the one line, its exit status 2 and that it
comes before the work; docs/faults.md lists them.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

from gluon_classics import cli
from gluon_classics.data import DataError, read_idx
from gluon_classics.data.idx import IMAGES_MAGIC, check_idx_file
from gluon_classics.training import load_checkpoint, sizes
from gluon_classics.training.fit import _warn_if_chance
from gluon_classics import devices
from gluon_classics.utils import outputs
from gluon_classics.utils.outputs import OutputError, atomic_write
from helpers import one_line_error, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--epochs', '1', '--num-examples', '500', '--seed', '0']






def _cli(*args, env=None, cwd=None):
    """``gluon-classics ARGS`` in a child process with this checkout's code."""
    env = dict(os.environ, **(env or {}), PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, '-m', 'gluon_classics', *map(str, args)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, fashion_mnist_dir):
    """1-epoch runs of LeNet and the small AlexNet: their --save files and checkpoints."""
    folder = tmp_path_factory.mktemp('runs')
    for model, extra in (('lenet', []), ('alexnet', ['--variant', 'small'])):
        assert cli.main(['train', model, *extra, *TINY, '--save', str(folder / f'{model}.params'),
                         '--data-dir', fashion_mnist_dir]) == 0
    return folder


# ---------------------------------------------------------------- 1: predict --num

def test_predict_refuses_more_images_than_a_grid_or_the_test_set(runs, capsys, tmp_path,
                                                                 fashion_mnist_dir, monkeypatch):
    out = tmp_path / 'grid.png'
    common = ['predict', 'lenet', '--params', runs / 'lenet.params', '--out', out,
              '--data-dir', fashion_mnist_dir]
    drawn = []
    monkeypatch.setattr(cli.commands, 'show_images', lambda *a, **k: drawn.append(a))
    monkeypatch.setattr(cli.commands, '_trained', lambda *a, **k: pytest.fail('data was read'))
    status, out_text, err = run_cli(capsys, *common, '--num', 10000)
    one_line_error(status, err, '--num must be 1 to 256', 'got 10000')
    monkeypatch.undo()
    # a grid limit above the test set: the split's size is the limit named
    monkeypatch.setattr(cli.commands, 'MAX_PREDICT', 20000, raising=False)
    monkeypatch.setattr(cli.commands, 'show_images', lambda *a, **k: drawn.append(a))
    status, _, err = run_cli(capsys, *common, '--num', 10001)
    one_line_error(status, err, '--num 10001 is more than the 10000 test images',
                    'use at most --num 10000')
    assert not drawn and not out.exists()


# ---------------------------------------------------------------- 2: a full disk

def test_a_write_failing_with_enospc_names_the_reason_and_keeps_the_old_file(tmp_path):
    path = tmp_path / 'x.params'
    path.write_text('old')

    def full(tmp):
        with open(tmp, 'w') as f:
            f.write('half')
        raise OSError(errno.ENOSPC)  # as a fake disk would: no strerror of its own
    with pytest.raises(OutputError) as caught:
        atomic_write(str(path), full, '[[save]]')
    assert str(caught.value) == f'could not write save {path}: No space left on device'
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['x.params']


def test_mxnets_failed_write_names_the_os_reason_not_a_traceback(tmp_path, monkeypatch):
    """MXNet's own message is 'Traceback ...: FileStream.Write incomplete': the OS says why."""
    from mxnet.base import MXNetError
    path = tmp_path / 'x.params'
    path.write_text('old')

    def mxnet_save(tmp):
        with open(tmp, 'w') as f:
            f.write('half')
        raise MXNetError('Traceback (most recent call last):\n  File "../3rdparty/dmlc-core/src'
                         '/io/local_filesys.cc", line 38\nMXNetError: Check failed: std: :fwrite'
                         '(ptr, 1, size, fp_) == size: FileStream.Write incomplete')

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(outputs.os, 'fsync', no_space)  # the disk, full at the probe's flush
    with pytest.raises(OutputError) as caught:
        atomic_write(str(path), mxnet_save)
    monkeypatch.undo()
    assert str(caught.value) == f'could not write {path}: No space left on device'
    assert path.read_text() == 'old'
    # a disk that is not full: MXNet's reason, without its traceback header
    with pytest.raises(OutputError) as caught:
        atomic_write(str(path), mxnet_save)
    assert str(caught.value).endswith('FileStream.Write incomplete')
    assert 'Traceback' not in str(caught.value)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 100 KiB tmpfs (root only), unmounted afterwards."""
    folder = tmp_path / 'tiny'
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=100k', 'tmpfs',
                                            str(folder)], capture_output=True).returncode:
        pytest.skip('mounting a tmpfs needs root')
    yield folder
    subprocess.run(['umount', str(folder)], check=True)


def test_a_full_disk_is_one_line_with_the_os_reason(tiny_tmpfs, capsys, fashion_mnist_dir,
                                                    tmp_path):
    save = tiny_tmpfs / 'x.params'
    save.write_text('old')
    status, _, err = run_cli(capsys, 'train', 'lenet', *TINY, '--save', save,
                           '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, f'could not write {save}.ckpt: No space left on device')
    assert save.read_text() == 'old'
    (tiny_tmpfs / 'filler').write_bytes(bytes(90 << 10))  # now the claim itself fails
    status, _, err = run_cli(capsys, 'train', 'lenet', *TINY, '--save', save,
                           '--checkpoint', tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, f'--save {save}: No space left on device')
    assert save.read_text() == 'old'


# ---------------------------------------------------------------- 3, 4: image sizes

@pytest.mark.parametrize('model,args,words', [
    ('lenet', ['--resize', '4'], ['--resize 4 makes 4x4 images', 'use --resize 12 or more']),
    ('lenet', ['--resize', '8'], ['--resize 8 makes 8x8 images', 'use --resize 12 or more']),
    ('lenet', ['--variant', 'gluon', '--resize', '12'], ['--resize 12', '--resize 16 or more']),
    ('lenet', ['--variant', 'lenet5', '--resize', '0'], ['the data set has 28x28 images',
                                                         'use --resize 32 or more']),
    ('alexnet', ['--variant', 'small', '--resize', '8'], ['--resize 8 makes 8x8 images']),
])
def test_a_too_small_resize_is_one_line_for_every_variant(capsys, fashion_mnist_dir, tmp_path,
                                                          model, args, words):
    status, out, err = run_cli(capsys, 'train', model, *args, *TINY, '--checkpoint',
                             tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, 'too small for this network', *words)
    assert out == '' and not (tmp_path / 'c.ckpt').exists()  # before 'training on'


@pytest.mark.parametrize('args,words', [
    (['--resize', '100000'], ['--batch-size 256 1x100000x100000 images (--resize 100000)']),
    (['--resize', '1000'], ['--batch-size 256 1x1000x1000 images (--resize 1000)',
                            'more than the 8 GiB free on this machine']),
])
def test_a_batch_too_big_for_memory_is_refused_with_the_estimate(capsys, fashion_mnist_dir,
                                                                 tmp_path, monkeypatch, args,
                                                                 words):
    monkeypatch.setattr(sizes, 'free_memory', lambda ctx: 8 << 30, raising=False)
    status, out, err = run_cli(capsys, 'train', 'lenet', *args, *TINY, '--checkpoint',
                             tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, 'needs about', 'GiB to train', 'lower --resize or --batch-size',
                    *words)
    assert out == ''


def test_the_memory_estimate_counts_activations_and_parameters():
    from gluon_classics import lenet
    net = lenet()
    one = sizes.training_bytes(net, (1, 28, 28), 1)
    assert sizes.training_bytes(net, (1, 28, 28), 257) - one == 256 * (
        sizes.training_bytes(net, (1, 28, 28), 2) - one)  # linear in the batch
    # 61,706 parameters (the chapter's count) x 4 copies x 4 bytes at least
    assert one > 61706 * 16
    assert sizes.training_bytes(net, (1, 1000, 1000), 256) > 30 << 30  # what OOM-killed 23 GiB


# ---------------------------------------------------------------- 5: options accepted silently

@pytest.mark.parametrize('args,words', [
    (['--num-examples', '0'], ['--num-examples must be at least 1', 'got 0']),
    (['--num-examples', '70000'], ['--num-examples 70000 is more than the',
                                   'training examples']),
    (['--resize', '-1'], ['--resize must be a positive size, or 0']),
    (['--kvstore', 'bogus'], ['unknown --kvstore bogus', 'local, device, dist_sync']),
    (['--batch-size', '1000000000', '--num-examples', '2000'],
     ['--batch-size 1000000000 is larger than the', 'training examples: use at most']),
])
def test_bad_run_options_are_one_line(capsys, fashion_mnist_dir, tmp_path, args, words):
    status, out, err = run_cli(capsys, 'train', 'lenet', '--epochs', '1', *args, '--checkpoint',
                             tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, *words)
    assert out == ''


def test_ctx_gpu_is_gpu_0(capsys, monkeypatch):
    monkeypatch.setattr(devices, 'num_gpus', lambda: 0)
    status, _, err = run_cli(capsys, 'train', 'lenet', '--ctx', 'gpu')
    one_line_error(status, err, "context 'gpu' asks for GPU 0 but 0 GPU(s) are visible",
                    '--ctx cpu')


def test_resize_0_is_the_images_own_size(capsys, fashion_mnist_dir, tmp_path):
    status, _, err = run_cli(capsys, 'train', 'lenet', '--resize', '0', *TINY, '--checkpoint',
                           tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    assert status == 0, err
    assert load_checkpoint(str(tmp_path / 'c.ckpt'))['config']['resize'] is None
    status, out, _ = run_cli(capsys, 'train', '--help')
    assert status == 0 and 'resize images to NxN; 0: their own size' in ' '.join(out.split())


# ---------------------------------------------------------------- 6: OMP_NUM_THREADS

@pytest.mark.parametrize('name,value', [('OMP_NUM_THREADS', 'abc'), ('OMP_NUM_THREADS', '2,1'),
                                        ('MXNET_OMP_MAX_THREADS', 'x')])
def test_a_thread_count_mxnet_would_abort_on_is_one_line(name, value):
    run = _cli('train', 'lenet', '--epochs', '1', env={name: value})
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert run.stderr == (f"gluon-classics: error: {name}={value!r} is not a whole number and "
                          f"MXNet would abort on it: set a thread count ({name}="
                          f"{os.cpu_count()}) or unset it\n")


# ---------------------------------------------------------------- 7: the wrong kind of path

def test_a_file_or_folder_given_for_the_other_is_named_as_such(capsys, monkeypatch, tmp_path):
    afile = tmp_path / 'README.md'
    afile.write_text('not data')
    status, _, err = run_cli(capsys, 'train', 'lenet', '--data-dir', afile)
    one_line_error(status, err, f'--data-dir {afile} is a file, not a folder')
    status, _, err = run_cli(capsys, 'train', 'lenet', '--resume', tmp_path)
    one_line_error(status, err, f'checkpoint {tmp_path} is a folder, not a checkpoint file')
    monkeypatch.setenv('GLUON_CLASSICS_DATA', str(afile))
    status, _, err = run_cli(capsys, 'train', 'lenet', '--checkpoint', tmp_path / 'c.ckpt')
    one_line_error(status, err, f'GLUON_CLASSICS_DATA={afile} is a file, not a folder')


# ---------------------------------------------------------------- 8: advice that can be followed

def test_the_model_advice_can_be_followed(runs, capsys, fashion_mnist_dir, tmp_path):
    ckpt = runs / 'alexnet.params.ckpt'
    status, _, err = run_cli(capsys, 'evaluate', 'lenet', '--params', ckpt)
    one_line_error(status, err, 'holds alexnet --variant small: use alexnet')
    status, out, err = run_cli(capsys, 'evaluate', 'alexnet', '--params', ckpt,
                             '--data-dir', fashion_mnist_dir)  # as told
    assert status == 0 and out.startswith('test acc '), err
    status, _, err = run_cli(capsys, 'train', 'lenet', '--resume', ckpt)
    one_line_error(status, err, "which records 'alexnet': use alexnet to finish that run")
    status, _, err = run_cli(capsys, 'evaluate', 'alexnet', '--params', runs / 'lenet.params',
                           '--data-dir', fashion_mnist_dir)
    one_line_error(status, err, 'cannot be loaded into this AlexNet', 'is missing in file')
    assert 'allow_missing' not in err


# ---------------------------------------------------------------- 9: a finished run resumed

def test_resuming_a_finished_run_trains_nothing(runs, capsys, tmp_path):
    ckpt = tmp_path / 'lenet.ckpt'
    shutil.copy(runs / 'lenet.params.ckpt', ckpt)
    before = load_checkpoint(str(ckpt))
    status, out, err = run_cli(capsys, 'train', 'lenet', '--resume', ckpt,
                             '--save', tmp_path / 'again.params')
    assert status == 0 and err == '', err
    assert f'{ckpt} already holds 1 epoch (asked for 1): nothing to train' in out
    assert 'training on' not in out and 'epoch 1,' not in out
    assert load_checkpoint(str(ckpt))['history'] == before['history']
    assert (tmp_path / 'again.params').stat().st_size > 0  # the outputs, as asked


# ---------------------------------------------------------------- 11, 14: doctor and the data

def test_doctor_says_train_refuses_a_missing_data_dir(tmp_path):
    from gluon_classics import doctor
    missing = tmp_path / 'missing'
    hint, = [h for h in doctor.report(str(missing))['hints'] if h.startswith('Fashion-MNIST')]
    assert hint == (f'Fashion-MNIST: the folder {missing} does not exist, and train refuses a '
                    f'missing --data-dir (a typo is not created): create it to download the '
                    f'files into it, or name the folder that holds them')


def test_doctor_without_data_dir_says_its_folder_is_not_a_data_dir(tmp_path, monkeypatch):
    from gluon_classics import doctor
    monkeypatch.delenv('GLUON_CLASSICS_DATA', raising=False)
    monkeypatch.setenv('MXNET_HOME', str(tmp_path))
    hint, = [h for h in doctor.report()['hints'] if h.startswith('Fashion-MNIST')]
    assert 'they are downloaded there on first use' in hint
    assert hint.endswith('if you train with --data-dir DIR (or GLUON_CLASSICS_DATA), this is '
                         'not that folder: run doctor --data-dir DIR to check it')


def test_readmes_venv_is_ignored():
    run = subprocess.run(['git', 'check-ignore', '-q', '.venv/bin/python'], cwd=ROOT)
    assert run.returncode == 0


# ---------------------------------------------------------------- 12: the default checkpoint

def test_two_runs_without_paths_are_told_they_share_the_default_checkpoint(
        capsys, tmp_path, monkeypatch, fashion_mnist_dir):
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from gluon_classics.utils.outputs import '
         'claim_output; claim_output("runs/lenet-d2l.ckpt"); print("held", flush=True); '
         'sys.stdin.read()'], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert holder.stdout.readline() == 'held\n'
        status, out, err = run_cli(capsys, 'train', 'lenet', *TINY, '--data-dir',
                                 fashion_mnist_dir)
    finally:
        holder.communicate('', timeout=60)
    one_line_error(status, err, f'another run (pid {holder.pid}) is writing the default '
                    f'checkpoint runs/lenet-d2l.ckpt', 'without --checkpoint or --save',
                    'give this run its own with --checkpoint PATH')
    assert out == ''


# ---------------------------------------------------------------- 13: huge IDX dimensions

def test_huge_idx_dimensions_are_counted_in_full(tmp_path):
    path = tmp_path / 'train-images-idx3-ubyte'
    side = 1 << 22  # 2**66 bytes: 0 in int64
    path.write_bytes(IMAGES_MAGIC.to_bytes(4, 'big') + 3 * side.to_bytes(4, 'big') + bytes(10))
    with pytest.raises(DataError) as caught:
        read_idx(str(path), IMAGES_MAGIC)
    said = f'header says {side}x{side}x{side} = {side ** 3} bytes, file has 10'
    assert said in str(caught.value)
    damaged = check_idx_file(str(path), IMAGES_MAGIC)  # doctor's check
    assert f'({16 + side ** 3} bytes), the file has 26 bytes' in damaged



# ---------------------------------------------------------------- 15: help without MXNet

@pytest.mark.parametrize('args', [['--help'], ['--version'], ['train', '--help'],
                                  ['predict', '--help']])
def test_help_and_version_do_not_import_mxnet(args):
    script = ('import sys\nfrom gluon_classics.cli import main\ntry:\n    main(sys.argv[1:])\n'
              'except SystemExit as stop:\n    assert stop.code == 0, stop.code\n'
              'print("mxnet imported:", "mxnet" in sys.modules)')
    run = subprocess.run([sys.executable, '-c', script, *args], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith('mxnet imported: False\n'), run.stdout[-300:]
    assert 'usage: gluon-classics' in run.stdout or 'gluon-classics 0.' in run.stdout


def test_mxnet_imported_after_the_package_still_goes_through_its_checks():
    """d2l's listings: ``import gluon_classics as d2l``, then ``from mxnet import np``."""
    script = ('import sys, gluon_classics\nfrom mxnet import np\n'
              'print("_backend" in dir(gluon_classics), "gluon_classics._backend" in sys.modules)')
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0 and run.stdout == 'True True\n', run.stderr
    # one MXNet, imported once: its submodules bound (a second import of mxnet/__init__.py
    # made a module without them, and try_gpu failed on mx.runtime) and its own spec
    script = ('import gluon_classics, mxnet, sys\nfrom gluon_classics import try_gpu\n'
              'print(sys.modules["mxnet"] is mxnet, mxnet.__spec__.origin == mxnet.__file__, '
              'all(hasattr(mxnet, m) for m in ("runtime", "context", "autograd", "util")), '
              'try_gpu())')
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0 and run.stdout == 'True True True cpu(0)\n', run.stderr
    env['OMP_NUM_THREADS'] = 'abc'  # the check before MXNet: one line, not an abort in C++
    run = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 1, run.returncode
    assert run.stderr.splitlines()[-1].endswith("OMP_NUM_THREADS='abc' is not a whole number "
                                                "and MXNet would abort on it: set a thread "
                                                f"count (OMP_NUM_THREADS={os.cpu_count()}) or "
                                                "unset it")


def test_every_public_name_still_imports():
    import gluon_classics as d2l
    for name in d2l.__all__:
        assert getattr(d2l, name) is not None
    from gluon_classics import BackendError, lenet, mx, train_ch5  # noqa: F401
    assert d2l.train_ch5 is train_ch5 and callable(lenet) and issubclass(BackendError, ImportError)
    assert set(d2l.__all__) <= set(dir(d2l))
    with pytest.raises(AttributeError):
        d2l.no_such_name


# ---------------------------------------------------------------- 16: the chance-level warning

def _history(*epochs):
    return [{'epoch': i + 1, 'loss': loss, 'train_acc': 0.1, 'test_acc': acc}
            for i, (loss, acc) in enumerate(epochs)]


@pytest.mark.parametrize('history,warns', [
    # the chapter's sigmoid LeNet at lr 0.9 after one epoch (d2l's own run: about 2.32, 0.10)
    (_history((2.32, 0.10)), None),
    (_history((2.32, 0.10), (2.10, 0.10)), None),  # its loss falls: it is learning
    (_history((2.31, 0.10), (2.31, 0.10), (2.31, 0.10)), 'its loss has not fallen since epoch 1'),
    (_history((6.34, 0.10)), "its loss 6.34 is far above a uniform guess's 2.30"),
    (_history((2.32, 0.10), (2.0, 0.45)), None),  # learned
])
def test_the_chance_warning_follows_the_evidence(history, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _warn_if_chance(history, 10, 0.9)
    if warns is None:
        assert caught == []
    else:
        message, = [str(w.message) for w in caught]
        assert warns in message and 'the learning rate 0.9 is probably too high' in message


def test_the_chapters_first_epoch_is_not_warned_about(capsys, fashion_mnist_dir, tmp_path):
    status, out, err = run_cli(capsys, 'train', 'lenet', '--epochs', '1', '--num-examples', '2000',
                             '--seed', '0', '--metrics', tmp_path / 'm.json', '--checkpoint',
                             tmp_path / 'c.ckpt', '--data-dir', fashion_mnist_dir)
    assert status == 0
    record, = json.loads((tmp_path / 'm.json').read_text())
    assert record['test_acc'] < 0.15 and record['loss'] < 4.6  # at chance, the loss near ln 10
    assert err == ''
