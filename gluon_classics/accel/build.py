"""The JIT build of our CPU operators (``conv_pool.cc``): compiler, cache, lock, checks.

MXNet 1.9 loads operator libraries built against its extension API
(``lib_api.h``, shipped in the wheel). The library is compiled once per
machine and kept in a cache folder under a name derived from everything that
goes into it (docs/kernels-build.md):

* the compiler is ``$CXX``, a command line (``ccache g++``), else ``g++``;
  each of its calls has a time limit and runs in a process group of its own,
  killed whole at that limit (the driver and its ``cc1plus``);
* the build holds a lock in the cache folder (``flock``: the kernel drops it
  when its holder dies, so a killed build leaves nothing that blocks), so
  concurrent first uses compile once and the others wait, then load;
* it compiles into a temporary file, proves in a child process that MXNet
  loads it, and only then moves it into place; all output goes to a log;
* the folder and the library must be the user's own and not writable by
  others: the library is code that runs in this process.
"""
import contextlib
import errno
import fcntl
import hashlib
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import mxnet as mx

from ..devices import cpu_info
from ..utils.outputs import cache_dir as _cache_dir

__all__ = ['SOURCE', 'OPERATORS', 'NO_COMPILER', 'NO_COMPILER_PREFIX', 'MARCH_ENV', 'TIMEOUTS',
           'find_compiler', 'plan', 'library', 'describe', 'message_line']

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conv_pool.cc')
# what it registers (the proof checks them): the first block's (1-channel images), later blocks'
OPERATORS = {name: f'gluon_classics_{name}' for name in ('conv_pool', 'conv_pool_maps')}
NO_COMPILER_PREFIX = 'off: no C++ compiler'  # the statuses doctor hints on
NO_COMPILER = f'{NO_COMPILER_PREFIX} (install g++ or set CXX)'
MARCH_ENV = 'GLUON_CLASSICS_MARCH'  # -march= of the build (default native), part of its key
# seconds: the compiler's --version, the build, the child proving that MXNet loads the library
TIMEOUTS = dict(version=30, build=600, proof=120)
STALE_TMP_S = 600  # a temporary file this old is a killed build's
UNUSED_S = 30 * 86400  # another key's library (another CXX, march, MXNet) unused this long
_NAME = re.compile(r'conv_pool-([0-9a-f]{16})\.(so|log)')
_TMP = re.compile(r'conv_pool-[0-9a-f]{16}-\w+\.tmp|tmp[a-z0-9_]{8}\.so')  # ours, older versions'
_OWN = 'set GLUON_CLASSICS_CACHE to a writable folder of your own'
# the proof, in a child: a library that crashes or fails to load takes that child only
_PROVE = '''import ctypes, sys
from mxnet.base import _LIB, OpHandle, c_str, check_call, mx_uint
check_call(_LIB.MXLoadLib(c_str(sys.argv[1]), mx_uint(0)))
for name in sys.argv[2:]:  # the operators it must have registered
    check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(OpHandle())))
'''


class _Off(Exception):
    """A build that cannot be had; its message is the status line."""


def _say(text):
    print(f'gluon_classics: {text}', file=sys.stderr, flush=True)


def message_line(text):
    """The line of a compiler's or MXNet's output that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(('Traceback', 'File "'))]
    return lines[-1] if lines else 'no message'


def _march():
    return os.environ.get(MARCH_ENV) or 'native'


def _flags():
    # -march: the vector width of the CPU (the source picks its tiles by it);
    # -fno-trapping-math: no FP exceptions are used, so GCC may turn the activation's
    # selects into blends on AVX2 (without it, that loop stays scalar there).
    return ['-O3', f'-march={_march()}', '-fno-trapping-math', '-fopenmp', '-shared', '-fPIC',
            '-std=c++17']


def _compiler():
    """(argv of $CXX or g++, None), or (None, why not)."""
    line = os.environ.get('CXX') or 'g++'
    try:
        words = shlex.split(line)
    except ValueError as e:
        return None, f'off: CXX={line!r} is not a command line ({e})'
    first = shutil.which(words[0]) if words else None
    if first:
        return [first, *words[1:]], None
    if os.environ.get('CXX'):  # name what was tried: CXX is set
        return None, f'{NO_COMPILER_PREFIX}: CXX={line!r} is not found (install it, or unset CXX ' \
                     f'to use g++)'
    return None, NO_COMPILER


def find_compiler():
    """The command line of the C++ compiler (``$CXX`` split as a shell would, else
    ``g++``) with its first word found on PATH, or None."""
    return _compiler()[0]


def _run(argv, timeout, out):
    """Exit status of ``argv`` with its output into the file (descriptor) ``out``.

    It runs in a session of its own; at ``timeout`` (or an interrupt) its whole
    process group is killed, so no ``cc1plus`` outlives a killed driver.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
        raise


