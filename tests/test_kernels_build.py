"""The build of our CPU kernels under faults: concurrent first use, a killed
build, a hanging compiler, a library that does not load, a compiler given as
a command line, leftovers of old builds, the -march switch.

The builds run in child processes (``build`` only: nothing is loaded into
them), so a hang fails the test at its time limit instead of blocking it; the
tests measure no time: the build's own limits and messages say what stopped.
Fake compilers are shell scripts; where they must produce a library they copy
the one this machine built (a plain file where there is no compiler: then the
proof fails, and that failure is what is checked).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gluon_classics.accel import build
from helpers import HAVE_COMPILER, ends, runs, without_kernels


CALL = '''
import json, sys
from gluon_classics.accel import build
build.TIMEOUTS.update(json.loads(sys.argv[1]))
print(json.dumps(getattr(build, sys.argv[2])()))
'''
LOAD = '''
from gluon_classics.accel import kernels
print(kernels.load(), kernels.status())
'''


@pytest.fixture(scope='module')
def real_library():
    """This machine's library (built once into the default cache), or a plain file."""
    path, why = build.library()
    assert path or not HAVE_COMPILER, why
    return path or build.SOURCE


def _env(tmp_path, compiler, **env):
    # -march=native unless a test names one: not the caller's (tests/as_cpu_class.sh sets it)
    inherited = {k: v for k, v in os.environ.items() if k != build.MARCH_ENV}
    return dict(inherited, GLUON_CLASSICS_CACHE=str(tmp_path / 'cache'), CXX=str(compiler),
                **env)


def _call(tmp_path, compiler, what='library', timeouts=None, **env):
    """(what build.<what>() returned in a child, the child's stderr lines)."""
    done = subprocess.run([sys.executable, '-c', CALL, json.dumps(timeouts or {}), what],
                          env=_env(tmp_path, compiler, **env), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr.splitlines()


def _fake(tmp_path, body, version='echo fake-cc 1.0', name='cc'):
    """A compiler script: ``version`` answers --version, ``body`` builds ($out: the -o file)."""
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then {version}; exit 0; fi\n'
                      f'for a; do [ "$prev" = -o ] && out=$a; prev=$a; done\n{body}\n')
    script.chmod(0o755)
    return script


def _until(condition, *children):
    """Wait for ``condition`` while the children run (their own time limits bound it)."""
    while not condition():
        ended = [child.returncode for child in children if child.poll() is not None]
        assert not ended or condition(), f'a child ended (exit status {ended[0]}) before it'
        time.sleep(0.1)


def _lines(path):
    return path.read_text().split() if path.exists() else []


def _files(tmp_path):
    return sorted(os.listdir(tmp_path / 'cache'))


def test_concurrent_first_use_compiles_once_and_both_load(tmp_path, real_library):
    runs, release = tmp_path / 'runs', tmp_path / 'release'
    compiler = _fake(tmp_path, f'echo start >> {runs}\n'
                               f'while [ ! -e {release} ]; do sleep 0.1; done\n'
                               f'cp {real_library} "$out"; echo end >> {runs}')
    children = []
    for i in range(2):
        err = tmp_path / f'stderr{i}'
        with open(err, 'w') as stderr:
            children.append((subprocess.Popen(
                [sys.executable, '-c', LOAD], env=_env(tmp_path, compiler), text=True,
                stdout=subprocess.PIPE, stderr=stderr), err))
        if i == 0:  # the second starts while the first compiles, the cache still empty
            _until(lambda: _lines(runs), children[0][0])
    _until(lambda: 'waiting for another' in children[1][1].read_text()
           or _lines(runs).count('start') > 1, *(child for child, _ in children))
    release.touch()
    outs = [child.communicate(timeout=120)[0].split(' ', 1) for child, _ in children]
    errs = [err.read_text().splitlines() for _, err in children]
    cache = tmp_path / 'cache'
    assert errs[1][:1] == [f"gluon_classics: waiting for another process building LeNet's "
                           f"CPU kernels in {cache}"]
    assert errs[0][0].startswith("gluon_classics: building LeNet's CPU kernels once")
    if HAVE_COMPILER:
        assert _lines(runs) == ['start', 'end']  # once
        library, = cache.glob('*.so')
        assert outs == [['True', f'on ({library})\n']] * 2 and errs[1][1:] == []
    else:  # the first build's library failed its proof: the second tried again, after it
        assert _lines(runs) == ['start', 'end', 'start', 'end']
        assert [out[0] for out in outs] == ['False', 'False'] and not list(cache.glob('*.so'))
        without_kernels()


