"""The ssh launch path across two network hosts on this machine (tests/cluster_rehearsal.py).

It needs root, ``ip netns`` and sshd (CI installs openssh-server); where one is missing the
test is skipped and the skip names what is missing (``-rs``, set in setup.cfg, prints it),
or fails where GLUON_CLASSICS_REQUIRE names cluster (.ci/run sets it).
"""
import os
import subprocess
import sys

import pytest

from helpers import require_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tests', 'cluster_rehearsal.py')


@pytest.mark.cluster
def test_cluster_rehearsal(fashion_mnist_dir):
    # The script bounds itself (270 s) and tears everything down; this limit is a backstop.
    # This checkout's gluon_classics, in the rehearsal and in the job it launches.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    proc = subprocess.run([sys.executable, SCRIPT, '--data-dir', fashion_mnist_dir],
                          capture_output=True, text=True, timeout=330, env=env, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 77:
        require_or_skip('cluster', lines[-1])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert any(line.startswith('both workers (on 10.254.18.1 and 10.254.18.2) ended with '
                               'identical parameters') for line in lines), proc.stdout
    assert any(line.startswith('equal to one process with the total batch') for line in lines)
    assert any(line.startswith("every listening socket on its host's address: ") and
               line.endswith('none on all interfaces; GLUON_CLASSICS_TOKEN stayed off '
                             '10.254.18.2') for line in lines), proc.stdout
