"""Contexts the d2l way: the GPU when there is one, else the CPU."""
import mxnet as mx

__all__ = ['try_gpu', 'try_all_gpus', 'num_gpus', 'parse_ctx', 'ctx_list', 'resolve_ctx',
           'loader_ctx']


def num_gpus():
    """Number of GPUs MXNet can use (0 with the CPU build)."""
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:  # the CPU build raises instead of answering 0
        return 0


def try_gpu(i=0):
    """Return ``mx.gpu(i)`` if it exists, otherwise ``mx.cpu()``."""
    return mx.gpu(i) if num_gpus() >= i + 1 else mx.cpu()


def try_all_gpus():
    """Return all available GPUs, or ``[mx.cpu()]`` if there is none."""
    return [mx.gpu(i) for i in range(num_gpus())] or [mx.cpu()]


def parse_ctx(text):
    """Contexts from a command-line string.

    ``'cpu'`` and ``'gpu'`` give one context (``'gpu'`` is :func:`try_gpu`);
    ``'gpu:0,1'`` and ``'cpu:0,1'`` give a list for data-parallel training.
    """
    kind, _, ids = text.strip().lower().partition(':')
    if kind not in ('cpu', 'gpu') or (ids and not all(i.strip().isdigit() for i in ids.split(','))):
        raise ValueError(f"bad context {text!r}: use cpu, gpu, cpu:0,1 or gpu:0,1")
    if not ids:
        return mx.cpu() if kind == 'cpu' else try_gpu()
    ids = [int(i) for i in ids.split(',')]
    if kind == 'gpu' and max(ids) >= num_gpus():
        raise ValueError(f'context {text!r} asks for GPU {max(ids)} but {num_gpus()} GPU(s) '
                         f'are visible: use --ctx cpu, or install mxnet-cu112 on a GPU machine')
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
