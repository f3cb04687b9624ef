"""Pieces the tests share (import them as ``from helpers import ...``; tests/ is on sys.path)."""
import os

import pytest

# what GLUON_CLASSICS_REQUIRE may name: kernels (a C++ compiler, so that conv_pool.cc is
# compiled and tested), cluster (root, ip netns and sshd, so that the rehearsal runs)
REQUIRABLE = ('kernels', 'cluster')
CXX = os.environ.get('CXX')  # the suite's, before any test sets its own


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


def without_kernels():
    """End a test whose kernel half could not run: there is no C++ compiler here."""
    require_or_skip('kernels', f"no C++ compiler (CXX={CXX or ''!r}, else "
                               f"g++): LeNet's CPU kernels (conv_pool.cc) were neither compiled "
                               f"nor tested here, only the fallback to MXNet's operators")
