"""Every file the package writes goes through here: checked first, written atomically.

A path is checked before the work that produces it (``check_output``), so a
bad ``--save`` fails in a second, not after hours of training. Writes go to a
temporary file next to the target, are fsynced and then renamed over it, so an
interrupted write leaves the old file whole. A symlink is followed and its
target written (the link stays a link); a folder, FIFO or device at the path
is refused, never replaced.

One process writes a path at a time: a write holds an flock on a sibling
``.<name>.lock`` (removed after), and a run that claims its outputs at the
start (:func:`claim_output`, ``train`` does) holds it until it exits, so a
second run or write to the same path is refused with one line naming the
first one's pid. Holding the lock, a write removes the temporaries an earlier
writer of that path left (``.<name>.XXXXXXXX.tmp``, after ``kill -9``).
"""
import atexit
import fcntl
import os
import re
import stat
import tempfile

from ..errors import Fixable

__all__ = ['OutputError', 'cache_dir', 'check_output', 'check_output_dir', 'atomic_write',
           'write_text', 'save_figure', 'figure_format', 'claim_output', 'release_outputs']

_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a device'),
          (stat.S_ISBLK, 'a device'), (stat.S_ISSOCK, 'a socket'))


class OutputError(Fixable, ValueError):
    """An output path that cannot be written; the message is one line naming the fix."""


def cache_dir():
    """The package's cache folder (compiled kernels, the AMX verdict): $GLUON_CLASSICS_CACHE,
    else $XDG_CACHE_HOME/gluon_classics, else ~/.cache/gluon_classics."""
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.environ.get('GLUON_CLASSICS_CACHE') or os.path.join(root, 'gluon_classics')


class OutputBusy(OutputError):
    """Another live process is writing the path (``real``, by ``pid``)."""

    def __init__(self, message, real, pid):
        super().__init__(message)
        self.real, self.pid = real, pid


def _label(path, what):
    return f'{what} {path}' if what else str(path)


def _strerror(err):
    """The OS's reason ("No space left on device"); for another error its telling line."""
    if isinstance(err, OSError):
        # OSError(errno.ENOSPC), raised without its text, has neither errno nor strerror
        code = err.errno or (err.args[0] if len(err.args) == 1 and isinstance(err.args[0], int)
                             else None)
        if err.strerror or code:
            return err.strerror or os.strerror(code)
    lines = [line.strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line and not line.startswith(  # MXNet's: a traceback first
        ('Traceback', 'File ', '[bt]', 'Stack trace'))]
    return re.sub(r'^\w*Error: ', '', lines[0]) if lines else type(err).__name__


def _os_reason(tmp):
    """Why the OS refuses more bytes in ``tmp`` (MXNet's failed writes do not say), or None."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
    except OSError as err:
        return _strerror(err)
    try:
        os.write(fd, bytes(1 << 16))
        os.fsync(fd)
    except OSError as err:
        return _strerror(err)
    finally:
        os.close(fd)
    return None


def _check_folder(folder, label):
    """The folder exists and takes new files, or its nearest existing parent would."""
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f'cannot write {label}: {existing} is not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f'cannot write {label}: folder {existing} is not writable; '
                          f'choose a path in a writable folder')
    # try it: access() can say yes where a write fails (NFS, FUSE, a security module)
    if existing == folder:
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix='.gluon_classics-probe.')
            os.close(fd)
            os.remove(probe)
        except OSError as err:
            raise OutputError(f'cannot write {label}: folder {folder}: {_strerror(err)}; '
                              f'choose a path in a writable folder') from None


def check_output(path, what=None):
    """Check that ``path`` can be written as a regular file; return where it lands.

    Symlinks are resolved (a write goes to their target). Nothing is created.

    Parameters
    ----------
    path : str
    what : str, optional
        How the user gave the path (``'--save'``), for the message.

    Returns
    -------
    str
        The resolved path.

    Raises
    ------
    OutputError
        The path is a folder, FIFO, device or socket, is not writable, or
        lies under something that is not a writable folder.
    """
    label = _label(path, what)
    real = os.path.realpath(os.path.expanduser(os.fspath(path)))
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder check names the culprit
        mode = None
    except OSError as err:  # a symlink loop
        raise OutputError(f'cannot write {label}: {_strerror(err)}') from None
    if mode is not None:
        for test, kind in _KINDS:
            if test(mode):
                hint = ('give a file path inside it' if kind == 'a folder'
                        else 'give the path of a regular file')
                where = '' if real == os.path.abspath(path) else f' ({real})'
                raise OutputError(f'cannot write {label}: it is {kind}{where}, not a regular '
                                  f'file; {hint}')
        if not os.access(real, os.W_OK):
            raise OutputError(f'cannot write {label}: the file is not writable; choose another '
                              f'path or change its permissions')
    _check_folder(os.path.dirname(real), label)
    return real


def check_output_dir(folder, names=(), what=None):
    """Check that ``folder`` (existing or to be created) can take the files ``names``."""
    label = _label(folder, what)
    real = os.path.realpath(os.path.expanduser(os.fspath(folder)))
    if os.path.exists(real) and not os.path.isdir(real):
        raise OutputError(f'cannot write into {label}: it is not a folder; give a folder path')
    _check_folder(real, label)
    for name in names:
        check_output(os.path.join(folder, name), what and f'{what} file')
    return real


def _lock_path(real):
    return os.path.join(os.path.dirname(real), '.' + os.path.basename(real) + '.lock')


def _same_file(fd, path):
    try:
        here, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _lock(real, label):
    """Hold ``real``'s lock file: its fd, or None where the filesystem has no flock."""
    path = _lock_path(real)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError:
            return None  # not ours to create (a symlink there, another user's): unlocked
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors='replace').strip() or 'unknown'
            os.close(fd)
            raise OutputBusy(f'another run is writing {label} (pid {pid}): wait for it to '
                             f'finish, or choose another path', real, pid) from None
        except OSError:  # ENOLCK: a network filesystem without locks
            os.close(fd)
            return None
        if _same_file(fd, path):  # not removed by its last holder since we opened it
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError as err:  # a full disk: say so now, not after the training
                _unlock(real, fd)
                raise OutputError(f'cannot write {label}: {_strerror(err)}') from None
            return fd
        os.close(fd)


