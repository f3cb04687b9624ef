"""Imports point down, with no circles (issue 34).

``lint-imports`` checks the contracts in setup.cfg: the layers of gluon_classics, no circle
between siblings at any depth, private modules used from within their package only, and
gluon_classics importing neither the benchmarks nor dev. Beside it, a circle between single
modules anywhere (grimp counts the imports inside functions too), and the notebooks, the
benchmarks and dev importing only public names of gluon_classics.
"""
import ast
import glob
import json
import os
import subprocess
import sys
import textwrap

import grimp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('gluon_classics', 'benchmarks', 'dev')  # setup.cfg's root_packages


def lint_imports(folder):
    """``lint-imports`` run in ``folder`` on its setup.cfg: (exit status, what it printed)."""
    script = os.path.join(os.path.dirname(sys.executable), 'lint-imports')
    env = dict(os.environ, PYTHONPATH=folder)  # this checkout's packages, not installed ones
    done = subprocess.run([script if os.path.exists(script) else 'lint-imports', '--no-cache',
                           '--no-logo'], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout + done.stderr


def import_circles(folder, packages):
    """Each set of modules that import one another (a strongly connected component of more
    than one module), with one circle through it, as 'a -> b -> a'."""
    sys.path.insert(0, folder)
    try:
        graph = grimp.build_graph(*packages, cache_dir=None)
    finally:
        sys.path.remove(folder)
    circles = {}
    for module in sorted(graph.modules):
        both_ways = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if both_ways and not any(module in c for c in circles):
            other = min(both_ways)
            there = graph.find_shortest_chain(importer=module, imported=other)
            back = graph.find_shortest_chain(importer=other, imported=module)
            circles[frozenset(both_ways | {module})] = ' -> '.join(there + back[1:])
    return sorted(circles.values())


def private_uses(source, filename):
    """'file:line: what' for each import of a private module or name of gluon_classics
    (``_x``, not ``__x__``), and each ``gc._x`` of a name bound to gluon_classics."""
    def private(name):
        return any(p.startswith('_') and not p.endswith('__') for p in name.split('.'))

    found, aliases, tree = [], set(), ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'gluon_classics':
                    aliases.add(alias.asname or 'gluon_classics')
                    if private(alias.name):
                        found.append(f'{filename}:{node.lineno}: import {alias.name}')
        elif isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] == \
                'gluon_classics':
            names = [a.name for a in node.names if private(a.name)]
            if private(node.module) or names:
                found.append(f'{filename}:{node.lineno}: from {node.module} import '
                             f'{", ".join(names or [a.name for a in node.names])}')
    for node in ast.walk(tree):  # then the names bound to it
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in aliases and private(node.attr):
            found.append(f'{filename}:{node.lineno}: {node.value.id}.{node.attr}')
    return found


def notebook_code(path):
    """A notebook's code cells as one Python source, IPython's magics and shell lines out."""
    with open(path) as f:
        cells = json.load(f)['cells']
    lines = [line for cell in cells if cell['cell_type'] == 'code'
             for line in ''.join(cell['source']).splitlines()]
    return '\n'.join('' if line.lstrip().startswith(('%', '!')) else line for line in lines)


def test_lint_imports_keeps_every_contract():
    code, printed = lint_imports(ROOT)
    assert code == 0, f'lint-imports (contracts in setup.cfg) failed:\n{printed}'
    with open(os.path.join(ROOT, 'setup.cfg')) as f:
        contracts = f.read().count('[importlinter:contract:')
    assert f'Contracts: {contracts} kept, 0 broken.' in printed, printed  # each one ran


def test_no_module_is_on_an_import_circle():
    circles = import_circles(ROOT, PACKAGES)
    assert not circles, 'import circles (break each by moving what both sides need into the ' \
                        'lower module):\n' + '\n'.join(circles)


def test_notebooks_benchmarks_and_dev_use_only_public_names():
    """lint-imports sees modules only; here the names imported from them too."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'notebooks', '*.ipynb'))):
        found += private_uses(notebook_code(path), os.path.relpath(path, ROOT))
    for folder in ('notebooks', 'benchmarks', 'dev'):
        for path in sorted(glob.glob(os.path.join(ROOT, folder, '**', '*.py'), recursive=True)):
            with open(path) as f:
                found += private_uses(f.read(), os.path.relpath(path, ROOT))
    assert not found, 'private parts of gluon_classics in use outside it:\n' + '\n'.join(found)


def test_a_breach_of_each_kind_is_caught(tmp_path):
    """The checks above fail on what they exist to catch, here in a package of three layers."""
    package = tmp_path / 'layered'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'top.py').write_text('from . import middle\n')
    (package / 'middle.py').write_text('from . import _bottom\n')
    (package / '_bottom.py').write_text('def f():\n    from . import top  # up, and a circle\n')
    (tmp_path / 'setup.cfg').write_text(textwrap.dedent('''
        [importlinter]
        root_packages =
            layered
        [importlinter:contract:layers]
        name = layers
        type = layers
        containers = layered
        layers =
            top
            middle
            _bottom
    '''))
    code, printed = lint_imports(str(tmp_path))
    assert code == 1 and 'layered._bottom is not allowed to import layered.top' in printed, \
        printed
    assert import_circles(str(tmp_path), ['layered']) == [
        'layered._bottom -> layered.top -> layered.middle -> layered._bottom']
    source = ('import gluon_classics as gc\nfrom gluon_classics import lenet, _lazy\n'
              'from gluon_classics._backend import mx\nimport gluon_classics.utils._x\n'
              'print(gc._NAMES, gc.__version__)\n')
    assert private_uses(source, 'nb') == [
        'nb:2: from gluon_classics import _lazy', 'nb:3: from gluon_classics._backend import mx',
        'nb:4: import gluon_classics.utils._x', 'nb:5: gc._NAMES']
