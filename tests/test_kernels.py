"""Our CPU kernels' build: compiled once into the cache, reused, and when they
cannot be had, training says why and uses MXNet's operators.

Each case runs in a fresh process: MXNet loads a library once per process.
"""
import os
import subprocess
import sys

import pytest

from gluon_classics.accel import build, kernels

# Where there is no compiler the tests check the fallback instead (never skipped).
HAVE_COMPILER = build.find_compiler() is not None

# what the child prints: the status lines, then the first two ops of LeNet's training graph
CHILD = '''
import mxnet as mx
from gluon_classics import lenet
from gluon_classics.accel import build, kernels
from gluon_classics.accel import objective as fast_objective
net = lenet()
net.initialize()
net(mx.nd.zeros((2, 1, 28, 28)))
print(kernels.describe())
convolution = mx.nd.Convolution
objective = fast_objective(net, [mx.cpu()])
print(kernels.describe())
print(' '.join(op['op'] for op in objective.graph()._ops[:2]))
loss, _ = objective(mx.nd.ones((4, 1, 28, 28)), mx.nd.array([0, 1, 2, 3]))
print(round(float(loss.asscalar()), 3) > 0)
print(mx.nd.Convolution is convolution)  # MXNet's own operators are left as they were
'''


def _child(tmp_path, **env):
    full = dict(os.environ, GLUON_CLASSICS_CACHE=str(tmp_path / 'cache'), **env)
    done = subprocess.run([sys.executable, '-c', CHILD], env=full, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *lines, untouched = done.stdout.splitlines()
    assert untouched == 'True'
    return lines


def test_built_once_into_the_cache_then_reused(tmp_path):
    before, status, op, trained = _child(tmp_path)
    if not HAVE_COMPILER:
        assert before == status == 'off: no C++ compiler (install g++ or set CXX)'
        assert op == 'conv pool' and trained == 'True'
        return
    assert before.startswith('on, compiled by ') and trained == 'True'
    assert op == 'conv_pool conv_pool_maps'
    built = [f for f in os.listdir(tmp_path / 'cache') if f.endswith('.so')]
    assert len(built) == 1 and status == f"on ({tmp_path / 'cache' / built[0]})"
    mtime = os.path.getmtime(tmp_path / 'cache' / built[0])
    again = _child(tmp_path)
    assert again[0] == again[1] == status and again[2] == 'conv_pool conv_pool_maps'
    assert os.path.getmtime(tmp_path / 'cache' / built[0]) == mtime
    assert os.listdir(tmp_path / 'cache') == built  # no temporary files left


@pytest.mark.parametrize('env, says', [
    (dict(GLUON_CLASSICS_ACCEL='graph'), None),
    (dict(CXX='no-such-compiler'), 'off: no C++ compiler (install g++ or set CXX)'),
], ids=['switched off', 'no compiler'])
def test_without_our_kernels_mxnets_operators_train(tmp_path, env, says):
    before, status, op, trained = _child(tmp_path, **env)
    if says is not None:  # switched off: never compiled, never loaded, so nothing to report
        assert before == status == says
    assert op == 'conv pool' and trained == 'True'
    assert not (tmp_path / 'cache').exists()


def _failing_compiler(tmp_path):
    compiler = tmp_path / 'fails'
    compiler.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo fails 1.0; exit 0; fi\n'
                        'echo "fails: error: out of luck" >&2; exit 1\n')
    compiler.chmod(0o755)
    return compiler


def test_a_failing_compiler_is_reported_and_leaves_nothing(tmp_path):
    compiler = _failing_compiler(tmp_path)
    _, status, op, trained = _child(tmp_path, CXX=str(compiler))
    assert status == f'off: {compiler} failed: fails: error: out of luck'
    assert op == 'conv pool' and trained == 'True'
    assert os.listdir(tmp_path / 'cache') == []


def test_a_link_where_the_library_goes_is_left_alone(tmp_path, monkeypatch):
    compiler = _failing_compiler(tmp_path)  # its output would never be loaded: the link stops it
    monkeypatch.setenv('GLUON_CLASSICS_CACHE', str(tmp_path / 'cache'))
    mx_dir = os.path.dirname(os.path.abspath(build.mx.__file__))
    path = build._library_path(str(compiler), mx_dir)
    os.makedirs(os.path.dirname(path))
    target = tmp_path / 'elsewhere.so'
    target.write_bytes(b'not a library')
    os.symlink(target, path)
    _, status, op, _ = _child(tmp_path, CXX=str(compiler))
    assert status == f'off: {path} is not a regular file (a link?); remove it to rebuild'
    assert op == 'conv pool' and os.path.islink(path) and target.read_bytes() == b'not a library'


def test_in_this_process_the_kernels_are_on_where_a_compiler_is():
    """With g++ LeNet trains on our kernel (the tests above check the other
    cases in their own processes)."""
    assert kernels.load() == HAVE_COMPILER, kernels.status()
    assert kernels.status() == kernels.describe()


def test_a_corrupt_library_in_the_cache_is_reported_and_kept(tmp_path, monkeypatch):
    compiler = _failing_compiler(tmp_path)  # never called: the file is there
    monkeypatch.setenv('GLUON_CLASSICS_CACHE', str(tmp_path / 'cache'))
    mx_dir = os.path.dirname(os.path.abspath(build.mx.__file__))
    path = build._library_path(str(compiler), mx_dir)
    os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as f:
        f.write(b'\x7fELF truncated')
    _, status, op, trained = _child(tmp_path, CXX=str(compiler))
    assert status.startswith(f'off: MXNet cannot load {path} (')
    assert status.endswith('); remove it to rebuild')
    assert op == 'conv pool' and trained == 'True'
    with open(path, 'rb') as f:
        assert f.read() == b'\x7fELF truncated'