def _version(argv):
    with tempfile.TemporaryFile() as out:
        code = _run([*argv, '--version'], TIMEOUTS['version'], out)
        out.seek(0)
        text = out.read().decode(errors='replace')
    if code:
        raise OSError(f'exit status {code}: {message_line(text)}')
    return text


def _key(argv, mx_dir):
    """16 hex digits of everything that goes into the library."""
    digest = hashlib.sha256()
    for path in (SOURCE, os.path.join(mx_dir, 'include', 'mxnet', 'lib_api.h'),
                 os.path.join(mx_dir, 'src', 'lib_api.cc')):
        with open(path, 'rb') as f:
            digest.update(f.read())
    model, _, flags = cpu_info()  # -march=native: one build per instruction set
    for part in (_version(argv), shlex.join(argv), ' '.join(_flags()), model,
                 ' '.join(sorted(flags)), mx.__version__, platform.machine()):
        digest.update(part.encode() + b'\0')
    return digest.hexdigest()[:16]


def _unsafe(path, st, fix):
    """Why ``path`` (stat ``st``) is not safe to load code from, or None."""
    if st.st_uid != os.getuid():
        return (f'off: {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}), and '
                f'a library from it would run in this process; {fix or _OWN}')
    if st.st_mode & 0o022:
        return (f'off: {path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}), so '
                f'a library planted there would run in this process; {fix or f"chmod go-w {path}"}')
    return None


