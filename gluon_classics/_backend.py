"""Import MXNet, or fail with one line that says what to install.

MXNet 1.9.1 is the last 1.x release; it dies deep inside its own import with
``np.bool`` under numpy >= 1.24, and ``mxnet-cu112`` dies with a dlopen error
where no CUDA 11 libraries are found. Both are turned into one clear line here.
"""
import os

__all__ = ['mx', 'BackendError']

CPU_FIX = ('pip install mxnet==1.9.1 numpy==1.23.5 (CPU) '
           'or pip install -r requirements-cu112.txt (CUDA 11.2)')


class BackendError(ImportError):
    """MXNet cannot be used in this environment."""


def _numpy_too_new(version):
    major, minor = (int(p) for p in version.split('.')[:2])
    return (major, minor) >= (1, 24)


def _import_mxnet():
    import numpy
    if _numpy_too_new(numpy.__version__):
        raise BackendError(
            f'gluon_classics: numpy {numpy.__version__} is too new for mxnet 1.9.1 '
            f'(it needs numpy<1.24): pip install numpy==1.23.5')
    # Without OMP_NUM_THREADS, MXNet on x86 gives its OpenMP operators half the
    # logical cores (src/engine/openmp.cc assumes hyper-threads): one thread on
    # a 2-core machine, where README's figures were measured with 2. So unless
    # the user chose (OMP_NUM_THREADS or MXNET_OMP_MAX_THREADS), MXNet is
    # imported with all cores; it reads the variable during its import, and the
    # variable is taken out again: child processes and the launcher see only
    # the user's own setting.
    chosen = {'OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS'} & set(os.environ)
    if not chosen:
        os.environ['OMP_NUM_THREADS'] = str(os.cpu_count() or 1)
    try:
        import mxnet
    except ModuleNotFoundError as err:
        if err.name != 'mxnet':
            raise
        raise BackendError(f'gluon_classics: MXNet is not installed: {CPU_FIX}') from None
    except OSError as err:
        # mxnet-cu112 without the CUDA 11 runtime: "libcudart.so.11.0: cannot open ..."
        missing = str(err).split(':')[0].strip()
        raise BackendError(
            f'gluon_classics: mxnet could not load {missing} (mxnet-cu112 needs the CUDA 11.2 '
            f'runtime, cuDNN 8 and NCCL 2: install them and set LD_LIBRARY_PATH as README '
            f'"GPU install" says, or use the CPU build: pip install mxnet==1.9.1)') from None
    finally:
        if not chosen:
            del os.environ['OMP_NUM_THREADS']
    return mxnet


mx = _import_mxnet()
