"""Data parallelism past one process: a training process's place in a parameter-server job.

Within one process ``train_ch5`` already splits each batch over a list of
contexts; the ``gluon.Trainer``'s KVStore sums the gradients (``'device'`` on
GPUs, ``'local'`` on CPUs: :func:`default_kvstore`).

Across processes (``--kvstore dist_sync``, processes started by
:mod:`gluon_classics.distributed.launcher`) every worker runs the same training command.
:func:`connect` joins the job once and returns a :class:`ParallelContext`
(the KVStore, the rank, the number of workers) that is passed on explicitly.
Each worker reads its own equal shard of the training set with
``1 / num_workers`` of the batch, so one step of the job sees the batch of one
step of a single process and the chapter's learning rate carries over. The
servers sum the workers' gradients and every worker applies the same update
to the same weights (``update_on_kvstore=False``), so the workers stay
identical. Only rank 0 prints and writes files; the epoch's loss and train
accuracy are summed over the workers, and test accuracy is the full test set.
"""
import os
from dataclasses import dataclass
from typing import Any

import mxnet as mx

from ..errors import SettingError
from .sums import init_sums

__all__ = ['ParallelContext', 'default_kvstore', 'is_distributed', 'connect',
           'worker_batch_size', 'shard_for_worker', 'StackedShards', 'checkpoint_path']



@dataclass(frozen=True)
class ParallelContext:
    """Where this process stands: alone, or one worker of a parameter-server job.

    Attributes
    ----------
    kvstore : str or KVStore
        What ``gluon.Trainer`` sums gradients with: a name (``'local'``,
        ``'device'``) in one process, the joined distributed KVStore in a job.
    rank : int
        This worker's rank; rank 0 prints and writes files for all.
    num_workers : int
    """
    kvstore: Any = 'local'
    rank: int = 0
    num_workers: int = 1

    @property
    def type(self):
        """The KVStore's type, e.g. ``'local'`` or ``'dist_sync'``."""
        return self.kvstore if isinstance(self.kvstore, str) else self.kvstore.type

    @property
    def is_chief(self):
        """True in the process that prints and writes files."""
        return self.rank == 0


def is_distributed(kvstore):
    """True for a ``'dist_*'`` KVStore name, a distributed KVStore or its context."""
    kind = kvstore if isinstance(kvstore, str) else getattr(kvstore, 'type', '')
    return kind.startswith('dist')


def default_kvstore(ctx):
    """The KVStore a list of contexts trains with when the user chose none.

    ``'device'`` (sum on the GPUs) for GPU contexts, ``'local'`` for CPU ones;
    in a process started by a launcher (``DMLC_ROLE=worker``),
    ``'dist_device_sync'`` or ``'dist_sync'``.
    """
    ctxs = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    gpu = any(c.device_type == 'gpu' for c in ctxs)
    if os.environ.get('DMLC_ROLE') == 'worker':
        return 'dist_device_sync' if gpu else 'dist_sync'
    return 'device' if gpu else 'local'


# The KVStore names a run takes: on one machine, and in a launched job.
KVSTORES = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async')


def connect(kvstore=None, ctx=None):
    """This process's :class:`ParallelContext`; a ``'dist_*'`` name joins the job.

    Joining blocks until the scheduler has seen every server and worker.
    ps-lite allows one distributed KVStore per process: connect once and pass
    the context on (``fit(kvstore=context)``).

    Parameters
    ----------
    kvstore : str, KVStore or ParallelContext, optional
        Default :func:`default_kvstore` of ``ctx``. A context comes back as is.
    ctx : Context or list of Context, optional
        Only for the default; ``mx.cpu()`` when None.

    Raises
    ------
    ValueError
        A name not in :data:`KVSTORES`, or a ``'dist_*'`` KVStore in a process no
        launcher started.
    """
    if isinstance(kvstore, ParallelContext):
        return kvstore
    if kvstore is None:
        kvstore = default_kvstore(ctx or mx.cpu())
    if isinstance(kvstore, str) and kvstore not in KVSTORES:  # else accepted, and ignored
        raise SettingError(f'unknown [[kvstore={kvstore}]]: choose one of {", ".join(KVSTORES)}')
    if not is_distributed(kvstore):
        return ParallelContext(kvstore)
    if isinstance(kvstore, str):
        if os.environ.get('DMLC_ROLE') != 'worker':
            # Without the DMLC_* variables ps-lite aborts the process with a core dump.
            raise SettingError(f'[[kvstore={kvstore}]] needs processes started by a launcher: '
                               f'gluon-classics launch -n 2 -- COMMAND, or '
                               f'gluon_classics.distributed.launch')
        kvstore = mx.kv.create(kvstore)
    kvstore.broadcast = _settled_broadcast(kvstore)
    init_sums(kvstore)
    return ParallelContext(kvstore, kvstore.rank, kvstore.num_workers)


