"""Our CPU kernels as training sees them: compiled once into the cache, reused,
and when they cannot be had (no compiler, a failing one, an unusable or unsafe
cache), training says why in one line and uses MXNet's operators.

Each case runs in a fresh process: MXNet loads a library once per process.
The build's own faults (lock, time limits, proof, cleanup) are in
test_kernels_build.py.
"""
import os
import shutil
import stat
import subprocess
import sys

import pytest

from gluon_classics import doctor
from gluon_classics.accel import build, kernels
from helpers import HAVE_COMPILER, no_compiler_status, without_kernels

# Where there is no compiler the tests check the fallback, then skip (or fail where
# GLUON_CLASSICS_REQUIRE names kernels, as in CI).
OFF_LINE = "gluon_classics: LeNet's CPU kernels are {}; MXNet's operators instead " \
           "(the same numbers, slower)"

# what the child prints: the status lines, then the first two ops of LeNet's training graph
CHILD = '''
import mxnet as mx
from gluon_classics import lenet
from gluon_classics.accel import build, kernels
from gluon_classics.training import make_objective
net = lenet()
net.initialize()
net(mx.nd.zeros((2, 1, 28, 28)))
print(kernels.describe())
convolution = mx.nd.Convolution
objective = make_objective(net, [mx.cpu()])
print(kernels.describe())
print(' '.join(op['op'] for op in objective.graph()._ops[:2]))
loss, _ = objective(mx.nd.ones((4, 1, 28, 28)), mx.nd.array([0, 1, 2, 3]))
print(round(float(loss.asscalar()), 3) > 0)
print(mx.nd.Convolution is convolution)  # MXNet's own operators are left as they were
'''


