"""Run the chapter notebooks headless (nbclient), at the small size the tests use or in full.

    python notebooks/run.py --small --data-dir ../shared/data            # both, a few minutes
    python notebooks/run.py lenet --data-dir ../shared/data --out runs/nb
    python notebooks/run.py --publish --data-dir ../shared/data           # docs/notebooks/

Each executed notebook, with its outputs, is written to ``--out`` (default
``runs/notebooks``); the committed notebooks stay without outputs. Parameters
are injected in a cell right after the cell tagged ``parameters``, papermill
style. ``--data-dir`` is the folder holding ``fashion-mnist/`` (default
``$GLUON_CLASSICS_DATA``). ``--publish`` runs them in full into ``docs/notebooks``,
each with a first cell saying where and when it ran, and an HTML copy (nbconvert),
so their figures show in a repository browser.
"""
import argparse
import datetime
import os
import platform
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL = 'python3'
PUBLISHED = os.path.join(os.path.dirname(HERE), 'docs', 'notebooks')
BANNER = 'published-banner'  # the tag of the cell --publish puts first
CELL_TIMEOUT = 300  # seconds per cell; the slowest cell takes well under a minute at SMALL
FULL_CELL_TIMEOUT = 2 * 3600  # in full the small AlexNet's training is one cell: 10+ minutes

# Small enough for CI on two CPU cores, large enough that every section runs.
SMALL = {
    'lenet.ipynb': dict(NUM_EPOCHS=2, NUM_TRAIN_EXAMPLES=3000, NUM_TEST_EXAMPLES=1000,
                        EXERCISE_EPOCHS=1),
    # the small AlexNet on two batches of 128; one timed 224x224 step of the full one
    'alexnet.ipynb': dict(NUM_EPOCHS=1, NUM_TRAIN_EXAMPLES=256, NUM_TEST_EXAMPLES=256,
                          PROBE_IMAGES=16),
}


def inject_parameters(nb, params):
    """Insert a cell setting ``params`` right after the cell tagged ``parameters``."""
    index = next((i for i, c in enumerate(nb.cells)
                  if 'parameters' in c.metadata.get('tags', [])), None)
    if index is None:
        raise ValueError('the notebook has no cell tagged "parameters"')
    cell = nbformat.v4.new_code_cell('\n'.join(f'{k} = {v!r}' for k, v in params.items()))
    cell.metadata['tags'] = ['injected-parameters']
    nb.cells.insert(index + 1, cell)
    return nb


def execute(name, params, cwd, timeout=CELL_TIMEOUT):
    """Execute ``notebooks/<name>`` with ``params`` in folder ``cwd``; return the notebook."""
    nb = inject_parameters(nbformat.read(os.path.join(HERE, name), as_version=4), params)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, allow_errors=False,
                            resources={'metadata': {'path': cwd}})
    start, nb.metadata['load_average'] = time.time(), os.getloadavg()[0]
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    nb.metadata['execution_seconds'] = time.time() - start
    return nb


def banner(nb, name, small):
    """Put first a cell saying how, where and when ``nb`` ran (machine, ISA, versions)."""
    import mxnet
    from gluon_classics.devices import cpu_info
    model, cores, flags = cpu_info()
    isa = ', '.join(n for n, f in (('AVX2', 'avx2'), ('AVX-512F', 'avx512f'),
                                   ('AVX512_BF16', 'avx512_bf16'), ('AMX', 'amx_tile'))
                    if f in flags) or 'none of AVX2/AVX-512'
    size = 'the small test size' if small else 'its default (full) size'
    load = nb.metadata['load_average']
    busy = ' (other jobs shared the CPUs: its timings are not the machine\'s)' \
        if load > 0.5 * cores else ''
    cell = nbformat.v4.new_markdown_cell(
        f'*Executed by `python notebooks/run.py --publish` at {size} on '
        f'{datetime.date.today().isoformat()}: {model}, {cores} logical CPUs ({isa}), '
        f'load average {load:.1f} at the start{busy}, Python {platform.python_version()}, '
        f'MXNet {mxnet.__version__}; it ran '
        f'{nb.metadata["execution_seconds"] / 60:.1f} minutes. The source, without outputs, '
        f'is [notebooks/{name}](../../notebooks/{name}).*')
    cell.metadata['tags'] = [BANNER]
    nb.cells.insert(0, cell)
    return nb


def write_html(nb, path):
    """nbconvert's HTML of ``nb`` (images inline) to ``path``."""
    from nbconvert import HTMLExporter
    from gluon_classics.utils.outputs import write_text
    body, _ = HTMLExporter().from_notebook_node(nb)
    write_text(path, body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('names', nargs='*', help='lenet, alexnet (default both)')
    parser.add_argument('--small', action='store_true', help="the tests' small size")
    parser.add_argument('--data-dir', default=os.environ.get('GLUON_CLASSICS_DATA'),
                        help='folder holding fashion-mnist/ (default $GLUON_CLASSICS_DATA)')
    parser.add_argument('--out', default=None,
                        help='where executed copies go (default runs/notebooks; with '
                             '--publish docs/notebooks)')
    parser.add_argument('--publish', action='store_true',
                        help='a first cell saying where and when they ran, and HTML copies: '
                             'for docs/notebooks')
    args = parser.parse_args(argv)
    args.out = args.out or (PUBLISHED if args.publish else 'runs/notebooks')
    root = os.path.dirname(HERE)  # gluon_classics from this checkout, here and in the kernels
    sys.path.insert(0, root)
    os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')]))
    from gluon_classics.utils.outputs import OutputError, check_output, write_text
    names = [n + '.ipynb' for n in args.names] or list(SMALL)
    unknown = [n for n in names if n not in SMALL]
    if unknown:
        parser.error(f'unknown notebook(s) {", ".join(unknown)}: choose lenet or alexnet')
    try:
        paths = [check_output(os.path.join(args.out, n), '--out') for n in names]
        for path in paths if args.publish else ():
            check_output(path[:-len('.ipynb')] + '.html', '--out')
    except OutputError as err:
        parser.exit(2, f'run.py: error: {err}\n')
    for name, path in zip(names, paths):
        params = dict(SMALL[name]) if args.small else {}
        if args.data_dir:
            params['DATA_DIR'] = os.path.abspath(args.data_dir)  # the kernel runs elsewhere
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            nb = execute(name, params, os.path.dirname(path),
                         CELL_TIMEOUT if args.small else FULL_CELL_TIMEOUT)
        except CellExecutionError as err:
            parser.exit(1, f'run.py: {name} failed: {str(err).strip().splitlines()[-1]}\n')
        if args.publish:
            banner(nb, name, args.small)
            write_html(nb, path[:-len('.ipynb')] + '.html')
        write_text(path, nbformat.writes(nb))
        print(f'{name}: ran in {nb.metadata["execution_seconds"]:.0f} s, wrote {path}')


if __name__ == '__main__':
    main()
