"""One writer per output path: a second run is refused with one line; what a killed writer
left (its temporary, its lock file) is removed by the next write."""
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from gluon_classics.cli import main
from gluon_classics.utils import outputs
from gluon_classics.utils.outputs import (OutputError, atomic_write, claim_output,
                                          release_outputs, write_text)

OUTPUTS_PY = outputs.__file__


# outputs.py loaded alone, with the package's errors.py (no MXNet: it starts fast);
# the path of outputs.py is sys.argv[1]
LOAD_OUTPUTS = '''
import importlib.util, os, sys, time, types
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
for name in ('gluon_classics', 'gluon_classics.utils'):  # the package, without MXNet
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = []
load('gluon_classics.errors', os.path.join(os.path.dirname(sys.argv[1]), '..', 'errors.py'))
outputs = load('gluon_classics.utils.outputs', sys.argv[1])
'''


def _other_process(body):
    """A process running ``body`` with outputs.py loaded alone (no MXNet: it starts fast);
    returns once it printed 'ready'."""
    code = LOAD_OUTPUTS + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, '-c', code, OUTPUTS_PY], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == 'ready'
    return proc


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _release():
    yield
    release_outputs()


def test_a_second_writer_is_refused_and_nothing_is_lost(tmp_path):
    path = tmp_path / 'lenet.params'
    path.write_text('first run')
    other = _other_process(f'''
        outputs.claim_output({str(path)!r}, '--save')
        print('ready', flush=True)
        time.sleep(600)
    ''')
    try:
        message = f'another run is writing --save {path} (pid {other.pid}): wait for it to ' \
                  f'finish, or choose another path'
        with pytest.raises(OutputError) as err:
            claim_output(str(path), '--save')
        assert str(err.value) == message
        with pytest.raises(OutputError, match=f'another run is writing {path} '):
            write_text(str(path), 'second run')
        assert path.read_text() == 'first run'
        assert sorted(os.listdir(tmp_path)) == ['.lenet.params.lock', 'lenet.params']
    finally:
        _kill(other)  # kill -9: the kernel drops its lock; its lock file stays
    assert claim_output(str(path), '--save') == str(path)
    write_text(str(path), 'second run')
    assert path.read_text() == 'second run'
    assert claim_output(str(path)) == str(path)  # this process holds it already: a no-op
    release_outputs()
    assert os.listdir(tmp_path) == ['lenet.params']


def test_train_refuses_a_save_path_another_run_holds(tmp_path, capsys):
    save = tmp_path / 'lenet.params'
    other = _other_process(f'''
        outputs.claim_output({str(save)!r}, '--save')
        print('ready', flush=True)
        time.sleep(600)
    ''')
    try:  # refused before any data is read: the data folder does not even exist
        status = main(['train', 'lenet', '--data-dir', str(tmp_path / 'none'), '--save',
                       str(save), '--epochs', '1'])
    finally:
        _kill(other)
    err = capsys.readouterr().err
    assert status == 2
    assert err == f'gluon-classics: error: another run is writing --save {save} (pid ' \
                  f'{other.pid}): wait for it to finish, or choose another path\n'
    assert not save.exists()


def test_a_killed_writers_temporary_and_lock_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / 'metrics.json'
    path.write_text('old')
    other = _other_process(f'''
        def write(tmp):
            open(tmp, 'w').write('half')
            print('ready', flush=True)
            time.sleep(600)
        outputs.atomic_write({str(path)!r}, write)
    ''')
    _kill(other)
    left = set(os.listdir(tmp_path))
    tmp, = left - {'.metrics.json.lock', 'metrics.json'}
    assert len(left) == 3 and path.read_text() == 'old'
    assert re.fullmatch(r'\.metrics\.json\.\w{8}\.tmp', tmp)
    unrelated = ['.metrics.json.backup.tmp', '.other.json.abcd1234.tmp', 'metrics.json.tmp']
    for name in unrelated:
        (tmp_path / name).write_text('not ours')
    write_text(str(path), 'new')
    assert path.read_text() == 'new'
    assert sorted(os.listdir(tmp_path)) == sorted(unrelated + ['metrics.json'])


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / 'curve.png'
    other = _other_process(f'''
        def write(tmp):
            open(tmp, 'w').write('png')
            print('ready', flush=True)
            time.sleep(600)
        outputs.atomic_write({str(path)!r}, write)
    ''')
    try:
        tmp, = [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
        with pytest.raises(OutputError, match=f'pid {other.pid}'):
            atomic_write(str(path), lambda t: open(t, 'w').write('mine'))
        assert (tmp_path / tmp).read_text() == 'png'
    finally:
        _kill(other)


def test_a_forked_child_leaves_its_parents_claim_alone(tmp_path):
    path = tmp_path / 'lenet.params'
    claim_output(str(path), '--save')
    child = os.fork()
    if child == 0:  # what a DataLoader worker's exit runs, had it atexit handlers
        release_outputs()
        os._exit(0)
    os.waitpid(child, 0)
    assert (tmp_path / '.lenet.params.lock').exists()
    other = subprocess.run([sys.executable, '-c', LOAD_OUTPUTS + textwrap.dedent(f'''
        outputs.write_text({str(path)!r}, 'other')
    '''), OUTPUTS_PY], capture_output=True, text=True, timeout=60)
    assert other.returncode != 0
    assert f'another run is writing {path} (pid {os.getpid()})' in other.stderr
