"""Training checkpoints: one zip file written atomically after every epoch.

It holds what a resumed run needs to continue exactly where the last epoch
ended: the parameters (``net.save_parameters`` format), the optimizer states
(``trainer.save_states`` format), the learning rate, the history and the seed
that drives per-epoch shuffling and dropout.
"""
import json
import os
import tempfile
import zipfile

__all__ = ['save_checkpoint', 'load_checkpoint', 'load_params', 'atomic_write', 'CheckpointError']

FORMAT = 'gluon_classics-checkpoint-1'


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not fit the network."""


def atomic_write(path, write):
    """Call ``write(tmp_path)``, then move the result over ``path`` in one step.

    An interrupted write (Ctrl-C, a full disk) leaves ``path`` as it was.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets, not results
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _file_bytes(save):
    fd, tmp = tempfile.mkstemp(suffix='.bin')
    os.close(fd)
    try:
        save(tmp)
        with open(tmp, 'rb') as f:
            return f.read()
    finally:
        os.remove(tmp)


def save_checkpoint(path, net, trainer, epoch, history, seed=None, config=None):
    """Write a checkpoint after ``epoch`` (1-based) epochs to ``path``, atomically."""
    meta = {'format': FORMAT, 'epoch': epoch, 'learning_rate': trainer.learning_rate,
            'seed': seed, 'history': history, 'config': config or {}}
    params = _file_bytes(net.save_parameters)
    states = _file_bytes(trainer.save_states)

    def write(tmp):
        with zipfile.ZipFile(tmp, 'w') as z:
            z.writestr('meta.json', json.dumps(meta, indent=1))
            z.writestr('net.params', params)
            z.writestr('trainer.states', states)
    atomic_write(path, write)


def load_checkpoint(path, net=None, trainer=None, ctx=None):
    """Read a checkpoint; load its parameters into ``net`` and states into ``trainer``.

    Returns
    -------
    dict
        The metadata: ``epoch``, ``learning_rate``, ``seed``, ``history``, ``config``.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist: check the path given to --resume')
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read('meta.json'))
            params, states = z.read('net.params'), z.read('trainer.states')
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as err:
        raise CheckpointError(f'checkpoint {path} is corrupt or not a gluon_classics '
                              f'checkpoint ({err}): start without --resume') from None
    if meta.get('format') != FORMAT:
        raise CheckpointError(f'checkpoint {path} has format {meta.get("format")!r}, '
                              f'expected {FORMAT!r}')
    with tempfile.TemporaryDirectory() as tmp:
        if net is not None:
            with open(os.path.join(tmp, 'p'), 'wb') as f:
                f.write(params)
            try:
                net.load_parameters(f.name, ctx=ctx)
            except (AssertionError, ValueError, RuntimeError) as err:
                raise CheckpointError(f'checkpoint {path} does not fit this network '
                                      f'({str(err).splitlines()[0]}): resume with the same '
                                      f'model and variant') from None
        if trainer is not None:
            with open(os.path.join(tmp, 's'), 'wb') as f:
                f.write(states)
            trainer.load_states(f.name)
            trainer.set_learning_rate(meta['learning_rate'])
    return meta


def load_params(net, path, ctx=None):
    """``net.load_parameters(path)`` with one clear line when the file is wrong."""
    if not os.path.isfile(path):
        raise CheckpointError(f'parameter file {path} does not exist: '
                              f'train with --save {path} first')
    try:
        net.load_parameters(path, ctx=ctx)
    except Exception as err:  # MXNetError, AssertionError: both multi-line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f'parameter file {path} cannot be loaded into this '
                              f'{type(net).__name__} ({first}): check the model, variant '
                              f'and overrides it was trained with') from None
    return net
