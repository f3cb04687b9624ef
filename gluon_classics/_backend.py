"""Import MXNet, or fail with one line that says what to install.

MXNet 1.9.1 is the last 1.x release; it dies deep inside its own import with
``np.bool`` under numpy >= 1.24, and ``mxnet-cu112`` dies with a dlopen error
where no CUDA 11 libraries are found. Both are turned into one clear line here.

A CUDA build whose libraries are missing from the loader's path gets them from
NVIDIA's ``nvidia-*-cu11`` wheels (``requirements-cu112.txt``) first, so no
``LD_LIBRARY_PATH`` is needed; libraries the system provides win.

AMX for MXNet's oneDNN is decided here, before MXNet's first oneDNN primitive
(``amx.py``).
"""
import importlib.util
import os
import re
import sys

from . import amx
from .utils.cuda import needed_libraries, preload

__all__ = ['mx', 'BackendError', 'PRELOADED', 'error_reason']

# Paths of the CUDA libraries loaded from the nvidia-* wheels, for `gluon-classics doctor`.
PRELOADED = []

CPU_FIX = ('pip install mxnet==1.9.1 numpy==1.23.5 (CPU) '
           'or pip install -r requirements-cu112.txt (CUDA 11.2)')


class BackendError(ImportError):
    """MXNet cannot be used in this environment."""


def _numpy_too_new(version):
    major, minor = (int(p) for p in version.split('.')[:2])
    return (major, minor) >= (1, 24)


def _import_mxnet():
    if sys.version_info[:2] >= (3, 12):  # before numpy, which would only say it is too new
        raise BackendError(
            f'gluon_classics: Python {sys.version_info[0]}.{sys.version_info[1]} is too new: '
            f'mxnet 1.9.1 needs numpy<1.24, which has no build for Python 3.12+; use Python '
            f'3.11 (docs/install.md says how to get it)')
    import numpy
    if _numpy_too_new(numpy.__version__):
        raise BackendError(
            f'gluon_classics: numpy {numpy.__version__} is too new for mxnet 1.9.1 '
            f'(it needs numpy<1.24): pip install numpy==1.23.5')
    # Without OMP_NUM_THREADS, MXNet on x86 gives its OpenMP operators half the
    # logical cores (src/engine/openmp.cc assumes hyper-threads): one thread on
    # a 2-core machine, where docs/speed.md's figures were measured with 2. So unless
    # the user chose (OMP_NUM_THREADS or MXNET_OMP_MAX_THREADS), MXNet is
    # imported with all cores; it reads the variable during its import, and the
    # variable is taken out again: child processes and the launcher see only
    # the user's own setting.
    chosen = {'OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS'} & set(os.environ)
    for name in sorted(chosen):  # MXNet aborts the process (in C++) on one it cannot read
        value = os.environ[name]
        if value.strip() and not re.fullmatch(r'\s*\d+\s*', value):
            raise BackendError(f'gluon_classics: {name}={value!r} is not a whole number and '
                               f'MXNet would abort on it: set a thread count '
                               f'({name}={os.cpu_count() or 1}) or unset it')
    if not chosen:
        os.environ['OMP_NUM_THREADS'] = str(os.cpu_count() or 1)
    try:
        raised = amx.before_import()  # the max ISA oneDNN reads at its first primitive, or None
    except ValueError as err:  # GLUON_CLASSICS_AMX is not a switch
        raise BackendError(str(err)) from None
    try:
        mxnet = _load_mxnet()
        amx.latch(mxnet, raised)  # oneDNN keeps the ISA before the variable leaves
    finally:
        if raised:  # never left for child processes, which ask for the permission themselves
            os.environ.pop(raised, None)
        if not chosen:
            del os.environ['OMP_NUM_THREADS']
    return mxnet


def _load_mxnet():
    try:
        import mxnet
    except ModuleNotFoundError as err:
        if err.name != 'mxnet':
            raise
        raise BackendError(f'gluon_classics: MXNet is not installed: {CPU_FIX}') from None
    except OSError as err:
        # mxnet-cu112 without the CUDA 11 runtime: "libcudart.so.11.0: cannot open ..."
        try:
            if not _preload_cuda_wheels():
                raise  # nothing to load from the wheels: report the original error
            import mxnet
        except OSError as err:
            raise _missing_library(err) from None
    return mxnet


def _libmxnet():
    """Path of the installed MXNet's ``libmxnet.so`` (not loaded), or None."""
    spec = importlib.util.find_spec('mxnet')
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, 'libmxnet.so')
        if os.path.isfile(path):
            return path
    return None


def _preload_cuda_wheels():
    """Load a CUDA build's libraries from the nvidia-* wheels; False if there is nothing to do."""
    library = _libmxnet()
    if library is None or not any(n.startswith('libcudart.so') for n in needed_libraries(library)):
        return False
    PRELOADED[:] = preload(library)
    return bool(PRELOADED)


def _missing_library(err):
    missing = str(err).split(':')[0].strip()
    return BackendError(
        f'gluon_classics: mxnet could not load {missing} (mxnet-cu112 needs the CUDA 11 '
        f'runtime, cuDNN 8, NCCL 2 and the libraries requirements-cu112.txt pins: '
        f'pip install -r requirements-cu112.txt, or use the CPU build: pip install mxnet==1.9.1)')


def error_reason(err):
    """The telling line of an error message; MXNet's start with a traceback header."""
    lines = [line.strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line and not line.startswith(
        ('Traceback', 'File ', '[bt]', 'Stack trace'))]
    reason = lines[0] if lines else type(err).__name__
    return re.sub(r'^(MXNetError: )?(\[[\d:]+\] \S+:\d+: )?', '', reason)


mx = _import_mxnet()
