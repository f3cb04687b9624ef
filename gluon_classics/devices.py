"""Contexts the d2l way: a GPU when MXNet can run on one, else the CPU.

``mx.context.num_gpus()`` counts the GPUs the driver shows, not the ones this
build of MXNet has kernels for: mxnet-cu112 1.9.1 carries machine code for
sm_50 to sm_86 and no PTX, so on a Hopper GPU (sm_90) its first operator fails
with "no kernel image is available". Each GPU is therefore probed once per
process (its architecture against the build's kernel images, then one tiny
operator) before it is handed out.
"""
import functools
import os
import platform
import warnings

from ._backend import error_reason  # first: MXNet through its checks
import mxnet as mx

from .errors import Fixable
from .utils import cuda
from .utils.cpuinfo import first_cpu

__all__ = ['try_gpu', 'try_all_gpus', 'num_gpus', 'parse_ctx', 'ctx_list', 'resolve_ctx',
           'loader_ctx', 'net_ctx', 'gpu_verdict', 'cpu_info', 'cpu_vendor', 'DeviceError']


class DeviceError(Fixable, ValueError):
    """A GPU was asked for by number that is missing or that MXNet cannot run on."""


@functools.lru_cache(maxsize=None)
def _cuda_build():
    return mx.runtime.Features().is_enabled('CUDA')


def num_gpus():
    """Number of GPUs the driver shows MXNet (0 with the CPU build, usable or not)."""
    if not _cuda_build():
        return 0
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:  # a CUDA build without a driver or a GPU
        return 0


@functools.lru_cache(maxsize=None)
def _gpus():
    """``{index: info}`` from the driver (see :func:`cuda.gpus`)."""
    return {g['index']: g for g in cuda.gpus()}


@functools.lru_cache(maxsize=None)
def _kernel_targets():
    """The targets (``sm_86``, ``compute_86``...) of the loaded libmxnet.so's kernel images."""
    return frozenset(cuda.kernel_images(mx.base._LIB._name)[1])


def _run_tiny_op(i):
    """One elementwise operator on GPU ``i``, read back: raises MXNetError if it cannot run."""
    (mx.nd.ones((2,), ctx=mx.gpu(i)) * 2).asnumpy()


def _describe(i):
    info = _gpus().get(i)
    if info is None:
        return f'GPU {i}'
    major, minor = info['capability']
    return f"GPU {i} ({info['name']}, compute capability {major}.{minor})"


def _judge(i):
    """``(usable, reason)`` for GPU ``i``: the build must have kernels for it, and they must run."""
    info = _gpus().get(i)
    targets = _kernel_targets()
    if info is not None and targets and not cuda.runs_on(targets, info['capability']):
        major, minor = info['capability']
        ptx = [t for t in cuda.sorted_targets(targets) if t.startswith('compute_')]
        built = [t for t in cuda.sorted_targets(targets) if t.startswith('sm_')]
        return False, (f"this MXNet build has no kernels for sm_{major}{minor} (it carries "
                       f"{', '.join(built)} and {', '.join(ptx) or 'no PTX'})")
    try:
        _run_tiny_op(i)
    except mx.base.MXNetError as err:
        return False, error_reason(err)
    return True, None


_VERDICTS = {}  # GPU index -> (usable, reason), once per process


def gpu_verdict(i):
    """Whether MXNet can run on GPU ``i``, probed once per process.

    Returns
    -------
    (bool, str or None)
        ``(True, None)``, or ``(False, reason)``; ``(False, 'no GPU i')`` when
        there is no such GPU (or this is the CPU build).
    """
    if i >= num_gpus():
        return False, f'no GPU {i}'
    if i not in _VERDICTS:
        _VERDICTS[i] = _judge(i)
    return _VERDICTS[i]


_WARNED = set()  # GPU indices already named in a warning


def _warn(ids, fallback):
    new = [i for i in ids if i not in _WARNED]
    if new:
        _WARNED.update(new)
        warnings.warn('; '.join(f'{_describe(i)} is not usable by MXNet: {gpu_verdict(i)[1]}'
                                for i in new) + f'; {fallback}', stacklevel=3)


