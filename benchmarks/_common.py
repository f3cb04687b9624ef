"""Shared helpers of the benchmark scripts: IDX reading, the JSON-line protocol, summaries.

Pure numpy and the standard library on purpose: ``torch_reference.py`` imports
this module and must not load MXNet (two OpenMP runtimes in one process).

Each peer runs in its own subprocess and prints one ``BENCH_JSON {...}`` line
per epoch (``kind: "epoch"``) and one per run (``kind: "run"``); the parent
collects them with :func:`run_peer`.
"""
import gzip
import json
import os
import statistics
import subprocess
import sys

__all__ = ['DEFAULT_DATA_DIR', 'read_fashion_mnist', 'emit', 'run_peer', 'summarize',
           'format_table', 'wall_examples_per_sec', 'machine_lines']

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The shared offline copy beside the repository, then Gluon's cache.
DEFAULT_DATA_DIR = next((d for d in (os.path.join(REPO, '..', 'shared', 'data', 'fashion-mnist'),
                                     os.path.expanduser('~/.mxnet/datasets/fashion-mnist'))
                         if os.path.isdir(d)), os.path.join(REPO, '..', 'shared', 'data',
                                                            'fashion-mnist'))
PREFIX = 'BENCH_JSON '
IDX_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
             't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _read_idx(path):
    import numpy as np
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_fashion_mnist(data_dir):
    """The four IDX files of ``data_dir`` (``.gz`` or not) as numpy arrays.

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels)
        uint8 ``(N, 28, 28)`` images and uint8 ``(N,)`` labels.
    """
    arrays = []
    for name in IDX_FILES:
        path = os.path.join(data_dir, name + '.gz')
        if not os.path.exists(path):
            path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f'{name}[.gz] not found in {data_dir} (use --data-dir)')
        arrays.append(_read_idx(path))
    return (arrays[0], arrays[1]), (arrays[2], arrays[3])


def add_run_arguments(ap):
    """The LeNet run settings bench_lenet.py passes on to every peer's own script."""
    ap.add_argument('--data-dir', default=DEFAULT_DATA_DIR)
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--lr', type=float, default=0.9)
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--seed', type=int, default=0)


def emit(**record):
    """Print one protocol line (flushed, so the parent sees it even if we die later)."""
    print(PREFIX + json.dumps(record), flush=True)


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


def wall_examples_per_sec(epochs):
    """All training examples over all training wall time (loading included, evaluation not)."""
    return sum(e['examples'] for e in epochs) / sum(e['train_wall_s'] for e in epochs)


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
import os, mxnet as mx
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
                             timeout=120, env=dict(os.environ, **(env or {})))
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)


def machine_lines():
    """Lines naming the CPU, its ISA and the MXNet/PyTorch/oneDNN versions that ran."""
    import re

    from gluon_classics.utils.devices import cpu_info
    model, _, flags = cpu_info()
    yes = lambda *names: 'yes' if all(n in flags for n in names) else 'no'  # noqa: E731
    avx512 = yes('avx512f')
    if avx512 == 'yes':
        parts = ('avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni')
        avx512 += ' (' + '/'.join(n[6:].lstrip('_') for n in parts if n in flags) + ')'
    lines = [f'CPU: {model}, {os.cpu_count()} logical CPUs; AVX2 {yes("avx2")}, '
             f'AVX-512 {avx512}, AVX512_BF16 {yes("avx512_bf16")}, AMX {yes("amx_tile")}']
    mx_out = _probe(_MXNET_PROBE, {'DNNL_VERBOSE': '1', 'MKLDNN_VERBOSE': '1'})
    version = re.search(r'MXNET_VERSION (\S+)', mx_out)
    dnnl = re.search(r'oneDNN (v[\d.]+)', mx_out)
    isa = re.search(r'info,cpu,isa:([^\n]*)', mx_out)
    isa = isa.group(1).strip() if isa else '?'
    lines.append(f'MXNet {version.group(1) if version else "not found"}, oneDNN '
                 f'{dnnl.group(1) if dnnl else "?"} (its ISA: {isa})')
    torch = re.search(r'TORCH (\S+) (\S+) (\S+)', _probe(_TORCH_PROBE))
    lines.append(f'PyTorch {torch.group(1)}, oneDNN {torch.group(2)} (CPU capability: '
                 f'{torch.group(3)})' if torch else 'PyTorch: not installed')
    return lines
