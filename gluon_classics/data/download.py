"""Fetch dataset files from a list of mirrors: SHA-1 checked, written atomically.

A file is streamed into a temporary file in the target folder and moved into
place with ``os.replace`` only once its SHA-1 matches, so an interrupted or
corrupt download never leaves a file that a later run would trust.
"""
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request

from .idx import DataError, find_file

__all__ = ['DownloadError', 'download', 'ensure_files', 'sha1sum', 'gluon_repo_url']

_CHUNK = 1 << 20


class DownloadError(DataError):
    """No mirror could serve a file with the expected checksum."""


def gluon_repo_url(namespace):
    """Gluon's dataset folder, honouring ``$MXNET_GLUON_REPO`` as Gluon does."""
    repo = os.environ.get('MXNET_GLUON_REPO',
                          'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/')
    return repo.rstrip('/') + f'/gluon/dataset/{namespace}/'


def sha1sum(path):
    """Hex SHA-1 of a file."""
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            h.update(chunk)
    return h.hexdigest()


class _Progress:
    """Download progress on stderr: a live line on a terminal, start/end lines otherwise."""

    def __init__(self, name, total, stream=None):
        self.name, self.total, self.done = name, total, 0
        self.stream = stream or sys.stderr
        self.live = getattr(self.stream, 'isatty', lambda: False)()
        self.last = 0.0
        self._write(f'downloading {name}' + (f' ({total / 1e6:.1f} MB)' if total else ''))

    def _write(self, text, end='\n'):
        self.stream.write(('\r' if self.live else '') + text + ('' if self.live else end))
        self.stream.flush()

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if self.live and now - self.last > 0.2:
            self.last = now
            pct = f' {100 * self.done / self.total:3.0f}%' if self.total else ''
            self._write(f'downloading {self.name}:{pct} {self.done / 1e6:.1f} MB')

    def close(self, ok):
        self._write(f'downloading {self.name}: {"done" if ok else "failed"}, '
                    f'{self.done / 1e6:.1f} MB')
        if self.live:
            self.stream.write('\n')


def _fetch(url, target, sha1, progress, timeout):
    """Stream ``url`` to ``target`` via a temporary file; raise on any mismatch."""
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.part', dir=folder)
    bar = None
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get('Content-Length') or 0)
            bar = _Progress(name, total) if progress else None
            digest = hashlib.sha1()
            done = 0
            for chunk in iter(lambda: resp.read(_CHUNK), b''):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if bar:
                    bar.update(len(chunk))
            if total and done != total:
                raise DownloadError(f'{url}: got {done} of {total} bytes')
            out.flush()
            os.fsync(out.fileno())
        if sha1 and digest.hexdigest() != sha1:
            raise DownloadError(f'{url}: SHA-1 {digest.hexdigest()} != expected {sha1}')
        os.replace(tmp, target)
        if bar:
            bar.close(True)
    except BaseException:  # Ctrl-C included: never leave the partial file behind
        if bar:
            bar.close(False)
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise


def download(filename, folder, mirrors, sha1=None, progress=True, timeout=30):
    """Download ``filename`` from the first mirror that serves it intact.

    Parameters
    ----------
    filename : str
        The file name, appended to each mirror URL.
    folder : str
        Where to put it; created if needed.
    mirrors : sequence of str
        Base URLs (``https://``, ``http://`` or ``file://``), tried in order.
    sha1 : str, optional
        Expected hex SHA-1; a mirror serving other bytes counts as failed.
    progress : bool, default True
        Report progress on stderr.
    timeout : float, default 30
        Socket timeout per connection, in seconds.

    Returns
    -------
    str
        The path of the downloaded file.

    Raises
    ------
    DownloadError
        Every mirror failed; the message lists why, on one line.
    """
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, filename)
    errors = []
    for base in mirrors:
        url = base.rstrip('/') + '/' + filename
        try:
            _fetch(url, target, sha1, progress, timeout)
            return target
        except DownloadError as err:
            errors.append(str(err))
        except (OSError, http.client.HTTPException, ValueError) as err:
            # URLError/HTTPError/timeouts are OSError; a cut connection is IncompleteRead.
            reason = getattr(err, 'reason', None) or err
            errors.append(f'{url}: {type(err).__name__}: {reason}'.replace('\n', ' '))
    raise DownloadError(f'could not download {filename}: ' + '; '.join(errors or ['no mirrors']))


def ensure_files(folder, files, mirrors, progress=True, create=False):
    """Make sure every file is in ``folder``, downloading them when none is there.

    Files already there (``name.gz`` or the decompressed ``name``) are used as
    they are: only what is downloaded is checked against its SHA-1. A folder
    holding some of the files but not all is an error naming the missing ones:
    official downloads must not mix with another copy of the data set.

    Parameters
    ----------
    folder : str
        The data folder.
    files : dict
        ``{'name.gz': sha1}`` for every file the dataset needs.
    mirrors : sequence of str
        Base URLs, tried in order.
    progress : bool, default True
        Report download progress on stderr.
    create : bool, default False
        Create ``folder`` to download into; otherwise it must exist (a
        mistyped folder is an error, not a new empty folder).

    Returns
    -------
    dict
        ``{'name.gz': path}`` of the files as found or downloaded.
    """
    names = {name: name[:-3] if name.endswith('.gz') else name for name in files}
    paths = {name: find_file(folder, plain) for name, plain in names.items()}
    missing = [name for name, path in paths.items() if path is None]
    put = f'{", ".join(missing)} (gzipped or not)'
    if missing and len(missing) < len(files):
        raise DataError(f'{folder} holds part of the data set but not {put}: put the missing '
                        f'file(s) there (nothing is downloaded into a folder holding another '
                        f'copy), or pass [[root=DIR]] naming the folder that holds all of them')
    if missing and not create and not os.path.isdir(folder):
        raise DataError(f'data folder {folder} does not exist: pass [[root=DIR]] naming the folder '
                        f'that holds {", ".join(files)} (or its parent), or create {folder} to '
                        f'download them there')
    for name in missing:
        try:
            paths[name] = download(name, folder, mirrors, files[name], progress)
        except (DownloadError, OSError) as err:  # OSError: folder not writable
            raise DownloadError(f'{err}; put {put} in {folder}, or pass [[root=DIR]] naming the '
                                f'folder that holds them') from None
    return paths
