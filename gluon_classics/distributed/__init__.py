"""Data parallelism past one process: MXNet's parameter server, worker side and launcher.

Within one process ``train_ch5`` already splits each batch over a list of
contexts; the ``gluon.Trainer``'s KVStore sums the gradients. Across
processes (``--kvstore dist_sync``) every worker runs the same training
command, started by :func:`launch` (``gluon-classics launch``):

- :mod:`.job`: a worker's place in the job (:func:`connect`,
  :class:`ParallelContext`) and its shard of the data;
- :mod:`.sums`: the epoch's numbers summed over the workers;
- :mod:`.launcher`: 1 scheduler, S servers and W workers, here or over ssh.
"""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from .job import (ParallelContext, StackedShards, checkpoint_path, connect, default_kvstore,
                  is_distributed, shard_for_worker, worker_batch_size)
from .launcher import launch, read_hostfile
from .sums import sum_over_workers

__all__ = ['ParallelContext', 'connect', 'default_kvstore', 'is_distributed',
           'worker_batch_size', 'shard_for_worker', 'StackedShards', 'checkpoint_path',
           'sum_over_workers', 'launch', 'read_hostfile']
