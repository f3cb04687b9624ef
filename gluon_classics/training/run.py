"""What ``fit`` adds to the chapter's loop: resuming, checkpoints and a parameter-server job.

``train_ch5(..., start_epoch=, history=, checkpoint=, config=, parallel=)``
takes these as keywords; the loop itself only asks a :class:`RunState` what
to do at the start and at the end of an epoch.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

from ..distributed import ParallelContext
from .checkpoint import save_checkpoint

__all__ = ['RunState']


def _silent(*args, **kwargs):
    pass


@dataclass
class RunState:
    """The run around the loop.

    Attributes
    ----------
    start_epoch : int
        Epochs already done (when resuming from a checkpoint).
    history : list of dict
        The history of those epochs, continued.
    checkpoint : str, optional
        Written atomically after every epoch, after the callbacks (a schedule's
        new rate is in it) and before the epoch's line: a printed epoch is saved.
    config : dict, optional
        Stored in the checkpoint: what :func:`~gluon_classics.fit` needs to
        finish the run as started.
    parallel : ParallelContext, optional
        This worker's place in a parameter-server job
        (:func:`~gluon_classics.distributed.connect`): the epoch's numbers are
        summed over the workers, and only rank 0 logs and writes.
    """
    start_epoch: int = 0
    history: list = field(default_factory=list)
    checkpoint: Optional[str] = None
    config: Optional[dict] = None
    parallel: Any = None

    def __post_init__(self):
        self.history = list(self.history or [])
        self.parallel = self.parallel or ParallelContext()

    def speakers(self, log, progress):
        """``log`` and ``progress`` for this process: rank 0 speaks and writes for all."""
        if self.parallel.is_chief:
            return log, progress
        self.checkpoint = None
        return _silent, False

    def end_epoch(self, net, trainer, record, seed):
        """Checkpoint the finished epoch (where asked), then add it to the history."""
        if self.checkpoint:
            save_checkpoint(self.checkpoint, net, trainer, record['epoch'],
                            self.history + [record], seed, self.config)
        self.history.append(record)
