"""Pieces the tests share (import them as ``from helpers import ...``; tests/ is on sys.path):
GLUON_CLASSICS_REQUIRE, the compiler flag, the one-line error check, the PNG check, IDX
files, small learnable data sets, closeness of arrays, a minimal ELF file, process ends."""
import os
import select
import struct
import time

import numpy as np
import pytest

# the four IDX files of (Fashion-)MNIST, without .gz
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')

# what GLUON_CLASSICS_REQUIRE may name: kernels (a C++ compiler, so that conv_pool.cc is
# compiled and tested), cluster (root, ip netns and sshd, so that the rehearsal runs)
REQUIRABLE = ('kernels', 'cluster')
CXX = os.environ.get('CXX')  # the suite's, before any test sets its own
PNG = b'\x89PNG\r\n\x1a\n'  # a PNG file's first 8 bytes


def __getattr__(name):
    """HAVE_COMPILER: whether LeNet's CPU kernels can be compiled here (CXX, else g++); where
    not, the graph runs on MXNet's operators and the kernel tests end in without_kernels().
    Looked up when imported, so that conftest.py imports no MXNet."""
    if name == 'HAVE_COMPILER':
        from gluon_classics.accel import build
        return build.find_compiler() is not None
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def required():
    """The set $GLUON_CLASSICS_REQUIRE names (.ci/run sets kernels,cluster); a typo stops
    the session (conftest.py asks at its start)."""
    names = {n.strip() for n in os.environ.get('GLUON_CLASSICS_REQUIRE', '').split(',')}
    names.discard('')
    unknown = sorted(names - set(REQUIRABLE))
    if unknown:
        raise pytest.UsageError(f'GLUON_CLASSICS_REQUIRE names {", ".join(unknown)}: it takes '
                                f'a comma-separated list of {", ".join(REQUIRABLE)}')
    return names


def require_or_skip(what, reason):
    """End a test that could not check ``what`` here: a skip saying ``reason``, or a failure
    where $GLUON_CLASSICS_REQUIRE names ``what`` (CI installs it, so it must be tested)."""
    if what in required():
        pytest.fail(f'{reason}, and GLUON_CLASSICS_REQUIRE={os.environ["GLUON_CLASSICS_REQUIRE"]} '
                    f'requires {what}', pytrace=False)
    pytest.skip(reason)


def no_compiler_status():
    """The kernels' status where no compiler is found: g++ missing, or the $CXX named missing
    (then named in it)."""
    from gluon_classics.accel import build
    if not CXX:
        return build.NO_COMPILER
    return (f"{build.NO_COMPILER_PREFIX}: CXX={CXX!r} is not found (install it, or unset CXX "
            f"to use g++)")


def without_kernels():
    """End a test whose kernel half could not run: there is no C++ compiler here."""
    require_or_skip('kernels', f"no C++ compiler (CXX={CXX or ''!r}, else "
                               f"g++): LeNet's CPU kernels (conv_pool.cc) were neither compiled "
                               f"nor tested here, only the fallback to MXNet's operators")


def idx_bytes(array, magic=None):
    """An IDX file's bytes for a uint8 array (magic 0x08nn: uint8, n dimensions)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(f'>I{array.ndim}I', magic, *array.shape) + array.tobytes()


def write_idx_folder(folder, images, labels, test_images, test_labels):
    """The four IDX files (plain, not gzipped) in ``folder``; images (N, 28, 28) or (N, 1, 28, 28)."""
    os.makedirs(folder, exist_ok=True)
    for name, array in zip(IDX_FILES, (images, labels, test_images, test_labels)):
        array = np.asarray(array)
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(idx_bytes(array[:, 0] if array.ndim == 4 else array))
    return str(folder)


def ends(pid, guard=120):
    """Whether process ``pid`` ends (a zombie has): the kernel says so through a pidfd; the
    guard only stops a hang, it bounds no speed (a killed process ends in milliseconds)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):  # Python 3.8, Linux before 5.3: look at /proc instead
        for _ in range(guard * 10):
            if not runs(pid):
                return True
            time.sleep(0.1)
        return False
    try:
        return bool(select.select([fd], [], [], guard)[0])
    finally:
        os.close(fd)