def test_a_killed_build_leaves_no_lock_that_blocks(tmp_path, real_library):
    pid = tmp_path / 'pid'
    hangs = _fake(tmp_path, f'echo $$ > {pid}; exec sleep 1000', name='hangs')
    killed = subprocess.Popen([sys.executable, '-c', CALL, '{}', 'library'],
                              env=_env(tmp_path, hangs), stderr=subprocess.DEVNULL)
    try:
        _until(lambda: pid.exists() and pid.read_text().strip(), killed)
        killed.send_signal(signal.SIGKILL)  # mid-build: its temporary file and lock file stay
        killed.wait(30)
        assert 'conv_pool.lock' in _files(tmp_path)
        assert any(f.endswith('.tmp') for f in _files(tmp_path))
        copies = _fake(tmp_path, f'cp {real_library} "$out"', name='copies')
        (path, why), stderr = _call(tmp_path, copies)
        assert not any('waiting' in line for line in stderr)  # the dead one's lock is free
        assert (path is not None) == HAVE_COMPILER, why
        if not HAVE_COMPILER:  # what the copy made was no library: it failed its proof
            without_kernels()
    finally:  # the orphaned compiler
        if pid.exists() and runs(int(pid.read_text())):
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_a_library_that_does_not_load_is_never_cached(tmp_path):
    """A compiler that exits 0 with a broken file: the proof in a child refuses it,
    each time (nothing is left to keep every later run off)."""
    runs = tmp_path / 'runs'
    compiler = _fake(tmp_path, f'echo run >> {runs}; echo not a library > "$out"')
    for attempt in (1, 2):
        (path, why), _ = _call(tmp_path, compiler)
        log, = (tmp_path / 'cache').glob('*.log')
        assert path is None and why.startswith(
            f'off: what {compiler} built does not load in MXNet (see {log}): ')
        assert why.endswith('.tmp: file too short') and why.split(': ')[-1] in log.read_text()
        assert _files(tmp_path) == sorted([log.name, 'conv_pool.lock'])
        assert _lines(runs) == ['run'] * attempt


def _hangs_with_a_child(tmp_path):
    """A compiler that starts a grandchild and waits on it: $pid holds the grandchild's."""
    pid = tmp_path / 'grandchild'
    return f'sleep 1000 & echo $! > {pid}; wait', pid


def test_a_hanging_version_answer_times_out_and_dies_whole(tmp_path):
    hang, pid = _hangs_with_a_child(tmp_path)
    compiler = _fake(tmp_path, 'exit 1', version=hang)
    try:
        says, _ = _call(tmp_path, compiler, 'describe', dict(version=1))
        assert says == f'off: {compiler} --version did not answer in 1 s'  # its 1 s limit
        assert ends(int(pid.read_text()))  # the grandchild died with it
    finally:
        if pid.exists() and runs(int(pid.read_text())):
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_a_hanging_build_is_killed_with_its_children(tmp_path):
    hang, pid = _hangs_with_a_child(tmp_path)
    compiler = _fake(tmp_path, hang)
    try:
        (path, why), stderr = _call(tmp_path, compiler, timeouts=dict(build=2))
        log, = (tmp_path / 'cache').glob('*.log')
        assert path is None and why == f'off: {compiler} did not finish in 2 s (see {log})'
        assert stderr == [f"gluon_classics: building LeNet's CPU kernels once (about 10 s; "
                          f"cached in {tmp_path / 'cache'})"]
        assert ends(int(pid.read_text()))  # cc1plus's part
        assert _files(tmp_path) == sorted([log.name, 'conv_pool.lock'])
        assert 'killed (with its process group) after 2 s' in log.read_text()
    finally:
        if pid.exists() and runs(int(pid.read_text())):
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_a_read_only_cache_folder_serves_its_library_but_builds_nothing(
        tmp_path, monkeypatch, real_library):
    cache = tmp_path / 'cache'
    monkeypatch.setenv('GLUON_CLASSICS_CACHE', str(cache))
    monkeypatch.setenv('CXX', str(_fake(tmp_path, 'exit 1')))
    path = build.plan()[2]
    cache.mkdir(mode=0o700)
    access = os.access  # as on a read-only mount (root may write anywhere else)
    monkeypatch.setattr(os, 'access', lambda p, mode, **kw: (
        not mode & os.W_OK and access(p, mode, **kw)) if str(p) == str(cache) else
        access(p, mode, **kw))
    says = f'off: the cache folder {cache} is not writable; set GLUON_CLASSICS_CACHE to a ' \
           f'writable folder of your own'
    assert build.describe() == says and build.library() == (None, says)
    assert os.listdir(cache) == []
    shutil.copy(real_library, path)
    os.chmod(path, 0o644)
    assert build.describe() == f'on ({path})' and build.library() == (path, None)


