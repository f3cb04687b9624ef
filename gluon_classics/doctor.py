"""What a bug report needs, in one screen: ``gluon-classics doctor [--json]``.

:func:`report` gathers the facts (software, CPU, GPUs and the probe's verdict,
CUDA libraries, where the data would be read from) and a hint for each thing
that is wrong; :func:`format_report` prints one fact per line.
"""
import importlib.metadata
import os
import platform
import sys

from . import amx
from ._backend import PRELOADED, _numpy_too_new, mx
from .data.fashion_mnist import FASHION_MNIST, IDX_FILES, resolve_folder
from .data.idx import IMAGES_MAGIC, LABELS_MAGIC, check_idx_file, find_file
from .accel import bfloat16, build, kernels
from .training.config import resolve_accel
from . import devices
from .utils import cuda
from .devices import cpu_info

__all__ = ['report', 'format_report']

FEATURES = ('CUDA', 'CUDNN', 'NCCL', 'MKLDNN', 'DIST_KVSTORE', 'OPENMP')
# /proc/cpuinfo flags by the names Intel and AMD use in their manuals
ISA = {'AVX2': ('avx2',), 'AVX-512F': ('avx512f',), 'AVX512_BF16': ('avx512_bf16',),
       'AMX': ('amx_tile',)}


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu(cpuinfo='/proc/cpuinfo'):
    model, cores, flags = cpu_info(cpuinfo)
    return dict(model=model, cores=cores,
                isa={name: any(f in flags for f in names) for name, names in ISA.items()})


def _accel_mode():
    try:
        return resolve_accel()
    except ValueError as err:  # a bad $GLUON_CLASSICS_ACCEL: the report still comes
        return f'invalid ({err})'


def _gpus(cuda_build):
    rows = []
    for info in cuda.gpus():
        i = info['index']
        if cuda_build:
            usable, reason = devices.gpu_verdict(i)
        else:
            usable, reason = False, 'this is the CPU build of MXNet'
        rows.append(dict(index=i, name=info['name'],
                         capability='{}.{}'.format(*info['capability']),
                         memory_gib=round(info['memory'] / 2**30, 1), usable=usable,
                         reason=reason))
    return rows


def _data(data_dir):
    """The Fashion-MNIST folder the loader would read (the same two levels as ``train
    --data-dir``), its files, and why any found is damaged (a cheap size check)."""
    folder, base = resolve_folder(FASHION_MNIST['name'], data_dir)
    folder = os.path.abspath(folder)
    files = {f: find_file(folder, f) for f in IDX_FILES}
    damaged = {}
    for name, path in files.items():
        reason = path and check_idx_file(path, IMAGES_MAGIC if '-images-' in name else
                                         LABELS_MAGIC)
        if reason:
            damaged[name] = reason
    # chosen: --data-dir or $GLUON_CLASSICS_DATA (train refuses such a folder when missing),
    # None for Gluon's cache (created on first use)
    return dict(folder=folder, files=files, damaged=damaged, chosen=base)


def report(data_dir=None):
    """The facts of this environment, as a JSON-ready dict with a list of ``hints``.

    Parameters
    ----------
    data_dir : str, optional
        The Fashion-MNIST folder to check (what ``--data-dir`` would pass);
        by default the one the data loader would use.
    """
    from . import __version__
    features = mx.runtime.Features()
    cuda_build = features.is_enabled('CUDA')
    library = mx.base._LIB._name
    images = cuda.kernel_images(library)[1] if cuda_build else {}
    driver = cuda.driver_version()
    facts = dict(
        python=f'{platform.python_version()} ({sys.executable})',
        gluon_classics=__version__,
        mxnet=dict(version=mx.__version__, library=library,
                   features={name: features.is_enabled(name) for name in FEATURES},
                   kernels=cuda.sorted_targets(images)),
        numpy=_version('numpy'), d2l=_version('d2l'),
        cpu=_cpu(), omp_threads={k: os.environ.get(k)
                                 for k in ('OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS')},
        cpu_kernels=kernels.describe(),
        accel=_accel_mode(),
        bfloat16=bfloat16.advice(),
        amx=amx.describe(),
        gpus=_gpus(cuda_build),
        cuda_driver='{}.{}'.format(*driver) if driver else None,
        cuda_libraries={name: dict(version=v, path=p)
                        for name, (v, p) in cuda.loaded_libraries().items()},
        preloaded=list(PRELOADED),
        fashion_mnist=_data(data_dir),
    )
    facts['hints'] = _hints(facts, cuda_build)
    return facts