def runs(pid):
    """Whether process ``pid`` runs (a zombie has ended: no one may have reaped it yet)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except FileNotFoundError:
        return False


def run_cli(capsys, *args):
    """``gluon-classics ARGS`` in-process: (exit status, stdout, stderr)."""
    from gluon_classics import cli
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as stop:  # argparse's errors
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status, err, *words, warnings=False):
    """Exit status 2 and one ``gluon-classics: error:`` line naming each of ``words``; with
    ``warnings``, after any ``gluon-classics: warning:`` lines (tiny runs warn of chance-level
    accuracy). Returns the error line."""
    assert status == 2, err
    lines = err.splitlines()
    assert err.endswith('\n') and lines and lines[-1].startswith('gluon-classics: error: '), err
    assert len(lines) == 1 or warnings and all(
        line.startswith('gluon-classics: warning: ') for line in lines[:-1]), err
    for word in words:
        assert word in lines[-1], (word, err)
    return lines[-1]


def assert_png(path):
    """``path`` is a PNG file (its signature)."""
    with open(path, 'rb') as f:
        assert f.read(8) == PNG, path


def assert_close(got, want, what, rtol=1e-4):
    """Within rtol of want's largest finite magnitude (sums of hundreds of float32 terms);
    NaN, and max pooling's lowest float (a window of NaNs), exactly where want has them."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), f'{what}: NaN elsewhere'
    lowest = np.abs(want) >= np.finfo(np.float32).max
    assert np.array_equal(got[lowest], want[lowest]), f'{what}: not the lowest float'
    plain = ~np.isnan(want) & ~lowest
    if plain.any():
        scale = max(np.abs(want[plain]).max(), 1e-30)
        error = np.abs(got[plain] - want[plain]).max() / scale
        assert error <= rtol, f'{what}: differs by {error:.1e} of its largest value'


def bar_images(n, seed=0, size=28):
    """uint8 images (n, 1, size, size) of noise below 40 whose class (the labels, int32) is the
    row of a bright bar: a LeNet learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 40, (n, 1, size, size)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 + c * (size - 4) // 10
        images[i, 0, row:row + 2, 4:-4] = 255
    return images, labels


def grid_images(n, seed=0):
    """A 10-class set a LeNet learns in a few steps: class k lights block k of a 4x3 grid
    (uint8 images (n, 1, 28, 28), uint8 labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 1, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 4)
        images[i, 0, 2 + 9 * r:8 + 9 * r, 1 + 7 * c:6 + 7 * c] = 230
    return images, labels


def elf(path, sections):
    """A minimal 64-bit little-endian ELF file holding ``sections`` ({name: bytes})."""
    names = b'\0' + b''.join(n.encode() + b'\0' for n in ['.shstrtab', *sections])
    body, headers, offset = b'', [b'\0' * 64], 64
    for k, (name, data) in enumerate([('.shstrtab', names), *sections.items()]):
        name_at = names.index(b'\0' + name.encode() + b'\0') + 1
        headers.append(struct.pack('<IIQQQQIIQQ', name_at, 1, 0, 0, offset + len(body),
                                   len(data), 0, 0, 8, 0))
        body += data + b'\0' * (-len(data) % 8)
    header = b'\x7fELF' + bytes([2, 1, 1]) + b'\0' * 9 + struct.pack(
        '<HHIQQQIHHHHHH', 3, 62, 1, 0, 0, 64 + len(body), 0, 64, 0, 0, 64, len(headers), 1)
    path.write_bytes(header + body + b''.join(headers))
    return str(path)


def fast_objective(net, ctxs, dtype='float32', mode='on'):
    """The accelerator's graph of ``net`` for the chapter's objective, or None: what the
    loop asks ``gluon_classics.accel.objective`` for, with the plain graph as fallback."""
    from gluon_classics.accel import objective as accelerated
    from gluon_classics.training.objective import objective, plain_objective
    return accelerated(net, ctxs, objective, plain_objective(net), dtype=dtype, mode=mode)
