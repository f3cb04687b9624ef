"""Our own CPU operators (``conv_pool.cc``), compiled on first use and loaded into MXNet.

MXNet 1.9 loads operator libraries built against its extension API
(``lib_api.h``, shipped in the wheel). The library is compiled once per
machine with the C++ compiler found (``$CXX``, else ``g++``) for this CPU's
instruction set and kept in ``$GLUON_CLASSICS_CACHE`` (default
``~/.cache/gluon_classics``) under a name derived from everything that goes
into it. Without a compiler, or with ``GLUON_CLASSICS_KERNELS=0``, nothing is
built and training uses MXNet's operators (the same function, slower):
:func:`status` says which and why.
"""
import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile

import mxnet as mx

__all__ = ['load', 'status', 'describe', 'find_compiler', 'SOURCE', 'OPERATORS', 'TILE',
           'MAX_KERNEL', 'NO_COMPILER']

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conv_pool.cc')
# what SOURCE registers: the first block's (1-channel images), later blocks' (maps)
OPERATORS = {name: f'gluon_classics_{name}' for name in ('conv_pool', 'conv_pool_maps')}
TILE, MAX_KERNEL = 32, 11  # its kCols and kMaxK: pool sizes must divide TILE
NO_COMPILER = 'off: no C++ compiler (install g++ or set CXX)'  # a status doctor hints on
# -march=native: the vector width of this CPU (the source picks its tiles by it);
# -fno-trapping-math: no FP exceptions are used, so GCC may turn the activation's
# selects into blends on AVX2 (without it, that loop stays scalar there).
_FLAGS = ['-O3', '-march=native', '-fno-trapping-math', '-fopenmp', '-shared', '-fPIC',
          '-std=c++17']
_state = {}  # once per process: MXNet cannot unload a library


def _cache_dir():
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.environ.get('GLUON_CLASSICS_CACHE') or os.path.join(root, 'gluon_classics')


def _library_path(compiler, mx_dir):
    from ..utils.devices import cpu_info
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


def _plan():
    """(compiler, MXNet's folder, library path), or (None, None, the status saying why not)."""
    if os.environ.get('GLUON_CLASSICS_KERNELS', '1') == '0':
        return None, None, 'off (GLUON_CLASSICS_KERNELS=0)'
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


def _load():
    compiler, mx_dir, path_or_why = _plan()
    if compiler is None:
        return None, path_or_why
    path = path_or_why
    try:
        if not os.path.exists(path):
            _build(compiler, mx_dir, path)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f'off: {str(e).splitlines()[0]}'
    from mxnet.base import _LIB, c_str, check_call, mx_uint
    try:
        check_call(_LIB.MXLoadLib(c_str(path), mx_uint(0)))
        for name in OPERATORS.values():
            _register(name)
    except mx.base.MXNetError as e:
        return None, f'off: MXNet cannot load {path} ({str(e).strip().splitlines()[0]}); ' \
                     f'remove it to rebuild'
    return path, f'on ({path})'


def _register(name):
    """``mx.nd.<name>`` and ``mx.sym.<name>`` for an operator a library added.

    ``mx.library.load`` would regenerate the Python function of every one of
    MXNet's ~950 operators (0.7 s, in the first epoch's time); this makes ours.
    """
    from mxnet.base import _LIB, OpHandle, c_str, check_call
    from mxnet.ndarray.register import _make_ndarray_function
    from mxnet.symbol.register import _make_symbol_function
    handle = OpHandle()
    check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(handle)))
    for package, make in ((mx.ndarray, _make_ndarray_function),
                          (mx.symbol, _make_symbol_function)):
        function = make(handle, name, name)
        function.__module__ = f'{package.__name__}.op'
        setattr(package.op, name, function)  # where MXNet's own operators live
        setattr(package, name, function)


def load():
    """Whether our operators are loaded into MXNet (compiling them the first time)."""
    if not _state:
        _state['path'], _state['status'] = _load()
    return _state['path'] is not None


def status():
    """One line: whether our operators are in use, and from which file or why not."""
    load()
    return _state['status']


def describe():
    """Like :func:`status`, without compiling or loading anything (for ``doctor``)."""
    if _state:
        return _state['status']
    compiler, _, path_or_why = _plan()
    if compiler is None:
        return path_or_why
    path = path_or_why
    if os.path.exists(path):
        return f'on ({path})'
    return f'on, compiled by {compiler} on first use into {path}'
