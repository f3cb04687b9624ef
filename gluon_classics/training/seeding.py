"""Seeds: a seeded run repeats exactly, also when it is resumed mid-way."""
import random

import mxnet as mx
import numpy as np

__all__ = ['seed_everything', 'epoch_seeds', 'seed_epoch']


def seed_everything(seed):
    """Seed MXNet's, numpy's and Python's generators."""
    mx.random.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def epoch_seeds(seed, epoch):
    """Seeds of MXNet's, numpy's and Python's generators for one epoch of a seeded run.

    Derived with numpy's SeedSequence, so neighbouring seeds do not share
    streams the way ``seed + epoch`` does (seed 1's epoch 2 would be seed 2's
    epoch 1), and distinct from the loader's shuffle stream ``(seed, epoch)``.
    MXNet's seed of the first epoch is ``seed`` itself: deferred layers are
    initialized at the first batch, so a seed keeps the initial weights (and
    the measured runs) it had.
    """
    mx_seed, np_seed, py_seed = np.random.SeedSequence([seed, epoch, 1]).generate_state(3)
    return [seed if epoch == 0 else int(mx_seed), int(np_seed), int(py_seed)]


def seed_epoch(seed, epoch, train_iter):
    """Reseed the generators (dropout, shuffling) for ``epoch`` (0-based); nothing for None."""
    if seed is None:
        return
    mx_seed, np_seed, py_seed = epoch_seeds(seed, epoch)
    mx.random.seed(mx_seed)
    np.random.seed(np_seed)  # loaders shuffling with numpy's global generator
    random.seed(py_seed)
    if hasattr(train_iter, 'epoch'):
        train_iter.epoch = epoch