def _folder_problem(folder, build):
    """Why ``folder`` cannot hold our library (None: it can), creating nothing; where we
    ``build``, it must be writable (or creatable), else only safe to load from."""
    try:
        st = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        parent = os.path.dirname(folder)
        while not os.path.lexists(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return None
        return f'off: the cache folder {folder} cannot be made ({parent} is not a writable ' \
               f'folder); {_OWN}'
    except OSError as e:
        return f'off: the cache folder {folder} cannot be read ({e.strerror}); {_OWN}'
    if not stat.S_ISDIR(st.st_mode):
        return f'off: the cache folder {folder} is not a folder; {_OWN}'
    why = _unsafe(folder, st, None)
    if why is None and build and not os.access(folder, os.W_OK | os.X_OK):
        why = f'off: the cache folder {folder} is not writable; {_OWN}'
    return why


def _library_problem(path):
    """Why the file at ``path`` must not be loaded (None: it may, or it is not there)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f'off: {path} is not a regular file (a link?); remove it to rebuild'
    return _unsafe(path, st, 'remove it to rebuild')


def plan():
    """(compiler argv, MXNet's folder, library path), or (None, None, the status saying why not).

    Checks the cache folder and any library there; runs only ``$CXX --version``.
    """
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return None, None, 'off: this MXNet has no oneDNN (the graph they serve does not apply)'
    argv, why = _compiler()
    if argv is None:
        return None, None, why
    mx_dir = os.path.dirname(os.path.abspath(mx.__file__))
    if not os.path.isfile(os.path.join(mx_dir, 'include', 'mxnet', 'lib_api.h')):
        return None, None, f'off: this MXNet ({mx_dir}) ships no lib_api.h'
    if not re.fullmatch(r'[\w.+-]+', _march()):
        return None, None, f'off: {MARCH_ENV}={_march()!r} is not a -march name (native, ' \
                           f'haswell, skylake-avx512, ...)'
    folder = _cache_dir()
    why = _folder_problem(folder, build=False)  # before --version: it may hang
    if why:
        return None, None, why
    try:
        path = os.path.join(folder, f'conv_pool-{_key(argv, mx_dir)}.so')
    except subprocess.TimeoutExpired:
        return None, None, f'off: {shlex.join(argv)} --version did not answer in ' \
                           f'{TIMEOUTS["version"]} s'
    except (OSError, subprocess.SubprocessError) as e:
        return None, None, f'off: {shlex.join(argv)} --version failed ({e})'
    why = _library_problem(path)
    if why is None and not os.path.exists(path):  # a read-only folder may serve, not build
        why = _folder_problem(folder, build=True)
    return (None, None, why) if why else (argv, mx_dir, path)


@contextlib.contextmanager
def _lock(folder):
    """Hold the build lock of ``folder``, saying once that we wait where another holds it."""
    path = os.path.join(folder, 'conv_pool.lock')
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)  # not inherited
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another process building LeNet's CPU kernels in {folder}")
            _wait(fd, path)
        except OSError as e:  # a file system without flock: builds may overlap, each
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # still atomic
                raise
        yield
    finally:
        os.close(fd)  # and with it the lock


def _wait(fd, path):
    patience = TIMEOUTS['build'] + TIMEOUTS['proof'] + 60  # the holder's own limits, and some
    deadline = time.monotonic() + patience
    while True:
        time.sleep(0.2)
        try:
            return fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise _Off(f'off: waited {patience} s for the build lock {path} (its holder '
                           f'is stopped?)') from None


def _clean(folder, keep):
    """Remove what killed builds and other keys left, only files of our own names.

    Temporary files older than STALE_TMP_S; the library and log of another key
    when neither was used (touched) for UNUSED_S: another CXX, march or MXNet
    sharing the folder keeps its library while in use.
    """
    now, keys, current = time.time(), {}, _NAME.fullmatch(os.path.basename(keep)).group(1)
    for entry in os.scandir(folder):
        name = _NAME.fullmatch(entry.name)
        if not (name or _TMP.fullmatch(entry.name)) or not entry.is_file(follow_symlinks=False):
            continue
        age = now - entry.stat(follow_symlinks=False).st_mtime
        if name is None:
            if age > STALE_TMP_S:
                _remove(entry.path)
        elif name.group(1) != current:
            keys.setdefault(name.group(1), []).append((age, entry.path))
    for files in keys.values():
        if min(age for age, _ in files) > UNUSED_S:
            for _, path in files:
                _remove(path)


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _step(log, argv, timeout):
    """Run ``argv`` with its output appended to ``log`` (a descriptor): (exit status, output)."""
    os.write(log, f'$ {shlex.join(argv)}\n'.encode())
    start = os.lseek(log, 0, os.SEEK_CUR)
    try:
        code = _run(argv, timeout, log)
    except subprocess.TimeoutExpired:
        os.write(log, f'# killed (with its process group) after {timeout} s\n'.encode())
        raise
    end = os.lseek(log, 0, os.SEEK_END)
    os.write(log, f'# exit status {code}\n'.encode())
    return code, os.pread(log, end - start, start).decode(errors='replace')


def _build(argv, mx_dir, path):
    """Compile into a temporary file beside ``path``, prove that MXNet loads it (in a
    child process), then move it into place; the output of both goes to the log."""
    folder, log_path = os.path.dirname(path), path[:-len('.so')] + '.log'
    name = shlex.join(argv)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(log_path)[:-len('.log')] + '-',
                               suffix='.tmp', dir=folder)
    os.close(fd)
    log = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        _say(f"building LeNet's CPU kernels once (about 10 s; cached in {folder})")
        cmd = [*argv, *_flags(), '-I', os.path.join(mx_dir, 'include'),
               '-I', os.path.join(mx_dir, 'include', 'mxnet'), SOURCE,
               os.path.join(mx_dir, 'src', 'lib_api.cc'), '-o', tmp]
        try:
            code, out = _step(log, cmd, TIMEOUTS['build'])
        except subprocess.TimeoutExpired:
            raise _Off(f'off: {name} did not finish in {TIMEOUTS["build"]} s (see {log_path})')
        if code:
            lines = out.splitlines()
            first = next((line for line in lines if 'error' in line), message_line(out))
            raise _Off(f'off: {name} failed (see {log_path}): {first.strip()}')
        os.chmod(tmp, 0o644)
        try:
            code, out = _step(log, [sys.executable, '-c', _PROVE, tmp, *OPERATORS.values()],
                              TIMEOUTS['proof'])
        except subprocess.TimeoutExpired:
            code, out = 'timeout', f'no answer in {TIMEOUTS["proof"]} s'
        if code:
            said = message_line(out) if out.strip() else f'exit status {code}'
            raise _Off(f'off: what {name} built does not load in MXNet (see {log_path}): '
                       f'{said}')
        os.replace(tmp, path)
    finally:
        os.close(log)
        _remove(tmp)


def library():
    """(path of the built library, None) where it is built or cached, else (None, why not)."""
    argv, mx_dir, path = plan()
    if argv is None:
        return None, path
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        why = _folder_problem(folder, build=False)  # again: made by us, or someone else
        if why is None and not os.path.exists(path):
            with _lock(folder):
                why = _library_problem(path)  # what another process built while we waited
                if why is None and not os.path.exists(path):
                    _clean(folder, path)
                    _build(argv, mx_dir, path)
        if why:
            return None, why
        with contextlib.suppress(OSError):  # a read-only folder serves all the same
            os.utime(path)  # used now: _clean keeps it
    except _Off as e:
        return None, str(e)
    except OSError as e:
        return None, f'off: the build in {folder} failed ({e})'
    return path, None


def describe():
    """The state without compiling anything (for ``doctor``): 'on (...)' or 'off: why'."""
    argv, _, path = plan()
    if argv is None:
        return path
    if os.path.exists(path):
        return f'on ({path})'
    march = '' if _march() == 'native' else f' -march={_march()}'
    return f'on, compiled by {shlex.join(argv)}{march} on first use into {path}'
