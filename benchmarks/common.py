"""What every benchmark shares: the data, the ``BENCH_JSON`` protocol, tables, the machine.

No MXNet and no PyTorch at import: the PyTorch peers import this module, and the two
frameworks bring different OpenMP runtimes. Each peer runs in its own process and prints
one ``BENCH_JSON {...}`` line per record; the parent collects them with :func:`run_peer`.
"""
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = 'BENCH_JSON '
INSTALL_TORCH = 'pip install torch==2.13.0'  # a benchmark peer, never a dependency


def default_data_dir():
    """``$GLUON_CLASSICS_DATA/fashion-mnist``, else the shared copy beside the repository,
    else Gluon's cache."""
    base = os.environ.get('GLUON_CLASSICS_DATA')
    if base:
        return os.path.join(os.path.expanduser(base), 'fashion-mnist')
    shared = os.path.join(REPO, '..', 'shared', 'data', 'fashion-mnist')
    cache = os.path.expanduser('~/.mxnet/datasets/fashion-mnist')
    return os.path.abspath(shared if os.path.isdir(shared) or not os.path.isdir(cache)
                           else cache)


def add_data_argument(ap):
    ap.add_argument('--data-dir', default=default_data_dir(), type=_folder,
                    help='the folder of the four Fashion-MNIST IDX files (default: '
                         '$GLUON_CLASSICS_DATA/fashion-mnist, else ../shared/data/fashion-mnist, '
                         'else ~/.mxnet/datasets/fashion-mnist)')


def add_peer_arguments(ap):
    """A peer's settings, which its parent passes on: the model and its recipe."""
    ap.add_argument('model', choices=('lenet', 'alexnet'))
    add_data_argument(ap)
    ap.add_argument('--epochs', type=int, default=10, help='LeNet: epochs')
    ap.add_argument('--steps', type=int, default=3, help='AlexNet: timed steps after 1 warm-up')
    ap.add_argument('--lr', type=float, default=None, help='default: 0.9 LeNet, 0.01 AlexNet')
    ap.add_argument('--batch-size', type=int, default=None, help='default: 256 / 128')
    ap.add_argument('--resize', type=int, default=224, help='AlexNet: the image side')
    ap.add_argument('--seed', type=int, default=0)
    add_subset_argument(ap)


def add_subset_argument(ap):
    ap.add_argument('--num-examples', type=int, default=None, metavar='N',
                    help='train on N examples only (the same N for every peer: the first N of '
                         "a permutation seeded 0, ArrayLoader.subset's); for smoke runs")


def recipe(args):
    """``args`` with the model's defaults filled in: the chapters' lr and batch size."""
    lenet = args.model == 'lenet'
    args.lr = args.lr if args.lr is not None else 0.9 if lenet else 0.01
    args.batch_size = args.batch_size or (256 if lenet else 128)
    return args


def peer_options(args, **extra):
    """The command-line options that give a peer ``args``'s recipe (and ``extra``)."""
    options = dict(data_dir=args.data_dir, lr=args.lr, batch_size=args.batch_size,
                   seed=args.seed, num_examples=getattr(args, 'num_examples', None), **extra)
    return [a for k, v in options.items() if v is not None
            for a in (['--' + k.replace('_', '-')] + ([] if v is True else [str(v)]))]


def _folder(path):
    return os.path.abspath(os.path.expanduser(path))


def _idx():
    """gluon_classics/data/idx.py, loaded by its path with the errors.py it imports: they
    need numpy only, while importing them through the package would load MXNet into the
    PyTorch peers."""
    if 'gluon_classics.data.idx' in sys.modules:
        return sys.modules['gluon_classics.data.idx']
    stubs = [name for name in ('gluon_classics', 'gluon_classics.data') if name not in sys.modules]
    for name in stubs:  # the package's folders, without its __init__ (which loads MXNet)
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__path__ = []
    try:
        if 'gluon_classics.errors' not in sys.modules:
            _load('gluon_classics.errors', 'errors.py')
        return _load('gluon_classics.data.idx', 'data', 'idx.py')
    finally:  # a later import of the real package finds these two modules, not the stubs
        for name in stubs:
            del sys.modules[name]


def _load(name, *path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'gluon_classics', *path))
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_fashion_mnist(data_dir, num_examples=None):
    """The four IDX files of ``data_dir`` (``.gz`` or not), checked by
    ``gluon_classics.data.idx``: ``(train_x, train_y), (test_x, test_y)``, uint8
    ``(N, 1, 28, 28)`` images and int32 labels. A missing file stops with one line.
    ``num_examples``: the training examples ``ArrayLoader.subset(num_examples, seed=0)``
    keeps, in their order in the file."""
    idx = _idx()
    splits = []
    for split in ('train', 't10k'):
        names = (f'{split}-images-idx3-ubyte', f'{split}-labels-idx1-ubyte')
        paths = [idx.find_file(data_dir, name) for name in names]
        for name, path in zip(names, paths):
            if path is None:
                sys.exit(f'{name}[.gz] not found in {data_dir}: give the Fashion-MNIST folder '
                         f'with --data-dir')
        try:
            splits.append(idx.read_idx_pair(*paths))
        except idx.DataError as err:
            sys.exit(f'{err} (give another copy with --data-dir)')
    if num_examples:
        import numpy as np
        (x, y), n = splits[0], len(splits[0][0])
        if not 0 < num_examples <= n:
            sys.exit(f'--num-examples must be in 1..{n}, got {num_examples}')
        keep = np.sort(np.random.default_rng(0).permutation(n)[:num_examples])
        splits[0] = (x[keep], y[keep])
    return splits[0], splits[1]


