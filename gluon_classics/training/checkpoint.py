"""Training checkpoints: one zip file written atomically after every epoch.

It holds what a resumed run needs to finish as started, exactly where the last
epoch ended: the parameters (``net.save_parameters`` format), the optimizer
states (``trainer.save_states`` format), the learning rate after the epoch's
schedule step, the history, the seed that drives per-epoch shuffling and
dropout, and ``config``: the run's settings (model, variant and overrides,
data set and resize, batch size, total epochs, initial rate, optimizer,
outputs), as :func:`~gluon_classics.fit` records them. It is a zip file:
``unzip -p C net.params > net.params`` takes the parameters out.
"""
import json
import os
import re
import tempfile
import zipfile

from mxnet import nd

from .._backend import error_reason
from ..errors import Fixable
from ..utils.outputs import atomic_write

__all__ = ['save_checkpoint', 'load_checkpoint', 'load_params', 'is_checkpoint', 'describe_run',
           'atomic_write', 'CheckpointError']

FORMAT = 'gluon_classics-checkpoint-1'


class CheckpointError(Fixable, ValueError):
    """A checkpoint file is missing, corrupt or does not fit the network."""


def _saved_bytes(save, tmp):
    """What ``save(tmp)`` writes: MXNet saves only to files, so to ``atomic_write``'s
    temporary (removed by the next save if this process dies meanwhile)."""
    save(tmp)
    with open(tmp, 'rb') as f:
        return f.read()


def save_checkpoint(path, net, trainer, epoch, history, seed=None, config=None):
    """Write a checkpoint after ``epoch`` (1-based) epochs to ``path``, atomically."""
    meta = {'format': FORMAT, 'epoch': epoch, 'learning_rate': trainer.learning_rate,
            'seed': seed, 'history': history, 'config': config or {}}

    def write(tmp):
        params = _saved_bytes(net.save_parameters, tmp)
        states = _saved_bytes(trainer.save_states, tmp)
        with zipfile.ZipFile(tmp, 'w') as z:
            z.writestr('meta.json', json.dumps(meta, indent=1))
            z.writestr('net.params', params)
            z.writestr('trainer.states', states)
    atomic_write(path, write)


def _load_reason(err):
    """Why MXNet did not load parameters, without its own advice (allow_missing=True would
    leave layers untrained)."""
    return re.sub(r'\.?\s*Set allow_missing=True.*$', '', error_reason(err))


def is_checkpoint(path):
    """True when ``path`` is a zip file (a checkpoint), False for anything else."""
    return os.path.isfile(path) and zipfile.is_zipfile(path)


def describe_run(config):
    """A checkpoint's model settings, e.g. ``lenet [[variant=d2l]] [[resize=32]]``
    (:mod:`gluon_classics.errors` spells them for Python or the CLI)."""
    if not config:
        return 'an unrecorded model (an old checkpoint)'
    words = [config.get('model', '?'), f'[[variant={config.get("variant", "?")}]]']
    for key, value in sorted((config.get('model_kwargs') or {}).items()):
        words.append(f'[[{key}={value}]]')
    if config.get('resize'):
        words.append(f'[[resize={config["resize"]}]]')
    if config.get('dataset', 'fashion-mnist') != 'fashion-mnist':
        words.append(f'[[dataset={config["dataset"]}]]')
    return ' '.join(words)


def load_checkpoint(path, net=None, trainer=None, ctx=None):
    """Read a checkpoint; load its parameters into ``net`` and states into ``trainer``.

    With neither ``net`` nor ``trainer``, only the metadata is read.

    Returns
    -------
    dict
        The metadata: ``epoch``, ``learning_rate``, ``seed``, ``history``,
        ``config`` (the run's settings as :func:`~gluon_classics.fit` records them).
    """
    if os.path.isdir(path):
        raise CheckpointError(f'checkpoint {path} is a folder, not a checkpoint file: give the '
                              f'.ckpt file (in it) as [[resume]]')
    if not os.path.isfile(path):
        what = 'is not a regular file' if os.path.exists(path) else 'does not exist'
        raise CheckpointError(f'checkpoint {path} {what}: check the path given as [[resume]]')
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read('meta.json'))
            missing = {'net.params', 'trainer.states'} - set(z.namelist())
            if missing:
                raise KeyError(f'no {", ".join(sorted(missing))} in it')
            # Callers that want the settings alone (resume, --params) skip the
            # parameters and states: hundreds of MB for AlexNet.
            params = z.read('net.params') if net is not None else None
            states = z.read('trainer.states') if trainer is not None else None
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as err:
        raise CheckpointError(f'checkpoint {path} is corrupt or not a gluon_classics '
                              f'checkpoint ({err}): start without [[resume]]') from None
    if meta.get('format') != FORMAT:
        raise CheckpointError(f'checkpoint {path} has format {meta.get("format")!r}, '
                              f'expected {FORMAT!r}')
    with tempfile.TemporaryDirectory() as tmp:
        if net is not None:
            with open(os.path.join(tmp, 'p'), 'wb') as f:
                f.write(params)
            try:
                net.load_parameters(f.name, ctx=ctx)
            except Exception as err:  # MXNetError, AssertionError: both multi-line
                raise CheckpointError(f'checkpoint {path} does not fit this '
                                      f'{type(net).__name__} ({_load_reason(err)}): it holds '
                                      f'{describe_run(meta.get("config"))}') from None
        if trainer is not None:
            with open(os.path.join(tmp, 's'), 'wb') as f:
                f.write(states)
            trainer.load_states(f.name)
            trainer.set_learning_rate(meta['learning_rate'])
    return meta


def load_params(net, path, ctx=None):
    """``net.load_parameters(path)`` with one clear line when the file is wrong.

    ``path`` may also be a checkpoint: its parameters are loaded.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'parameter file {path} does not exist: '
                              f'train with [[save={path}]] first')
    if zipfile.is_zipfile(path):
        load_checkpoint(path, net, ctx=ctx)
        return net
    hint = f'save it again, or give the run\'s checkpoint ({path}.ckpt by default) instead'
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'parameter file {path} is empty (an interrupted or failed '
                              f'save?): {hint}')
    try:
        nd.load(path)  # the file itself, before blaming the model it is loaded into
    except Exception as err:
        raise CheckpointError(f'parameter file {path} is truncated or not an MXNet parameter '
                              f'file ({error_reason(err)}): {hint}') from None
    try:
        net.load_parameters(path, ctx=ctx)
    except Exception as err:  # MXNetError, AssertionError: both multi-line
        raise CheckpointError(f'parameter file {path} cannot be loaded into this '
                              f'{type(net).__name__} ({_load_reason(err)}): check the model, '
                              f'variant and overrides it was trained with') from None
    return net