def _child(tmp_path, **env):
    """(the child's lines, its stderr lines) with the cache in tmp_path/cache."""
    full = dict(os.environ, GLUON_CLASSICS_CACHE=str(tmp_path / 'cache'))
    full.update(env)
    done = subprocess.run([sys.executable, '-c', CHILD], env=full, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *lines, untouched = done.stdout.splitlines()
    assert untouched == 'True'
    return lines, done.stderr.splitlines()


def _plan_path(tmp_path, monkeypatch, compiler):
    """Where the library of ``compiler`` goes in tmp_path/cache (the folder made 0700)."""
    monkeypatch.setenv('GLUON_CLASSICS_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('CXX', str(compiler))
    path = build.plan()[2]
    os.makedirs(os.path.dirname(path), mode=0o700)
    return path


def test_built_once_into_the_cache_then_reused(tmp_path):
    (before, status, op, trained), stderr = _child(tmp_path)
    cache = tmp_path / 'cache'
    if not HAVE_COMPILER:
        assert before == status == no_compiler_status()
        assert op == 'conv pool' and trained == 'True'
        assert stderr == [OFF_LINE.format(status)]
        without_kernels()
    assert before.startswith('on, compiled by ') and trained == 'True'
    assert op == 'conv_pool conv_pool_maps'
    built = [f for f in os.listdir(cache) if f.endswith('.so')]
    assert len(built) == 1 and status == f"on ({cache / built[0]})"
    assert stderr == [f"gluon_classics: building LeNet's CPU kernels once (about 10 s; "
                      f"cached in {cache})"]
    library = cache / built[0]
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700  # made by us, for us
    assert stat.S_IMODE(os.stat(library).st_mode) == 0o644
    log = library.with_suffix('.log')
    assert sorted(os.listdir(cache)) == sorted([built[0], log.name, 'conv_pool.lock'])
    assert log.read_text().startswith('$ ') and '# exit status 0' in log.read_text()
    inode = os.stat(library).st_ino
    again, stderr = _child(tmp_path)
    assert again[0] == again[1] == status and again[2] == 'conv_pool conv_pool_maps'
    assert stderr == [] and os.stat(library).st_ino == inode  # not built again


@pytest.mark.parametrize('env, says', [
    (dict(GLUON_CLASSICS_ACCEL='graph'), None),
    (dict(CXX='no-such-compiler'), "off: no C++ compiler: CXX='no-such-compiler' is not found "
                                   "(install it, or unset CXX to use g++)"),
], ids=['switched off', 'no compiler'])
def test_without_our_kernels_mxnets_operators_train(tmp_path, env, says):
    (before, status, op, trained), stderr = _child(tmp_path, **env)
    if says is not None:  # switched off: never compiled, never loaded, so nothing to report
        assert before == status == says
    assert op == 'conv pool' and trained == 'True'
    assert stderr == ([] if says is None else [OFF_LINE.format(says)])
    assert not (tmp_path / 'cache').exists()


def _failing_compiler(tmp_path):
    compiler = tmp_path / 'fails'
    compiler.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo fails 1.0; exit 0; fi\n'
                        'echo "In file included from somewhere:"\n'
                        'echo "fails: error: out of luck" >&2; exit 1\n')
    compiler.chmod(0o755)
    return compiler


def test_a_failing_compiler_is_reported_and_leaves_nothing(tmp_path):
    compiler = _failing_compiler(tmp_path)
    _, status, op, trained = _child(tmp_path, CXX=str(compiler))[0]
    log, = (tmp_path / 'cache').glob('conv_pool-*.log')
    assert status == f'off: {compiler} failed (see {log}): fails: error: out of luck'
    assert op == 'conv pool' and trained == 'True'
    assert 'In file included from somewhere:' in log.read_text()  # the whole output is kept
    assert sorted(os.listdir(tmp_path / 'cache')) == sorted([log.name, 'conv_pool.lock'])


def test_a_link_where_the_library_goes_is_left_alone(tmp_path, monkeypatch):
    compiler = _failing_compiler(tmp_path)  # its output would never be loaded: the link stops it
    path = _plan_path(tmp_path, monkeypatch, compiler)
    target = tmp_path / 'elsewhere.so'
    target.write_bytes(b'not a library')
    os.symlink(target, path)
    (_, status, op, _), _ = _child(tmp_path, CXX=str(compiler))
    assert status == f'off: {path} is not a regular file (a link?); remove it to rebuild'
    assert op == 'conv pool' and os.path.islink(path) and target.read_bytes() == b'not a library'


def test_in_this_process_the_kernels_are_on_where_a_compiler_is():
    """With g++ LeNet trains on our kernels, loaded from the cached library that doctor names
    without loading anything (the tests above check the other cases in their own processes)."""
    if not HAVE_COMPILER:
        assert not kernels.load() and kernels.status() == no_compiler_status()
        without_kernels()
    assert kernels.load(), kernels.status()
    path, why = build.library()  # cached: nothing is built again
    assert path is not None and os.path.isfile(path), why
    assert kernels.status() == f'on ({path})' == build.describe()
    import mxnet as mx
    assert all(callable(getattr(mx.nd, op)) for op in kernels.OPERATORS.values())


def test_a_corrupt_library_in_the_cache_is_reported_and_kept(tmp_path, monkeypatch):
    """A file older versions left (they moved what the compiler made into place
    unproven): MXNet's reason, not its traceback's first line."""
    compiler = _failing_compiler(tmp_path)  # never called: the file is there
    path = _plan_path(tmp_path, monkeypatch, compiler)
    with open(path, 'wb') as f:
        f.write(b'\x7fELF truncated')
    (_, status, op, trained), stderr = _child(tmp_path, CXX=str(compiler))
    assert status == f'off: MXNet cannot load {path} ({path}: file too short); ' \
                     f'remove it to rebuild'
    assert stderr == [OFF_LINE.format(status)]
    assert op == 'conv pool' and trained == 'True'
    with open(path, 'rb') as f:
        assert f.read() == b'\x7fELF truncated'


def _planted(tmp_path, marker):
    """A library whose load-time constructor writes ``marker`` (a plain file without g++)."""
    planted = tmp_path / 'planted.so'
    if HAVE_COMPILER:
        source = '#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) ' \
                 f'static void planted(void) {{ close(creat("{marker}", 0644)); }}\n'
        subprocess.run(['g++', '-shared', '-fPIC', '-x', 'c++', '-', '-o', str(planted)],
                       input=source, text=True, check=True, timeout=120)
    else:
        planted.write_bytes(b'planted')
    return planted


@pytest.mark.parametrize('unsafe', ['folder 0777', 'library 0666', 'folder of another user'])
def test_a_library_in_an_unsafe_place_is_never_loaded(tmp_path, monkeypatch, unsafe):
    """What others can write there is code that would run in this process."""
    compiler, marker = _failing_compiler(tmp_path), tmp_path / 'constructor-ran'
    path = _plan_path(tmp_path, monkeypatch, compiler)
    shutil.copy(_planted(tmp_path, marker), path)
    os.chmod(path, 0o644)
    before = open(path, 'rb').read()
    cache = os.path.dirname(path)
    if unsafe == 'folder 0777':
        os.chmod(cache, 0o777)
        says = f'off: {cache} is writable by others (mode 0777), so a library planted there ' \
               f'would run in this process; chmod go-w {cache}'
    elif unsafe == 'library 0666':
        os.chmod(path, 0o666)
        says = f'off: {path} is writable by others (mode 0666), so a library planted there ' \
               f'would run in this process; remove it to rebuild'
    elif os.getuid() == 0:  # root can give the folder away
        os.chown(cache, 12345, -1)
        says = f'off: {cache} belongs to uid 12345, not to you (uid 0), and a library from it ' \
               f'would run in this process; {build._OWN}'
    else:  # others can only point at a folder someone else owns
        monkeypatch.setenv('GLUON_CLASSICS_CACHE', '/')
        cache, says = '/', f'off: / belongs to uid 0, not to you (uid {os.getuid()}), and a ' \
                           f'library from it would run in this process; {build._OWN}'
    (before_status, status, op, trained), stderr = _child(
        tmp_path, CXX=str(compiler), GLUON_CLASSICS_CACHE=str(cache))
    assert before_status == status == says and stderr == [OFF_LINE.format(says)]
    assert op == 'conv pool' and trained == 'True'
    assert not marker.exists() and open(path, 'rb').read() == before
    if not HAVE_COMPILER:  # the planted file was no library: loading it would not have run it
        without_kernels()


def test_an_unusable_cache_folder_is_said_by_doctor_and_once_by_training(tmp_path, monkeypatch):
    """A read-only HOME: doctor says off and why, not 'compiled on first use';
    training says it once and trains on MXNet's operators."""
    (tmp_path / 'file').write_text('not a folder')  # unwritable even for root
    home = tmp_path / 'file' / 'home'
    folder = home / '.cache' / 'gluon_classics'
    says = f'off: the cache folder {folder} cannot be made ({tmp_path / "file"} is not a ' \
           f'writable folder); set GLUON_CLASSICS_CACHE to a writable folder of your own'
    if not HAVE_COMPILER:  # the compiler is looked for first
        says = no_compiler_status()
    (before, status, op, trained), stderr = _child(
        tmp_path, HOME=str(home), GLUON_CLASSICS_CACHE='', XDG_CACHE_HOME='')
    assert before == status == says and op == 'conv pool' and trained == 'True'
    assert stderr == [OFF_LINE.format(says)]
    monkeypatch.setattr(kernels, '_state', {})  # as in a process that has not loaded them
    for name in ('GLUON_CLASSICS_CACHE', 'XDG_CACHE_HOME'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', str(home))
    facts = doctor.report(str(tmp_path))
    assert facts['cpu_kernels'] == says
    assert f"own CPU kernels (LeNet's conv blocks): {says}" in doctor.format_report(facts)
    if not HAVE_COMPILER:
        without_kernels()
