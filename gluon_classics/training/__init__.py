"""Training: the chapters' loop, evaluation, checkpoints and the ``fit`` recipes.

Start with :mod:`.loop` (``train_ch5``, ``evaluate_accuracy``): the chapter's
loop. :mod:`.fit` is the whole run around it.
"""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from ..accel import DTYPES
from .checkpoint import (CheckpointError, atomic_write, describe_run, is_checkpoint,
                         load_checkpoint, load_params, save_checkpoint)
from .fit import ChanceLevelWarning, fit
from .config import RunConfig, run_config
from .loop import TrainingDiverged, TrainingInterrupted, evaluate_accuracy, predict, train_ch5
from .objective import forward, make_objective, plain_objective
from .recipes import (OPTIMIZERS, RECIPES, SCHEDULES, CosineSchedule, ReduceLROnPlateau,
                      build_model, check_lr, default_resize, make_trainer)
from .second_edition import evaluate_accuracy_gpu, train_ch6
from .seeding import epoch_seeds, seed_everything

__all__ = ['train_ch5', 'evaluate_accuracy', 'train_ch6', 'evaluate_accuracy_gpu', 'predict',
           'forward', 'make_objective', 'plain_objective', 'RunConfig', 'run_config', 'fit', 'make_trainer',
           'seed_everything', 'epoch_seeds', 'build_model', 'default_resize', 'check_lr',
           'RECIPES', 'OPTIMIZERS', 'SCHEDULES', 'DTYPES', 'ReduceLROnPlateau', 'CosineSchedule',
           'TrainingDiverged', 'TrainingInterrupted', 'ChanceLevelWarning',
           'save_checkpoint', 'load_checkpoint', 'load_params', 'is_checkpoint', 'describe_run',
           'atomic_write', 'CheckpointError']
