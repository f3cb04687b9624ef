"""GLUON_CLASSICS_REQUIRE as the tests read it (tests/helpers.py): what CI installs must be
tested, so a test that could not check it fails there and skips elsewhere."""
import os
import subprocess
import sys

import pytest

from helpers import require_or_skip, required

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('value, outcome', [
    (None, pytest.skip.Exception), ('', pytest.skip.Exception),
    ('cluster', pytest.skip.Exception), ('kernels', pytest.fail.Exception),
    ('kernels,cluster', pytest.fail.Exception), (' cluster , kernels ', pytest.fail.Exception),
])
def test_a_test_that_could_not_check_something_skips_unless_it_is_required(
        monkeypatch, value, outcome):
    if value is None:
        monkeypatch.delenv('GLUON_CLASSICS_REQUIRE', raising=False)
    else:
        monkeypatch.setenv('GLUON_CLASSICS_REQUIRE', value)
    # both caught here: a skip that escaped would report this test as skipped, not failed
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception),
                       match='^no compiler here') as ended:
        require_or_skip('kernels', 'no compiler here')
    assert ended.type is outcome


def test_a_misspelt_requirement_stops_the_session(monkeypatch):
    monkeypatch.setenv('GLUON_CLASSICS_REQUIRE', 'kernel,cluster')
    with pytest.raises(pytest.UsageError, match='^GLUON_CLASSICS_REQUIRE names kernel: it takes '
                                                'a comma-separated list of kernels, cluster$'):
        required()
    run = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                          os.path.join(ROOT, 'tests', 'test_docs_links.py')], cwd=ROOT,
                         env=dict(os.environ, GLUON_CLASSICS_REQUIRE='kernel'),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 4 and 'passed' not in run.stdout, run.stdout  # before any test
    assert 'ERROR: GLUON_CLASSICS_REQUIRE names kernel' in run.stderr, run.stderr
