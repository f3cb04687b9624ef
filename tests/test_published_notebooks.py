"""docs/notebooks: the chapter notebooks as published, executed, with their figures.

They must be the current notebooks run (``python notebooks/run.py --publish``):
the same code cells, every cell run without an error, every picture there, and
an HTML copy with the pictures inline.
"""
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'notebooks'))
from run import BANNER, PUBLISHED, SMALL  # noqa: E402  (notebooks/run.py)

PICTURES = {'lenet.ipynb': ('shapes-picture', 'samples', 'curve', 'predictions', 'feature-maps',
                            'activations', 'exercise-summary', 'numpy-mode'),
            'alexnet.ipynb': ('parameters-table', 'samples', 'curve', 'predictions')}


def _code(nb):
    return [c.source for c in nb.cells if c.cell_type == 'code'
            and 'injected-parameters' not in c.metadata.get('tags', [])]


@pytest.mark.parametrize('name', sorted(SMALL))
def test_published_notebook_is_the_source_run(name):
    assert Path(PUBLISHED) == ROOT / 'docs' / 'notebooks'
    published = nbformat.read(os.path.join(PUBLISHED, name), as_version=4)
    nbformat.validate(published)
    source = nbformat.read(str(ROOT / 'notebooks' / name), as_version=4)
    assert _code(published) == _code(source), \
        f'docs/notebooks/{name} is not the current notebook: python notebooks/run.py --publish'
    assert BANNER in published.cells[0].metadata.get('tags', [])
    assert 'python notebooks/run.py --publish' in published.cells[0].source
    code = [c for c in published.cells if c.cell_type == 'code']
    assert all(c.execution_count for c in code if c.source.strip()), 'a cell did not run'
    errors = [o for c in code for o in c.outputs if o.output_type == 'error']
    assert not errors, errors[0]
    for tag in PICTURES[name]:
        cells = [c for c in code if tag in c.metadata.get('tags', [])]
        assert cells and all(any('image/png' in o.get('data', {}) for o in c.outputs)
                             for c in cells), f'no picture in the {tag!r} cell'


@pytest.mark.parametrize('name', sorted(SMALL))
def test_published_html_shows_the_pictures(name):
    html = Path(PUBLISHED, name.replace('.ipynb', '.html')).read_text()
    published = nbformat.read(os.path.join(PUBLISHED, name), as_version=4)
    pictures = sum('image/png' in o.get('data', {}) for c in published.cells
                   if c.cell_type == 'code' for o in c.outputs)
    assert pictures > 0 and html.count('data:image/png;base64,') >= pictures
