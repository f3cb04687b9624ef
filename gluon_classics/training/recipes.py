"""The chapters' recipes: optimizers, learning-rate schedules, the trainer and the model.

Per model and variant the recipe (learning rate, batch size, epochs, resize)
lives in the model registry (:func:`~gluon_classics.model_zoo.recipe`); this
module turns a recipe into the objects a run trains with.
"""
import math

import numpy as np
from mxnet import gluon

from ..choices import OPTIMIZERS, SCHEDULES
from ..distributed import connect, default_kvstore, is_distributed
from ..errors import SettingError
from ..model_zoo import MODELS, get_model, recipe

__all__ = ['RECIPES', 'OPTIMIZERS', 'SCHEDULES', 'ReduceLROnPlateau', 'CosineSchedule',
           'make_trainer', 'trainer_for', 'check_lr', 'build_model', 'default_resize', 'schedule_callback']

# The default variant's recipe per model (a view of the model registry).
RECIPES = {name: recipe(name) for name in MODELS}

# OPTIMIZERS: name -> (what it is, gluon 'sgd' arguments besides the learning rate, its
# schedule); SCHEDULES: name -> what it is (data without MXNet, for the CLI's --help).


class ReduceLROnPlateau:
    """Divide the learning rate by ``1 / factor`` when test accuracy stops improving.

    The schedule of the "momentum" recipe (momentum 0.9, weight decay 5e-4,
    lr / 10 on plateau). Use as a ``train_ch5`` callback.
    """

    def __init__(self, factor=0.1, patience=1, min_lr=1e-6):
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.best, self.wait = -1.0, 0

    def observe(self, record):
        """Update the state from one epoch; True when the rate should drop."""
        if record['test_acc'] > self.best:
            self.best, self.wait = record['test_acc'], 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return True
        return False

    def __call__(self, record, trainer):
        if self.observe(record):
            trainer.set_learning_rate(max(trainer.learning_rate * self.factor, self.min_lr))


class CosineSchedule:
    """Cosine decay of the learning rate, epoch by epoch, from ``base_lr`` towards 0.

    Epoch ``e`` (1-based) of ``epochs`` trains at ``base_lr * (1 + cos(pi * (e - 1) /
    epochs)) / 2``. Use as a ``train_ch5`` callback; it depends on the epoch only, so a
    resumed run continues the same schedule.
    """

    def __init__(self, base_lr, epochs):
        self.base_lr, self.epochs = base_lr, epochs

    def __call__(self, record, trainer):
        done = min(record['epoch'], self.epochs)
        trainer.set_learning_rate(self.base_lr * (1 + math.cos(math.pi * done / self.epochs)) / 2)


def make_trainer(net, lr, optimizer='sgd', kvstore=None):
    """``gluon.Trainer`` for the chapters' plain SGD or the momentum recipe.

    ``kvstore`` None picks 'local' for CPU contexts, 'device' for GPU ones
    (:func:`~gluon_classics.distributed.default_kvstore`); a
    ``'dist_*'`` name joins the parameter server; a
    :class:`~gluon_classics.distributed.ParallelContext` trains
    with the KVStore it holds.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {optimizer!r}: choose one of {", ".join(OPTIMIZERS)}')
    check_lr(lr)
    if kvstore is None:
        kvstore = default_kvstore(next(iter(net.collect_params().values())).list_ctx())
    return trainer_for(net, lr, optimizer, connect(kvstore))


def trainer_for(net, lr, optimizer, parallel):
    """:func:`make_trainer` for settings already checked and a job already joined."""
    params = dict(OPTIMIZERS[optimizer][1], learning_rate=lr)
    kvstore, update_on_kvstore = parallel.kvstore, None
    if is_distributed(kvstore) and 'async' not in kvstore.type:
        # Workers pull the gradients summed over all of them and update
        # locally; rescaled by the workers' count they are the mean over the
        # job's batch, whatever size the last batch has.
        params['rescale_grad'] = 1.0 / kvstore.num_workers
        update_on_kvstore = False
    return gluon.Trainer(net.collect_params(), 'sgd', params, kvstore=kvstore,
                         update_on_kvstore=update_on_kvstore)


def check_lr(lr):
    """Raise a one-line ValueError unless ``lr`` is a usable learning rate."""
    # MXNet keeps the rate as float32: 1e39 is inf there and fails deep in the optimizer
    if not (isinstance(lr, (int, float)) and 0 < lr <= _FLOAT32_MAX):
        raise SettingError(f'learning rate must be a positive number up to 3.4e38 (float32); '
                         f'got {lr}: pass e.g. [[lr=0.1]]')


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def build_model(model, variant='d2l', **kwargs):
    """``get_model`` with one line for an option the model does not take."""
    try:
        return get_model(model, variant=variant, **kwargs)
    except TypeError as err:  # e.g. AlexNet(activation=...): it has no such option
        options = ', '.join(f'{k}={v!r}' for k, v in kwargs.items()
                            if k not in ('num_classes', 'in_channels'))
        raise SettingError(f'{model} does not take {options or "these options"} ({err}); '
                           f'[[activation]] and [[pool]] are LeNet options') from None


def default_resize(model, variant='d2l'):
    """The resize a model trains with by default: the recipe's (224 for AlexNet), else the
    variant's own input size where it is not (Fashion-)MNIST's 28 (32 for LeNet-5)."""
    chapter = recipe(model, variant)
    if chapter['resize']:
        return chapter['resize']
    side = build_model(model, variant).input_shape[-1]
    return None if side == 28 else side


def schedule_callback(schedule, lr, epochs):
    """The ``train_ch5`` callback of a schedule name, or None for 'none'."""
    if schedule == 'plateau':
        return ReduceLROnPlateau()
    if schedule == 'cosine':
        return CosineSchedule(lr, epochs)
    return None
