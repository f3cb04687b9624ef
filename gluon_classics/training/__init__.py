"""Training: the chapters' loop, evaluation, checkpoints and the ``fit`` recipes."""
from .checkpoint import CheckpointError, atomic_write, load_checkpoint, load_params, save_checkpoint
from .fit import OPTIMIZERS, RECIPES, ReduceLROnPlateau, fit, make_trainer, seed_everything
from .trainer import (TrainingDiverged, TrainingInterrupted, evaluate_accuracy, make_objective,
                      predict, train_ch5)
from .second_edition import evaluate_accuracy_gpu, train_ch6

__all__ = ['train_ch5', 'evaluate_accuracy', 'train_ch6', 'evaluate_accuracy_gpu', 'predict',
           'make_objective', 'fit', 'make_trainer',
           'seed_everything',
           'RECIPES', 'OPTIMIZERS', 'ReduceLROnPlateau', 'TrainingDiverged', 'TrainingInterrupted',
           'save_checkpoint', 'load_checkpoint', 'load_params', 'atomic_write', 'CheckpointError']