def _settled_broadcast(kv):
    """``kv.broadcast`` that returns once the weights have arrived.

    ``gluon.Trainer.step`` broadcasts rank 0's initial weights (an init and a
    pull per parameter, ``Trainer._init_params``) and at once pushes the
    first gradients, with nothing in between: MXNet 1.9 neither orders the
    pull before those pushes nor offers a hook. A worker that is slower than
    the others can then pull after the servers have summed the first
    gradients, and start from that sum instead of the weights: the workers
    drift apart, more often the busier the machine. Waiting for the pulled
    weights closes that window, at one wait per parameter, once. It wraps the
    method of this one KVStore object, which :func:`connect` owns; MXNet's
    class is left alone.
    """
    broadcast = kv.broadcast

    def settled(key, value, out, priority=0):
        broadcast(key, value, out, priority=priority)
        for arr in out if isinstance(out, (list, tuple)) else [out]:
            arr.wait_to_read()
    return settled


def worker_batch_size(batch_size, parallel):
    """Each worker's share of ``batch_size`` (all of it outside a job)."""
    if not is_distributed(parallel):
        return batch_size
    if batch_size < parallel.num_workers:
        raise ValueError(f'batch size {batch_size} is smaller than the {parallel.num_workers} '
                         f'workers: each needs at least one example per batch')
    return batch_size // parallel.num_workers


def shard_for_worker(train_iter, parallel, seed=0, log=None):
    """This worker's shard of ``train_iter``; the loader itself outside a job.

    Every worker gets the same number of examples, so all take the same
    number of steps: a synchronous job whose workers disagree on that waits
    forever. Up to ``num_workers - 1`` examples (a seeded choice) are left out
    for that. With ``dist_async`` the server applies each worker's batch with
    a fixed ``1 / batch_size``, so a shard is cut to whole batches.

    Parameters
    ----------
    train_iter : ArrayLoader
        The whole training set, batched with :func:`worker_batch_size`.
    parallel : ParallelContext
    seed : int
        Picks the examples left out.
    log : callable, optional
        Told the job's shape, on rank 0.
    """
    if not is_distributed(parallel):
        return train_iter
    workers, me = parallel.num_workers, parallel.rank
    per_worker = train_iter.num_examples // workers
    if 'async' in parallel.type:
        per_worker -= per_worker % train_iter.batch_size
    if per_worker < 1:
        raise ValueError(f'{train_iter.num_examples} training examples are too few for '
                         f'{workers} workers with batch size {train_iter.batch_size}')
    if per_worker * workers < train_iter.num_examples:
        train_iter = train_iter.subset(per_worker * workers, seed=seed)
    if log is not None and me == 0:
        total = '' if 'async' in parallel.type else f' ({train_iter.batch_size * workers} in all)'
        log(f'{parallel.type}: {workers} workers x {per_worker} examples, batch '
            f'{train_iter.batch_size} per worker{total}')
    return train_iter.shard(workers, me)


class StackedShards:
    """A ``dist_sync`` job's steps seen from one process: every worker's batch, stacked.

    The workers' shards of ``train_iter`` (:func:`shard_for_worker`, rank by
    rank), and at each step their batches concatenated: trained with the
    job's total batch size, one process computes what the job computes, which
    is how the job is checked.
    """

    def __init__(self, train_iter, num_workers, seed=0):
        self.shards = [shard_for_worker(train_iter, ParallelContext('dist_sync', rank, num_workers),
                                        seed=seed) for rank in range(num_workers)]
        self.epoch = 0

    def __len__(self):
        return len(self.shards[0])

    def __iter__(self):
        for shard in self.shards:
            shard.epoch = self.epoch
        self.epoch += 1
        for parts in zip(*self.shards):
            yield (mx.nd.concat(*[X for X, _ in parts], dim=0),
                   mx.nd.concat(*[y for _, y in parts], dim=0))


def checkpoint_path(parallel, checkpoint, resume, log=None):
    """``checkpoint``, or None under ``dist_async``, whose optimizer lives on the servers.

    Raises
    ------
    ValueError
        ``resume`` under ``dist_async``: the trainer's state cannot be loaded.
    """
    if not is_distributed(parallel) or 'async' not in parallel.type:
        return checkpoint
    if resume:
        raise SettingError(f'[[resume]] does not work with {parallel.type}: the optimizer state '
                         f'lives on the servers; resume with dist_sync')
    if checkpoint and log is not None and parallel.is_chief:
        log(f'{parallel.type}: no checkpoint (the optimizer state lives on the servers)')
    return None
