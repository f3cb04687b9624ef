"""Training: the chapters' loop, evaluation, checkpoints and the ``fit`` recipes."""
from .checkpoint import (CheckpointError, atomic_write, describe_run, is_checkpoint,
                         load_checkpoint, load_params, save_checkpoint)
from .fit import (OPTIMIZERS, RECIPES, SCHEDULES, CosineSchedule, ReduceLROnPlateau,
                  build_model, check_lr, default_resize, fit, make_trainer, seed_everything)
from .trainer import (TrainingDiverged, TrainingInterrupted, epoch_seeds, evaluate_accuracy,
                      make_objective, plain_objective, predict, train_ch5)
from ..accel import DTYPES
from .second_edition import evaluate_accuracy_gpu, train_ch6

__all__ = ['train_ch5', 'evaluate_accuracy', 'train_ch6', 'evaluate_accuracy_gpu', 'predict',
           'make_objective', 'plain_objective', 'fit', 'make_trainer',
           'seed_everything', 'epoch_seeds', 'build_model', 'default_resize', 'check_lr',
           'RECIPES', 'OPTIMIZERS', 'SCHEDULES', 'DTYPES', 'ReduceLROnPlateau', 'CosineSchedule',
           'TrainingDiverged', 'TrainingInterrupted',
           'save_checkpoint', 'load_checkpoint', 'load_params', 'is_checkpoint', 'describe_run',
           'atomic_write', 'CheckpointError']
