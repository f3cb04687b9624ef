"""The locked environment: the locks agree with setup.cfg, this environment is the lock,
d2l's plotting runs headless in it, and the package builds and refuses Python 3.12.

No resolver runs here (that needs the network): the locks are read as text.
"""
import configparser
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# each lock and the extra choosing its MXNet wheel; every other extra is in both
LOCKS = {'requirements.txt': 'cpu', 'requirements-cu112.txt': 'cu112'}
PIN = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)')
FIX = ('refresh the locks with the command in docs/install.md, "Requirements, extras and '
       'locks" (uv pip compile setup.cfg ...)')


def _setup_cfg():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, 'setup.cfg'))
    return config


def _requirements(text):
    return [Requirement(line) for line in text.splitlines() if line.strip()]


def _extras():
    config = _setup_cfg()
    return {name: _requirements(value) for name, value in config['options.extras_require'].items()}


def _top_level(backend):
    """The requirements a lock is compiled from: install_requires, the backend and the rest."""
    extras = _extras()
    chosen = {name for name in extras if name not in LOCKS.values()} | {backend}
    reqs = _requirements(_setup_cfg()['options']['install_requires'])
    return chosen, reqs + [r for name in sorted(chosen) for r in extras[name]]


def _read_lock(name):
    """(extras named by its header command, {name: version}, {name: has hashes}, direct names)."""
    with open(os.path.join(ROOT, name)) as f:
        lines = f.read().splitlines()
    header = next(line for line in lines if 'uv pip compile' in line)
    pins, hashed, direct, current = {}, {}, set(), None
    for line in lines:
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = match[2]
        elif '--hash=sha256:' in line and current:
            hashed[current] = True
        elif re.match(r'^\s+#\s+(via\s+)?gluon-classics \(setup\.cfg\)', line) and current:
            direct.add(current)
    return set(re.findall(r'--extra (\S+)', header)), pins, hashed, direct


def test_locks_agree_with_setup_cfg():
    for lock, backend in LOCKS.items():
        chosen, reqs = _top_level(backend)
        extras, pins, hashed, direct = _read_lock(lock)
        assert extras == chosen, f'{lock} was compiled with extras {sorted(extras)}, setup.cfg ' \
                                 f'has {sorted(chosen)}: {FIX}'
        locked = {r: pins.get(canonicalize_name(r.name)) for r in reqs}
        wrong = [f'{r} (locked: {v or "missing"})' for r, v in locked.items()
                 if v is None or v not in r.specifier]
        assert not wrong, f'{lock} does not satisfy setup.cfg: {", ".join(wrong)}: {FIX}'
        top = {canonicalize_name(r.name) for r in reqs}
        assert direct == top, f'{lock} lists as direct {sorted(direct - top)} and misses ' \
                              f'{sorted(top - direct)}: {FIX}'
        unhashed = sorted(set(pins) - set(hashed))
        assert not unhashed, f'{lock}: no hashes for {unhashed}: {FIX} (--generate-hashes)'


def test_the_two_locks_differ_only_in_the_backend():
    cpu, gpu = (_read_lock(lock)[1] for lock in LOCKS)
    nvidia = {n for n in gpu if n.startswith('nvidia-')}
    assert set(cpu) ^ set(gpu) == {'mxnet', 'mxnet-cu112'} | nvidia
    differ = {n: (cpu[n], gpu[n]) for n in set(cpu) & set(gpu) if cpu[n] != gpu[n]}
    assert not differ, f'the CPU and GPU locks pin different versions {differ}: {FIX}'


def _installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_this_environment_is_the_lock():
    """What README's install gives: every locked distribution at its locked version."""
    lock = 'requirements-cu112.txt' if _installed('mxnet-cu112') else 'requirements.txt'
    pins = _read_lock(lock)[1]
    drift = [f'{name} {_installed(name) or "missing"} (locked {version})'
             for name, version in sorted(pins.items()) if _installed(name) != version]
    assert not drift, f'this environment is not {lock}: {", ".join(drift)}: ' \
                      f'pip install -r {lock}'