def _hints(facts, cuda_build):
    hints = []
    if facts['numpy'] and _numpy_too_new(facts['numpy']):
        hints.append(f"numpy {facts['numpy']} is too new for mxnet 1.9.1: "
                     f"pip install numpy==1.23.5")
    for gpu in facts['gpus']:
        if cuda_build and not gpu['usable']:
            hints.append(f"GPU {gpu['index']} is not usable by this MXNet; training uses the "
                         f"CPU (docs/gpu.md says what works on it)")
    if facts['gpus'] and not cuda_build:
        hints.append('MXNet is the CPU build: for the GPU, pip install -r requirements-cu112.txt '
                     'in a separate environment')
    if cuda_build and not facts['gpus']:
        hints.append('MXNet is a CUDA build but the driver shows no GPU: check nvidia-smi '
                     'and CUDA_VISIBLE_DEVICES')
    missing = [f for f, path in facts['fashion_mnist']['files'].items() if path is None]
    data = facts['fashion_mnist']
    if missing and data.get('chosen') and not os.path.isdir(data['folder']):
        hints.append(f"Fashion-MNIST: the folder {data['folder']} does not exist, and train "
                     f"refuses a missing --data-dir (a typo is not created): create it to "
                     f"download the files into it, or name the folder that holds them")
    elif missing:
        where = ('they are downloaded there on first use; offline, put them there' if
                 not data.get('chosen') or os.access(data['folder'], os.W_OK) else
                 'put them there')
        hints.append(f"Fashion-MNIST: {', '.join(missing)} not in {data['folder']}: {where}"
                     + ('' if data.get('chosen') else
                        '; if you train with --data-dir DIR (or GLUON_CLASSICS_DATA), this is '
                        'not that folder: run doctor --data-dir DIR to check it'))
    for name, reason in facts['fashion_mnist']['damaged'].items():
        hints.append(f"Fashion-MNIST: {facts['fashion_mnist']['files'][name]}: {reason}: "
                     f"replace it with a whole copy")
    status = facts['cpu_kernels'] or ''
    if status.startswith(build.NO_COMPILER_PREFIX):
        fix = 'install it or unset CXX' if os.environ.get('CXX') else 'install g++'
        hints.append(f"no C++ compiler: LeNet's conv blocks train on MXNet's operators "
                     f"(same numbers, slower); {fix} for our kernels")
    elif 'GLUON_CLASSICS_CACHE' in status:  # the cache folder: a file, an unwritable HOME...
        hints.append(f"our LeNet kernels are {status}; meanwhile LeNet's conv blocks train on "
                     f"MXNet's operators (same numbers, slower)")
    threads, cores = facts['omp_threads']['OMP_NUM_THREADS'], facts['cpu']['cores']
    if threads and threads.isdigit() and cores and int(threads) > cores:
        hints.append(f'OMP_NUM_THREADS={threads} is more than the {cores} cores: '
                     f'set it to {cores} or fewer')
    return hints


def _yes(flag):
    return 'yes' if flag else 'no'


def format_report(facts):
    """The report as lines of text: one fact per line, then the hints."""
    m, cpu = facts['mxnet'], facts['cpu']
    ptx = [t for t in m['kernels'] if t.startswith('compute_')]
    lines = [
        f"python: {facts['python']}",
        f"gluon_classics: {facts['gluon_classics']} ({os.path.dirname(__file__)})",
        f"mxnet: {m['version']} ({m['library']})",
        'mxnet features: ' + ', '.join(f'{k} {_yes(v)}' for k, v in m['features'].items()),
        'mxnet GPU kernels: ' + (', '.join(m['kernels']) + ('' if ptx else ' (no PTX)')
                                 if m['kernels'] else 'none (CPU build)'),
        f"numpy: {facts['numpy']}",
        f"d2l: {facts['d2l'] or 'not installed'}",
        f"cpu: {cpu['model']}, {cpu['cores']} cores",
        'cpu ISA: ' + ', '.join(f'{k} {_yes(v)}' for k, v in cpu['isa'].items()),
    ]
    omp = facts['omp_threads']
    if not any(omp.values()):  # what _backend does then
        lines.append(f"OMP_NUM_THREADS: not set (MXNet was imported with {cpu['cores']}, "
                     f"one per core)")
    lines += [f'{k}: {v}' for k, v in omp.items() if v]
    lines.append(f"own CPU kernels (LeNet's conv blocks): {facts['cpu_kernels']}")
    lines.append(f"fast path: {facts['accel']}")
    lines.append(facts['bfloat16'])
    lines.append(facts['amx'])
    for g in facts['gpus']:
        verdict = 'usable' if g['usable'] else f"not usable: {g['reason']}"
        lines.append(f"gpu {g['index']}: {g['name']}, compute capability {g['capability']}, "
                     f"{g['memory_gib']} GiB, {verdict}")
    if not facts['gpus']:
        lines.append('gpus: none (no CUDA driver or no GPU visible)')
    lines.append(f"CUDA driver: {facts['cuda_driver'] or 'not found'}")
    for name in ('cudart', 'cudnn', 'nccl'):
        lib = facts['cuda_libraries'].get(name)
        lines.append(f"{name}: {lib['version']} ({lib['path']})" if lib else
                     f"{name}: not loaded" + ('' if m['features']['CUDA'] else ' (CPU build)'))
    if facts['preloaded']:
        lines.append(f"loaded from the nvidia-* wheels: {len(facts['preloaded'])} libraries")
    data = facts['fashion_mnist']
    found = sum(p is not None for p in data['files'].values())
    damaged = f", {len(data['damaged'])} damaged" if data['damaged'] else ''
    lines.append(f"fashion-mnist: {data['folder']} ({found} of {len(data['files'])} files there"
                 f"{damaged})")
    lines += [f'hint: {h}' for h in facts['hints']]
    return lines
