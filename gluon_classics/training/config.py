"""A run's settings, resolved and checked once where training starts, then passed down.

``train_ch5`` and ``fit`` build one :class:`RunConfig` in their first lines
(:func:`run_config`); the loop, the compiled objective and the accelerator
read it and resolve nothing again.
"""
import os
from dataclasses import dataclass
from typing import Any, Optional

from ..accel import check_dtype
from ..choices import ACCEL_ENV, ACCEL_MODES
from ..distributed import connect, worker_batch_size
from ..devices import resolve_ctx

__all__ = ['RunConfig', 'run_config', 'resolve_accel']


@dataclass(frozen=True)
class RunConfig:
    """What the loop below ``train_ch5`` and ``fit`` reads, checked.

    Attributes
    ----------
    ctxs : tuple of Context
        The devices; each batch is split over them.
    dtype : str
        The training graph's compute type, 'float32' or 'bfloat16'.
    accel : str
        The fast path's mode, 'on', 'graph' or 'off' (docs/fast-path.md).
    hybridize : bool
        Whether the objective runs as a static graph.
    seed : int or None
        Seeds each epoch's shuffling and dropout.
    batch_size : int or None
        The batch of one step over all workers; ``worker_batch_size`` is this
        process's share (the same outside a parameter-server job).
    data_dir : str or None
        Where the data was read from.
    parallel : ParallelContext
        This process's place in a job (:func:`~gluon_classics.distributed.connect`).
    """
    ctxs: tuple
    dtype: str = 'float32'
    accel: str = 'on'
    hybridize: bool = True
    seed: Optional[int] = None
    batch_size: Optional[int] = None
    worker_batch_size: Optional[int] = None
    data_dir: Optional[str] = None
    parallel: Any = None


def resolve_accel(accel=None):
    """The fast path's mode: ``accel``, else ``$GLUON_CLASSICS_ACCEL``, else 'on'."""
    accel = accel or os.environ.get(ACCEL_ENV) or 'on'
    if accel not in ACCEL_MODES:
        raise ValueError(f'unknown fast-path mode {accel!r} (accel= or ${ACCEL_ENV}): choose '
                         f'one of {", ".join(ACCEL_MODES)}')
    return accel


def run_config(net, ctx=None, *, dtype='float32', accel=None, hybridize=True, seed=None,
               batch_size=None, data_dir=None, kvstore=None, log=None):
    """The :class:`RunConfig` for training ``net``, every setting resolved and checked.

    ``ctx``: a Context or a list (None: :func:`~gluon_classics.try_gpu`);
    ``kvstore``: what :func:`~gluon_classics.distributed.connect` takes (a
    ``ParallelContext`` comes back as is). ``dtype`` is checked against ``net``
    and the CPU (``log`` hears where bfloat16 measured slower); a bad value is
    one ``ValueError``.
    """
    ctxs = tuple(resolve_ctx(ctx))
    accel = resolve_accel(accel)
    check_dtype(net, ctxs, dtype, hybridize, log=log)
    parallel = connect(kvstore, list(ctxs))
    return RunConfig(ctxs=ctxs, dtype=dtype, accel=accel, hybridize=hybridize, seed=seed,
                     batch_size=batch_size,
                     worker_batch_size=batch_size and worker_batch_size(batch_size, parallel),
                     data_dir=data_dir, parallel=parallel)
