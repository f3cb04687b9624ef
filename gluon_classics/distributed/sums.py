"""The epoch's numbers summed over the workers of a parameter-server job.

Each worker trains on its own shard: the epoch's loss, correct count and
examples are the sums over all of them, through one KVStore key set up when
the worker joins (:func:`~gluon_classics.distributed.connect`).
"""
import mxnet as mx

__all__ = ['sum_over_workers', 'init_sums']

# KVStore key of the epoch's [loss sum, correct, examples]; the Trainer's
# parameters use the keys 0 .. num_params - 1.
_METRICS_KEY, _NUM_METRICS = 1 << 30, 3


def init_sums(kvstore):
    """Set up the key of the sums on a joined distributed KVStore (once, when joining)."""
    # float64: a sum of 60,000 losses keeps its last digits.
    kvstore.init(_METRICS_KEY, mx.nd.zeros((_NUM_METRICS,), dtype='float64'))


def sum_over_workers(values, parallel):
    """Sum the epoch's three numbers over the workers of a synchronous job.

    Every worker must call it the same number of times. Outside a job, and
    under ``dist_async`` (where the servers would apply the optimizer to the
    numbers), ``values`` come back unchanged.

    Parameters
    ----------
    values : sequence of 3 floats
    parallel : ParallelContext

    Returns
    -------
    list of float
    """
    if not parallel.type.startswith('dist') or 'async' in parallel.type:
        return list(values)
    arr = mx.nd.array(values, dtype='float64')
    parallel.kvstore.pushpull(_METRICS_KEY, arr, out=arr)
    return arr.asnumpy().tolist()