def emit(**record):
    """Print one protocol line (flushed, so the parent sees it even if we die later)."""
    print(PREFIX + json.dumps(record), flush=True)


def module_argv(module, *args):
    """``python -m module args...``: a peer's command line (see :func:`run_peer`). It runs
    in the repository's root, whose gluon_classics and benchmarks come first on its path."""
    return ['-m', module] + [str(a) for a in args]


def run_peer(argv, env=None, echo=True, timeout=None):
    """Run ``python argv...`` and return its protocol records (dicts).

    Other output is echoed (indented) when ``echo``; a non-zero exit status
    raises ``RuntimeError`` with the tail of the output.
    """
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=dict(os.environ, **(env or {})))
    records, tail = [], []
    for line in proc.stdout:
        if line.startswith(PREFIX):
            records.append(json.loads(line[len(PREFIX):]))
        else:
            tail = (tail + [line])[-30:]
            if echo:
                sys.stdout.write('    ' + line)
                sys.stdout.flush()
    if proc.wait(timeout=timeout) != 0:
        raise RuntimeError(f'{" ".join(argv)} exited with {proc.returncode}:\n{"".join(tail)}')
    return records


def threads(asked):
    """OMP_NUM_THREADS of every peer: ``--threads``, else the environment's, else 2."""
    return str(asked or os.environ.get('OMP_NUM_THREADS') or 2)


def torch_threads(asked):
    return int(asked or os.environ.get('OMP_NUM_THREADS') or 2)


def torch_installed():
    """Whether PyTorch can be found, without importing it (its OpenMP is not MXNet's)."""
    try:
        return importlib.util.find_spec('torch') is not None
    except (ImportError, ValueError):
        return False


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return 'n/a'


def now():
    return time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())


def summarize(values):
    """(min, median, max) of a non-empty list."""
    return min(values), statistics.median(values), max(values)


def format_table(rows, headers):
    """A plain-text table; ``rows`` are lists of strings."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    line = lambda r: '  '.join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return '\n'.join([line(headers), line(['-' * w for w in widths])] + [line(r) for r in rows])


# Each runtime is asked in its own process: MXNet and PyTorch bring different OpenMP runtimes.
_MXNET_PROBE = """
import mxnet as mx
x = mx.nd.ones((1, 8, 8, 8)); w = mx.nd.ones((8, 8, 3, 3))
mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=8, no_bias=True).wait_to_read()
print('MXNET_VERSION', mx.__version__)
"""
_TORCH_PROBE = """
import re, torch
config = torch.__config__.show()
dnnl = re.search(r'MKL-DNN (v[\\d.]+)', config)
isa = re.search(r'CPU capability usage: (\\S+)', config)
print('TORCH', torch.__version__, dnnl.group(1) if dnnl else '?', isa.group(1) if isa else '?')
"""


def _probe(code, env=None):
    try:
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             timeout=120, cwd=REPO, env=dict(os.environ, **(env or {})))
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)


def cpu():
    """``gluon_classics.devices.cpu_info()``: model, logical CPUs, ISA flags.

    Loads MXNet: parents and MXNet peers only."""
    from gluon_classics.devices import cpu_info
    return cpu_info()


def machine_lines():
    """Lines naming the CPU, its ISA and the MXNet/PyTorch/oneDNN versions that ran."""
    model, cpus, flags = cpu()
    yes = lambda *names: 'yes' if all(n in flags for n in names) else 'no'  # noqa: E731
    avx512 = yes('avx512f')
    if avx512 == 'yes':
        parts = ('avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni')
        avx512 += ' (' + '/'.join(n[6:].lstrip('_') for n in parts if n in flags) + ')'
    lines = [f'CPU: {model}, {cpus} logical CPUs; AVX2 {yes("avx2")}, '
             f'AVX-512 {avx512}, AVX512_BF16 {yes("avx512_bf16")}, AMX {yes("amx_tile")}']
    mx_out = _probe(_MXNET_PROBE, {'DNNL_VERBOSE': '1', 'MKLDNN_VERBOSE': '1'})
    version = re.search(r'MXNET_VERSION (\S+)', mx_out)
    dnnl = re.search(r'oneDNN (v[\d.]+)', mx_out)
    isa = re.search(r'info,cpu,isa:([^\n]*)', mx_out)
    isa = isa.group(1).strip() if isa else '?'
    lines.append(f'MXNet {version.group(1) if version else "not found"}, oneDNN '
                 f'{dnnl.group(1) if dnnl else "?"} (its ISA: {isa})')
    torch = re.search(r'TORCH (\S+) (\S+) (\S+)', _probe(_TORCH_PROBE)) \
        if torch_installed() else None
    lines.append(f'PyTorch {torch.group(1)}, oneDNN {torch.group(2)} (CPU capability: '
                 f'{torch.group(3)})' if torch else 'PyTorch: not installed')
    return lines