def _unlock(real, fd):
    if fd is not None:
        try:
            os.remove(_lock_path(real))  # while still held: a waiting opener retries
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_stale_temporaries(real):
    """Remove what an earlier writer of ``real`` left; the caller holds ``real``'s lock."""
    folder, name = os.path.split(real)
    ours = re.compile(r'\.' + re.escape(name) + r'\.[a-z0-9_]{8}\.tmp')  # mkstemp's names below
    for entry in os.scandir(folder):
        if ours.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.remove(entry.path)
            except FileNotFoundError:
                pass


# real path -> lock fd, held by this process until release_outputs() or its exit
_CLAIMS = {}
_CLAIMER = os.getpid()  # a forked child shares the parent's locks: it must not remove them


def claim_output(path, what=None):
    """Check ``path`` as :func:`check_output` does and hold it for this process.

    Another process claiming or writing it is refused until :func:`release_outputs`
    or this process's exit (``kill -9`` included: the kernel drops the lock).
    Claiming a path this process holds again is a no-op. Returns the resolved path.
    """
    global _CLAIMER
    real = check_output(path, what)
    if real not in _CLAIMS:
        os.makedirs(os.path.dirname(real), exist_ok=True)
        _CLAIMS[real], _CLAIMER = _lock(real, _label(path, what)), os.getpid()
    return real


@atexit.register
def release_outputs():
    """Release every path :func:`claim_output` holds (and remove their lock files)."""
    if os.getpid() != _CLAIMER:  # a forked child: the locks are its parent's
        _CLAIMS.clear()
        return
    while _CLAIMS:
        _unlock(*_CLAIMS.popitem())


def _mode_for(real):
    try:
        return stat.S_IMODE(os.stat(real).st_mode)  # a rewritten file keeps its permissions
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask  # mkstemp's 0600 is for secrets, not results


def _fsync(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write, what=None):
    """Call ``write(tmp_path)``, then move the result over ``path`` in one step.

    ``path`` is checked as :func:`check_output` does and a symlink's target is
    written. The temporary file is fsynced before the rename (and the folder
    after it), so a crash leaves the old file or the new one, never a torn one.
    A new file gets ``0o666 & ~umask``; a rewritten one keeps its mode. The
    path's lock is held meanwhile (see the module's docstring).

    Raises
    ------
    OutputError
        The path cannot be written, another process is writing it, or the
        write failed (a full disk...); the old file, if any, is untouched.
    """
    real = check_output(path, what)
    folder = os.path.dirname(real)
    tmp = lock = None
    try:
        os.makedirs(folder, exist_ok=True)
        lock = _CLAIMS[real] if real in _CLAIMS else _lock(real, _label(path, what))
        if lock is not None:  # only then is no other writer of ours alive
            _remove_stale_temporaries(real)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(real) + '.',
                                   suffix='.tmp')
        os.close(fd)
        write(tmp)
        _fsync(tmp)
        os.chmod(tmp, _mode_for(real))
        os.replace(tmp, real)
        tmp = None
        _fsync(folder)
    except OutputError:
        raise
    except Exception as err:  # OSError, or MXNetError from save_parameters on a full disk
        if not isinstance(err, OSError) and type(err).__name__ != 'MXNetError':
            raise
        reason = (not isinstance(err, OSError) and tmp and _os_reason(tmp)) or _strerror(err)
        raise OutputError(f'could not write {_label(path, what)}: {reason}') from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if real not in _CLAIMS:
            _unlock(real, lock)
    return real


def write_text(path, text, what=None):
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    return atomic_write(path, write, what)


def figure_format(path, what=None):
    """The image format of ``path``'s extension, checked against matplotlib's list."""
    from matplotlib.backend_bases import FigureCanvasBase
    ext = os.path.splitext(os.fspath(path))[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise OutputError(f'cannot write {_label(path, what)}: {"." + ext if ext else "no"} '
                          f'extension; use one of {", ".join("." + f for f in sorted(formats))}')
    return ext


def save_figure(fig, path, what=None, **kwargs):
    """``fig.savefig(path, **kwargs)``, atomically, in the format of the extension."""
    fmt = figure_format(path, what)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs), what)