def test_cxx_is_a_command_line(tmp_path, monkeypatch):
    env = shutil.which('env')
    monkeypatch.setenv('CXX', 'env g++ -std=c++17')
    assert build.find_compiler() == [env, 'g++', '-std=c++17']
    monkeypatch.setenv('CXX', 'no-such-ccache g++')
    assert build.find_compiler() is None and build.plan()[2] == (
        "off: no C++ compiler: CXX='no-such-ccache g++' is not found (install it, or unset CXX "
        "to use g++)")  # CXX is set: named (issue 35, 10)
    monkeypatch.setenv('CXX', '"g++')
    assert build.plan()[2] == 'off: CXX=\'"g++\' is not a command line (No closing quotation)'
    # the words reach the compiler all the same (env runs them: here a missing one)
    says, _ = _call(tmp_path, 'env no-such-compiler', 'describe')
    assert says.startswith(f'off: {env} no-such-compiler --version failed (exit status 127')
    if not HAVE_COMPILER:
        without_kernels()
    (path, why), _ = _call(tmp_path, 'env g++')
    assert path is not None, why
    log = open(path[:-len('.so')] + '.log').read()
    assert log.startswith(f'$ {env} g++ -O3 -march=native ')


def test_leftovers_of_killed_builds_and_old_keys_go_only_ours(tmp_path, real_library):
    cache = tmp_path / 'cache'
    cache.mkdir(mode=0o700)
    old, recent = time.time() - 40 * 86400, time.time() - 86400
    planted = {  # name: (age, removed)
        f'conv_pool-{"a" * 16}.so': (old, True), f'conv_pool-{"a" * 16}.log': (old, True),
        f'conv_pool-{"b" * 16}.so': (recent, False), f'conv_pool-{"b" * 16}.log': (old, False),
        f'conv_pool-{"c" * 16}.log': (old, True),
        f'conv_pool-{"c" * 16}-k1ll3d_.tmp': (time.time() - 1200, True),
        f'conv_pool-{"d" * 16}-bu1ld1n.tmp': (time.time(), False),
        'tmpab_cd123.so': (time.time() - 1200, True),  # an older version's temporary file
        'notes.txt': (old, False), 'conv_pool-old.so': (old, False),
    }
    for name, (age, _) in planted.items():
        (cache / name).write_text(name)
        os.utime(cache / name, (age, age))
    elsewhere = tmp_path / 'elsewhere.so'
    elsewhere.write_text('not ours')
    os.symlink(elsewhere, cache / f'conv_pool-{"e" * 16}.so')
    os.utime(cache / f'conv_pool-{"e" * 16}.so', (old, old), follow_symlinks=False)
    os.mkdir(cache / f'conv_pool-{"f" * 16}.so')
    compiler = _fake(tmp_path, f'cp {real_library} "$out"')
    (_, _, planned), _ = _call(tmp_path, compiler, 'plan')
    (path, why), _ = _call(tmp_path, compiler)
    assert (path is not None) == HAVE_COMPILER, why
    kept = {name for name, (_, removed) in planted.items() if not removed}
    built = {f for f in _files(tmp_path) if f.startswith(os.path.basename(planned)[:-3] + '.')}
    assert set(_files(tmp_path)) == kept | built | {
        'conv_pool.lock', f'conv_pool-{"e" * 16}.so', f'conv_pool-{"f" * 16}.so'}
    assert elsewhere.read_text() == 'not ours'


def test_march_picks_the_build_and_is_part_of_its_key(tmp_path):
    compiler = _fake(tmp_path, 'exit 1')
    native, _ = _call(tmp_path, compiler, 'plan')
    haswell, _ = _call(tmp_path, compiler, 'plan', GLUON_CLASSICS_MARCH='haswell')
    assert native[:2] == haswell[:2] and native[2] != haswell[2]
    says, _ = _call(tmp_path, compiler, 'describe', GLUON_CLASSICS_MARCH='haswell')
    assert says == f'on, compiled by {compiler} -march=haswell on first use into {haswell[2]}'
    (_, why), _ = _call(tmp_path, compiler, GLUON_CLASSICS_MARCH='haswell')
    log, = (tmp_path / 'cache').glob('*.log')
    assert ' -march=haswell ' in log.read_text() and why.startswith(f'off: {compiler} failed')
    says, _ = _call(tmp_path, compiler, 'describe', GLUON_CLASSICS_MARCH='haswell; rm -rf ~')
    assert says == "off: GLUON_CLASSICS_MARCH='haswell; rm -rf ~' is not a -march name " \
                   "(native, haswell, skylake-avx512, ...)"