def try_gpu(i=0):
    """Return ``mx.gpu(i)`` if MXNet can run on it, otherwise ``mx.cpu()``.

    A GPU that is there but unusable gets one warning line (once per process)
    naming it, its compute capability and the reason; no GPU, or the CPU build
    of MXNet, is silent.
    """
    if i < num_gpus() and gpu_verdict(i)[0]:
        return mx.gpu(i)
    if i < num_gpus():
        _warn([i], 'using the CPU')
    return mx.cpu()


def try_all_gpus():
    """Return every GPU MXNet can run on, or ``[mx.cpu()]`` if there is none."""
    ids = range(num_gpus())
    good = [i for i in ids if gpu_verdict(i)[0]]
    _warn([i for i in ids if i not in good], 'leaving it out' if good else 'using the CPU')
    return [mx.gpu(i) for i in good] or [mx.cpu()]


def parse_ctx(text):
    """Contexts from a command-line string.

    ``'cpu'`` and ``'gpu'`` give one context (``'gpu'`` is ``'gpu:0'``);
    ``'gpu:0,1'`` and ``'cpu:0,1'`` give a list for data-parallel training. A
    GPU named must be one MXNet can run on (``'gpu'`` on a machine without
    one is refused like ``'gpu:0'``, not run on the CPU).
    """
    kind, _, ids = text.strip().lower().partition(':')
    if kind not in ('cpu', 'gpu') or (ids and not all(i.strip().isdigit() for i in ids.split(','))):
        raise ValueError(f"bad context {text!r}: use cpu, gpu, cpu:0,1 or gpu:0,1")
    if not ids:
        if kind == 'cpu':
            return mx.cpu()
        ids = '0'
    ids = [int(i) for i in ids.split(',')]
    if len(set(ids)) < len(ids):
        raise ValueError(f'context {text!r} names a device twice: list each once, '
                         f'e.g. {kind}:{",".join(map(str, sorted(set(ids))))}')
    if kind == 'gpu' and max(ids) >= num_gpus():
        raise DeviceError(f'context {text!r} asks for GPU {max(ids)} but {num_gpus()} GPU(s) '
                         f'are visible: use [[ctx=cpu]], or install mxnet-cu112 on a GPU machine')
    for i in ids if kind == 'gpu' else ():
        usable, reason = gpu_verdict(i)
        if not usable:
            raise DeviceError(f'context {text!r}: {_describe(i)} is not usable by MXNet: '
                             f'{reason}: use [[ctx=cpu]] (docs/gpu.md)')
    make = mx.gpu if kind == 'gpu' else mx.cpu
    return [make(i) for i in ids] if len(ids) > 1 else make(ids[0])


def ctx_list(ctx):
    """``ctx`` as a list: ``[ctx]`` for one Context, a new list for a list or tuple."""
    return list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]


def resolve_ctx(ctx=None):
    """The contexts an entry point (``fit``, the CLI) runs on, as a list.

    ``[try_gpu()]`` when ``ctx`` is None; the library functions below the
    entry points take what they are given.
    """
    return ctx_list(ctx) if ctx else [try_gpu()]


def loader_ctx(ctxs):
    """Where a loader puts its batches for ``ctxs``: the one context, or the CPU
    when ``train_ch5`` splits each batch over several."""
    return ctxs[0] if len(ctxs) == 1 else mx.cpu()


def net_ctx(net):
    """The context of ``net``'s parameters (its first one, for a net on several)."""
    return next(iter(net.collect_params().values())).list_ctx()[0]


def cpu_info(cpuinfo='/proc/cpuinfo'):
    """Model name, logical CPUs and the set of ISA flags of the first CPU in ``cpuinfo``."""
    fields = first_cpu(cpuinfo)
    model = fields.get('model name') or platform.processor() or platform.machine()
    return model, os.cpu_count(), set(fields.get('flags', '').split())


def cpu_vendor(cpuinfo='/proc/cpuinfo'):
    """The first CPU's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``), or None."""
    return first_cpu(cpuinfo).get('vendor_id')
