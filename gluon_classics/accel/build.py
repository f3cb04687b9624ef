"""The JIT build of our CPU operators (``conv_pool.cc``): compiler, cache, compile.

MXNet 1.9 loads operator libraries built against its extension API
(``lib_api.h``, shipped in the wheel). The library is compiled once per
machine with the C++ compiler found (``$CXX``, else ``g++``) for this CPU's
instruction set and kept in ``$GLUON_CLASSICS_CACHE`` (default
``~/.cache/gluon_classics``) under a name derived from everything that goes
into it.
"""
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile

import mxnet as mx

from ..utils.devices import cpu_info

__all__ = ['SOURCE', 'NO_COMPILER', 'find_compiler', 'plan', 'library', 'describe']

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conv_pool.cc')
NO_COMPILER = 'off: no C++ compiler (install g++ or set CXX)'  # a status doctor hints on
# -march=native: the vector width of this CPU (the source picks its tiles by it);
# -fno-trapping-math: no FP exceptions are used, so GCC may turn the activation's
# selects into blends on AVX2 (without it, that loop stays scalar there).
_FLAGS = ['-O3', '-march=native', '-fno-trapping-math', '-fopenmp', '-shared', '-fPIC',
          '-std=c++17']


def _cache_dir():
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.environ.get('GLUON_CLASSICS_CACHE') or os.path.join(root, 'gluon_classics')


def _library_path(compiler, mx_dir):
    digest = hashlib.sha256()
    for path in (SOURCE, os.path.join(mx_dir, 'include', 'mxnet', 'lib_api.h'),
                 os.path.join(mx_dir, 'src', 'lib_api.cc')):
        with open(path, 'rb') as f:
            digest.update(f.read())
    version = subprocess.run([compiler, '--version'], capture_output=True, text=True,
                             check=True).stdout
    model, _, flags = cpu_info()  # -march=native: one build per instruction set
    for part in (version, ' '.join(_FLAGS), model, ' '.join(sorted(flags)), mx.__version__,
                 platform.machine()):
        digest.update(part.encode())
    return os.path.join(_cache_dir(), f'conv_pool-{digest.hexdigest()[:16]}.so')


def _build(compiler, mx_dir, path):
    """Compile into a temporary file beside ``path``, then move it into place."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=folder)
    os.close(fd)
    try:
        cmd = [compiler, *_FLAGS, '-I', os.path.join(mx_dir, 'include'),
               '-I', os.path.join(mx_dir, 'include', 'mxnet'), SOURCE,
               os.path.join(mx_dir, 'src', 'lib_api.cc'), '-o', tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode:
            lines = done.stderr.strip().splitlines() or ['no message']
            first_error = next((line for line in lines if 'error' in line), lines[-1])
            raise OSError(f'{compiler} failed: {first_error}')
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic: a concurrent build replaces it with the same bytes
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def find_compiler():
    """The C++ compiler that builds our kernels (``$CXX``, else ``g++``), or None."""
    return shutil.which(os.environ.get('CXX') or 'g++')


def plan():
    """(compiler, MXNet's folder, library path), or (None, None, the status saying why not)."""
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return None, None, 'off: this MXNet has no oneDNN (the graph they serve does not apply)'
    compiler = find_compiler()
    if compiler is None:
        return None, None, NO_COMPILER
    mx_dir = os.path.dirname(os.path.abspath(mx.__file__))
    if not os.path.isfile(os.path.join(mx_dir, 'include', 'mxnet', 'lib_api.h')):
        return None, None, f'off: this MXNet ({mx_dir}) ships no lib_api.h'
    try:
        path = _library_path(compiler, mx_dir)
    except (OSError, subprocess.SubprocessError) as e:
        return None, None, f'off: {compiler} --version failed ({e})'
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        return None, None, f'off: {path} is not a regular file (a link?); remove it to rebuild'
    return compiler, mx_dir, path


def library():
    """(path of the built library, None) where it is built or cached, else (None, why not)."""
    compiler, mx_dir, path_or_why = plan()
    if compiler is None:
        return None, path_or_why
    path = path_or_why
    try:
        if not os.path.exists(path):
            _build(compiler, mx_dir, path)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f'off: {str(e).splitlines()[0]}'
    return path, None


def describe():
    """The state without compiling anything (for ``doctor``): 'on (...)' or 'off: why'."""
    compiler, _, path_or_why = plan()
    if compiler is None:
        return path_or_why
    path = path_or_why
    if os.path.exists(path):
        return f'on ({path})'
    return f'on, compiled by {compiler} on first use into {path}'
