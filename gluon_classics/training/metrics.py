"""The epoch's loss and correct count, summed on the device as the batches come.

The chapter reads ``l.asscalar()`` after every batch, which makes Python wait
for the engine each time; here the sums stay on the device, are read every
tenth of an epoch (for the progress line and the divergence check) and at
the end, where a parameter-server job adds up its workers' sums.
"""
import math

from mxnet import nd

from ..distributed import sum_over_workers
from ..errors import Fixable
from .arrays import legacy

__all__ = ['Accumulator', 'TrainingDiverged']


class TrainingDiverged(Fixable, ArithmeticError):
    """The training loss became NaN or infinite."""


class Accumulator:
    """Sums of the batches' (summed loss, correct count) per context, and the examples."""

    def __init__(self, ctxs):
        self.loss = [nd.zeros((1,), ctx=c) for c in ctxs]
        self.correct = [nd.zeros((1,), ctx=c) for c in ctxs]
        self.pending = [[] for _ in ctxs]  # outputs since the last read
        self.n = 0

    def add(self, outs, n):
        """One batch: ``(loss sum, correct count)`` per context, ``n`` examples in all."""
        for k, (l, c) in enumerate(outs):  # float32 sums, whatever the net's dtype (float64),
            # of shape (1,) (numpy mode's sums have shape ())
            self.pending[k].append((legacy(l).astype('float32', copy=False).reshape((1,)),
                                    legacy(c).astype('float32', copy=False).reshape((1,))))
        self.n += n

    def running_loss(self, epoch, learning_rate):
        """The mean loss so far (a sync point); raises TrainingDiverged when not finite."""
        for k, outs in enumerate(self.pending):  # one add_n per read, not two adds per batch
            if outs:
                self.loss[k] = nd.add_n(self.loss[k], *(l for l, _ in outs))
                self.correct[k] = nd.add_n(self.correct[k], *(c for _, c in outs))
                outs.clear()
        value = sum(s.asscalar() for s in self.loss) / max(self.n, 1)
        if not math.isfinite(value):
            lr = learning_rate
            raise TrainingDiverged(f'loss became {value} in epoch {epoch}: the learning rate '
                                   f'{lr:g} is too high, lower it (e.g. [[lr={lr / 3:.2g}]])')
        return value

    def result(self, epoch, learning_rate, parallel):
        """The epoch's mean loss, train accuracy and examples, over every worker of a job."""
        if self.n == 0:
            raise ValueError('train_ch5: the training iterator yielded no examples')
        self.running_loss(epoch, learning_rate)  # the divergence check, on this worker's batches
        # In a parameter-server job each worker saw its own shard: the epoch is all of them.
        loss, correct, n = sum_over_workers([sum(s.asscalar() for s in self.loss),
                                             sum(c.asscalar() for c in self.correct), self.n],
                                            parallel)
        return loss / n, correct / n, n
