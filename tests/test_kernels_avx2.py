"""Our operators' AVX2 code paths, checked on any x86-64 CPU that runs them.

The source picks its tiles by the vector width it is compiled for, and CI's
CPUs have AVX-512: a native build there never compiles the AVX2 paths (they
once regressed 10x unseen). GLUON_CLASSICS_MARCH=haswell builds the AVX2
variant under a key of its own; test_onednn.py's operator tests (ours against
MXNet's Convolution/Activation/Pooling, values and gradients) then run on it.
"""
import os
import platform
import subprocess
import sys

import pytest

from gluon_classics.devices import cpu_info
from helpers import HAVE_COMPILER, without_kernels

HASWELL = {'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe'}  # what -march=haswell may use
RUNS_HASWELL = platform.machine() == 'x86_64' and HASWELL <= set(cpu_info()[2])
# the tests of test_onednn.py that compare our operators with MXNet's (about 30, ~5 s)
OPERATOR_TESTS = 'same_loss or other_shapes or ties or gradients_follow'


def _onednn_tests(tmp_path, **env):
    env = dict(os.environ, GLUON_CLASSICS_CACHE=str(tmp_path / 'cache'), **env)
    env.pop('GLUON_CLASSICS_REQUIRE', None)  # what is missing is said here, once
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                           os.path.join(root, 'tests', 'test_onednn.py'), '-k', OPERATOR_TESTS],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    passed = done.stdout.strip().splitlines()[-1]
    assert ' passed' in passed and int(passed.split()[0]) >= 25, passed
    return env


def test_our_operators_built_for_avx2_match_mxnets(tmp_path):
    if not HAVE_COMPILER:  # the same tests on MXNet's operators; nothing built
        _onednn_tests(tmp_path)
        assert not (tmp_path / 'cache').exists()
        without_kernels()
    if not RUNS_HASWELL:
        pytest.skip(f'this CPU ({platform.machine()}) cannot run -march=haswell code')
    env = _onednn_tests(tmp_path, GLUON_CLASSICS_MARCH='haswell')
    library, = (tmp_path / 'cache').glob('conv_pool-*.so')  # built once, for all of them
    log = library.with_suffix('.log').read_text()
    assert ' -march=haswell ' in log and '-march=native' not in log
    used = subprocess.run([sys.executable, '-c', 'from gluon_classics.accel import kernels; '
                                                 'print(kernels.status())'],
                          env=env, capture_output=True, text=True, timeout=120)
    assert used.stdout.strip() == f'on ({library})', used.stderr