def test_d2l_plots_headless():
    """The d2l benchmark peer's path: d2l's Animator under MPLBACKEND=Agg, points added.

    d2l 1.0.3 pins matplotlib 3.7.2, whose pyplot imports IPython's backend2gui
    once an IPython shell exists (the Animator makes one): IPython 9.16 removed it.
    """
    code = ("from d2l import mxnet as d2l\n"
            "animator = d2l.Animator(xlabel='epoch', xlim=[1, 2], legend=['loss', 'acc'])\n"
            "animator.add(1, (0.9, 0.5))\n"
            "animator.add(2, (0.6, 0.7))\n"
            "print('points', [len(l.get_xdata()) for l in animator.axes[0].get_lines()])\n")
    env = dict(os.environ, MPLBACKEND='Agg')
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
    assert 'points [2, 2]' in result.stdout


def test_python_versions():
    config = _setup_cfg()
    options, metadata = config['options'], config['metadata']
    supported = SpecifierSet(options['python_requires'])
    assert '3.11' in supported and '3.12' not in supported and '3.13' not in supported
    listed = re.findall(r'Python :: (3\.\d+)', metadata['classifiers'])
    assert listed and all(v in supported for v in listed) and '3.11' in listed
    # a public name's first use imports MXNet (PEP 562: --help does not)
    code = ("import sys; sys.version_info = (3, 12, 1, 'final', 0); "
            "from gluon_classics import lenet")
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        'Python 3.12 is too new: mxnet 1.9.1 needs numpy<1.24, which has no build for Python '
        '3.12+; use Python 3.11 (docs/install.md says how to get it)')


def test_wheel_ships_license_version_kernel_source_and_measurements(tmp_path):
    source = tmp_path / 'src'  # a copy: an in-tree build leaves build/ in the checkout
    source.mkdir()
    for name in ('setup.cfg', 'pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, 'gluon_classics'), source / 'gluon_classics',
                    ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                             '--no-build-isolation', '--no-index', '-w', str(tmp_path / 'dist'),
                             str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    from gluon_classics import __version__
    wheel, = (tmp_path / 'dist').glob('*.whl')
    assert wheel.name == f'gluon_classics-{__version__}-py3-none-any.whl'
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = f'gluon_classics-{__version__}.dist-info'
        license_text = z.read(f'{info}/licenses/LICENSE').decode()
        metadata = z.read(f'{info}/METADATA').decode()
        measured = z.read('gluon_classics/accel/bfloat16.json')
    with open(os.path.join(ROOT, 'docs', 'measurements', 'bfloat16.json'), 'rb') as f:
        assert measured == f.read()  # the measured bfloat16 table, not the link
    assert 'Apache License\n                           Version 2.0, January 2004' in license_text
    assert 'gluon_classics/accel/conv_pool.cc' in names
    assert 'Requires-Python: <3.12,>=3.8' in metadata
    assert 'Requires-Dist: mxnet==1.9.1; extra == "cpu"' in metadata


def test_ci_runs_readmes_install_and_test_commands():
    with open(os.path.join(ROOT, 'README.md')) as f:
        readme = f.read()
    start = readme.index('## Install, run, test')
    end = readme.find('\n## ', start + 1)
    section = readme[start:end if end > 0 else len(readme)]
    commands = [line.strip() for line in section.splitlines() if line.startswith('    ')]
    install = next(c for c in commands if c.startswith('pip install '))
    test = next(c for c in commands if 'python -m pytest' in c)
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        ci = [line.strip() for line in f]
    assert install == 'pip install --no-deps . && pip install -r requirements.txt'
    assert install in ci and test in ci, (install, test)
    # what CI installs must be tested: the kernels and the cluster fail where they would skip
    assert ci.index('export GLUON_CLASSICS_REQUIRE=kernels,cluster') < ci.index(test)
