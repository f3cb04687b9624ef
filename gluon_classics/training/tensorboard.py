"""Each epoch's record as TensorBoard scalars (``train --tensorboard DIR``), through
tensorboardX (the ``tensorboard`` extra): a ``train_ch5`` callback, so the loop stays as it is.
"""
from ..utils.extras import require
from ..utils.outputs import check_output_dir

__all__ = ['TensorBoardLogger', 'SCALARS']

# the record's key -> the scalar's tag; the learning rate is the trainer's
SCALARS = {'loss': 'train/loss', 'train_acc': 'train/accuracy', 'test_acc': 'test/accuracy',
           'examples_per_sec': 'train/examples_per_sec'}
LR_TAG = 'train/learning_rate'


class TensorBoardLogger:
    """``cb(record, trainer)`` for ``train_ch5``/``fit``: the record's loss, train and test
    accuracy and examples/s, and the learning rate, at step = epoch, in an event file in
    ``logdir`` (``tensorboard --logdir DIR`` shows them).

    Give it before a schedule's callback (``fit`` puts the schedule last) and the rate is the
    one the epoch trained at. In a parameter-server job only rank 0 writes: every worker's
    record is the job's. A resumed run adds its epochs in a new event file beside the first.
    Use as a context manager, or call :meth:`close`.

    Raises
    ------
    MissingExtra
        tensorboardX is not installed.
    OutputError
        ``logdir`` cannot take files (checked here, before training).
    """

    def __init__(self, logdir, what=None):
        (self._tbx,) = require('tensorboard', what or 'TensorBoardLogger')
        check_output_dir(logdir, what=what)
        self.logdir, self._writer = logdir, None

    def __call__(self, record, trainer):
        # a job's KVStore knows this worker's rank; before the first step, and alone, rank 0
        if getattr(getattr(trainer, '_kvstore', None), 'rank', 0) != 0:
            return False
        if self._writer is None:  # the event file appears with the first epoch
            self._writer = self._tbx.SummaryWriter(self.logdir)
        step = record['epoch']
        for key, tag in SCALARS.items():
            self._writer.add_scalar(tag, record[key], step)
        self._writer.add_scalar(LR_TAG, trainer.learning_rate, step)
        self._writer.flush()  # each epoch on disk as it ends, as the checkpoint is
        return False

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
