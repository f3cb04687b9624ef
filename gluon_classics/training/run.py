"""What ``fit`` adds to the chapter's loop: a resumed start and a checkpoint per epoch.

``fit`` passes a :class:`RunState` to :func:`~.loop.train`; the loop only asks
it what to do at the start and at the end of an epoch.
"""
from dataclasses import dataclass, field
from typing import Optional

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
    settings : dict, optional
        Stored in the checkpoint: what :func:`~gluon_classics.fit` needs to
        finish the run as started.
    """
    start_epoch: int = 0
    history: list = field(default_factory=list)
    checkpoint: Optional[str] = None
    settings: Optional[dict] = None

    def __post_init__(self):
        self.history = list(self.history or [])

    def speakers(self, log, progress, parallel):
        """``log`` and ``progress`` for this process: in a parameter-server job
        (``parallel``), rank 0 speaks and writes for all."""
        if parallel.is_chief:
            return log, progress
        self.checkpoint = None
        return _silent, False

    def end_epoch(self, net, trainer, record, seed):
        """Checkpoint the finished epoch (where asked), then add it to the history."""
        if self.checkpoint:
            save_checkpoint(self.checkpoint, net, trainer, record['epoch'],
                            self.history + [record], seed, self.settings)
        self.history.append(record)
