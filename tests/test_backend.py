"""Importing gluon_classics where MXNet cannot work fails with one line saying what to install."""
import os
import shutil
import struct
import subprocess
import sys
import textwrap

import pytest

from gluon_classics._backend import _numpy_too_new
from helpers import elf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_with_fakes(tmp_path, fakes):
    """Run ``from gluon_classics import lenet`` (the first use of a public name imports
    MXNet, PEP 562) with fake modules shadowing the real ones."""
    for name, source in fakes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    return subprocess.run([sys.executable, '-c', 'from gluon_classics import lenet'], env=env,
                          capture_output=True, text=True, timeout=120)


def _last_line(result):
    assert result.returncode != 0
    return result.stderr.strip().splitlines()[-1]


def test_numpy_too_new(tmp_path):
    result = _import_with_fakes(tmp_path, {'numpy': "__version__ = '1.26.4'"})
    line = _last_line(result)
    assert 'numpy 1.26.4 is too new' in line and 'pip install numpy==1.23.5' in line


def test_mxnet_missing(tmp_path):
    result = _import_with_fakes(tmp_path, {'mxnet': "raise ModuleNotFoundError(\"No module named 'mxnet'\", name='mxnet')"})
    line = _last_line(result)
    assert 'MXNet is not installed' in line and 'pip install mxnet==1.9.1' in line


def test_cuda_build_without_cuda_libraries(tmp_path):
    # what mxnet-cu112 raises from its libmxnet.so dlopen on a machine without CUDA 11
    result = _import_with_fakes(tmp_path, {'mxnet': """
        raise OSError('libcudart.so.11.0: cannot open shared object file: No such file or directory')
    """})
    line = _last_line(result)
    assert 'could not load libcudart.so.11.0' in line
    assert 'pip install -r requirements-cu112.txt' in line and 'pip install mxnet==1.9.1' in line


def test_cuda_build_loads_its_libraries_from_the_nvidia_wheels(tmp_path):
    """A CUDA build whose libcudart is not on the loader's path gets it from nvidia-* wheels."""
    import mxnet
    site = tmp_path / 'site'
    (site / 'mxnet').mkdir(parents=True)
    # libmxnet.so of a CUDA build, as far as the preload reads it: its DT_NEEDED list
    elf(site / 'mxnet' / 'libmxnet.so', {  # a minimal ELF with the sections asked for
        '.dynstr': b'\0libcudart.so.11.0\0', '.dynamic': struct.pack('<qQqQ', 1, 1, 0, 0)})
    wheel = site / 'nvidia' / 'cuda_runtime' / 'lib'
    wheel.mkdir(parents=True)
    # a real shared library stands in for the CUDA runtime
    shutil.copy(os.path.join(os.path.dirname(mxnet.__file__), 'libgfortran.so.3'),
                wheel / 'libcudart.so.11.0')
    # this mxnet fails like mxnet-cu112 until the runtime is loaded, then hands over to the
    # real (CPU) mxnet, so that the rest of gluon_classics imports
    (site / 'mxnet' / '__init__.py').write_text(textwrap.dedent(f"""
        import sys
        if {str(wheel)!r} not in open('/proc/self/maps').read():
            raise OSError('libcudart.so.11.0: cannot open shared object file: No such file')
        del sys.modules['mxnet']
        sys.path.remove({str(site)!r})
        import mxnet
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), ROOT]))
    result = subprocess.run([sys.executable, '-c', 'import gluon_classics._backend as b; '
                             'print(b.PRELOADED, b.mx.__version__)'],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"[{str(wheel / 'libcudart.so.11.0')!r}]", mxnet.__version__]


@pytest.mark.parametrize('version,too_new', [('1.23.5', False), ('1.24.0', True),
                                             ('2.0.1', True), ('1.9.3', False)])
def test_numpy_version_rule(version, too_new):
    assert _numpy_too_new(version) is too_new


@pytest.mark.parametrize('value', [None, '1', '3'])
def test_import_leaves_omp_num_threads_as_the_user_set_it(value):
    # MXNet reads it during its import (with all cores when unset: see _backend);
    # afterwards the environment, which child processes inherit, is the user's.
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS')}
    env.update(PYTHONPATH=ROOT, **({'OMP_NUM_THREADS': value} if value else {}))
    script = ('import os, gluon_classics, mxnet; assert "gluon_classics._backend" in '
              '__import__("sys").modules; print(os.environ.get("OMP_NUM_THREADS"))')
    run = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(value)
