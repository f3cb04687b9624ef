"""Rehearse a cluster job on one machine: the ssh launch path across two network hosts.

    python tests/cluster_rehearsal.py [--data-dir DIR]      # as root, from the repo root

tests/test_cluster.py runs it (``-m cluster``); it is a test, not a benchmark.

Two network namespaces joined by a veth pair are the two hosts, 10.254.18.1
and 10.254.18.2 (a /30 that exists only inside them: they reach each other and
nothing else). Each runs its own sshd, bound to its address, with a host key
and an authorized key made for the run. From the first host it runs

    gluon-classics launch -n 2 -s 1 -H hosts --ssh 'ssh -F CONFIG' -- \\
        gluon-classics train lenet --epochs 1 --num-examples 2000 --data-dir DIR \\
        --seed 0 --save worker{rank}.params

so the scheduler and worker 0 talk to worker 1 on the other host through ssh
and TCP. It checks that the scheduler saw one worker on each host, that both
workers ended with identical parameters, and that these are what one process
computes with the job's total batch. While the job runs it also checks what an
attacker would look for (ps-lite has no authentication): every socket listening
in either namespace (``ss -ltnp``) is on that host's address, none on all
interfaces, though the launcher's environment holds DMLC_USE_KUBERNETES=1 (which
binds ps-lite's scheduler to 0.0.0.0); and a token in that environment never
reaches the other host. Everything is torn down at the end (also
on a failure, Ctrl-C or the time limit): the launched processes, the sshds,
the namespaces, the keys.

Exit status: 0 when every check passed; 1 when one failed; 130 when stopped
(Ctrl-C, SIGTERM, the time limit); 77 when this machine cannot run it (not
root, no ``ip netns``, no sshd: ``apt-get install openssh-server``), with one
line saying why.
"""
import argparse
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import gluon_classics
from gluon_classics import get_model, load_data, mx
from gluon_classics.data import default_root
from gluon_classics.distributed import StackedShards
from gluon_classics.training import make_trainer, seed_everything, train_ch5

NOT_RUN = 77
HOSTS = ('10.254.18.1', '10.254.18.2')  # private, and only inside the two namespaces
TIME_LIMIT = 270  # seconds before the rehearsal stops itself (teardown takes a few more)
JOB_LIMIT = 180
EXAMPLES, BATCH, LR = 2000, 256, 0.9  # the command's: --num-examples, lenet's recipe
SSHD = shutil.which('sshd') or '/usr/sbin/sshd'


class NotRunnable(Exception):
    """This machine cannot host the rehearsal."""


def _run(*argv, what=None):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        message = f'{" ".join(argv)}: {proc.stderr.strip() or proc.returncode}'
        raise (NotRunnable if what else RuntimeError)(f'{what}: {message}' if what else message)
    return proc.stdout


def _check_machine():
    if os.geteuid() != 0:
        raise NotRunnable('needs root (network namespaces, sshd)')
    for tool in ('ip', 'ss', 'ssh', 'ssh-keygen'):
        if not shutil.which(tool):
            raise NotRunnable(f'no {tool} on PATH')
    if not os.access(SSHD, os.X_OK):
        raise NotRunnable('no sshd: apt-get update && apt-get install -y openssh-server')


def _sshd_config(tmp, host, name):
    path = os.path.join(tmp, f'sshd_{name}.conf')
    with open(path, 'w') as f:
        f.write(f'ListenAddress {host}\nPort 22\nHostKey {tmp}/host_key\n'
                f'AuthorizedKeysFile {tmp}/authorized_keys\nPidFile {tmp}/sshd_{name}.pid\n'
                'PermitRootLogin prohibit-password\nPasswordAuthentication no\n'
                'KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\nStrictModes no\n')
    return path


def _kill_namespace_processes(ns):
    """Kill whatever still runs in ``ns``: only this rehearsal starts processes there."""
    pids = subprocess.run(['ip', 'netns', 'pids', ns], capture_output=True, text=True).stdout
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _set_up(stack, tmp):
    """Namespaces, veth, keys, sshds, ssh config and hosts file; teardown pushed on ``stack``."""
    tag = 'gcr' + secrets.token_hex(4)  # names of at most 15 characters, unique to the run
    ns = [f'{tag}a', f'{tag}b']
    if not os.path.isdir('/run/sshd'):  # sshd's privilege-separation folder
        os.makedirs('/run/sshd', mode=0o755)
        stack.callback(shutil.rmtree, '/run/sshd', ignore_errors=True)
    for name in ns:
        _run('ip', 'netns', 'add', name, what='ip netns does not work here')
        stack.callback(subprocess.run, ['ip', 'netns', 'del', name], capture_output=True)
        stack.callback(_kill_namespace_processes, name)
    _run('ip', 'link', 'add', f'{tag}a', 'netns', ns[0], 'type', 'veth',
         'peer', 'name', f'{tag}b', 'netns', ns[1])
    for name, host in zip(ns, HOSTS):
        _run('ip', '-n', name, 'addr', 'add', f'{host}/30', 'dev', name)
        _run('ip', '-n', name, 'link', 'set', name, 'up')
        _run('ip', '-n', name, 'link', 'set', 'lo', 'up')

    for key in ('host_key', 'client_key'):
        _run('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'gluon-classics rehearsal',
             '-f', os.path.join(tmp, key))
    shutil.copy(os.path.join(tmp, 'client_key.pub'), os.path.join(tmp, 'authorized_keys'))
    with open(os.path.join(tmp, 'host_key.pub')) as f:
        host_key = ' '.join(f.read().split()[:2])
    with open(os.path.join(tmp, 'known_hosts'), 'w') as f:
        f.writelines(f'{host} {host_key}\n' for host in HOSTS)
    ssh_config = os.path.join(tmp, 'ssh_config')
    with open(ssh_config, 'w') as f:
        f.write(f'Host *\n  User root\n  IdentityFile {tmp}/client_key\n  IdentitiesOnly yes\n'
                f'  UserKnownHostsFile {tmp}/known_hosts\n  GlobalKnownHostsFile /dev/null\n'
                '  StrictHostKeyChecking yes\n  ConnectTimeout 10\n  LogLevel ERROR\n')
    hostfile = os.path.join(tmp, 'hosts')
    with open(hostfile, 'w') as f:
        f.writelines(f'{host}\n' for host in HOSTS)

    for name, host in zip(ns, HOSTS):
        log = open(os.path.join(tmp, f'sshd_{name}.log'), 'w')
        stack.callback(log.close)
        sshd = subprocess.Popen(['ip', 'netns', 'exec', name, SSHD, '-D', '-e',
                                 '-f', _sshd_config(tmp, host, name)],
                                stdout=log, stderr=subprocess.STDOUT)
        stack.callback(_stop, sshd)
    # Both sshds answer from the first host (they take a moment to listen).
    ssh = ['ip', 'netns', 'exec', ns[0], 'ssh', '-F', ssh_config, '-o', 'BatchMode=yes']
    for host in HOSTS:
        for _ in range(50):
            if subprocess.run(ssh + [host, 'true'], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f'sshd on {host} does not answer: see {tmp}/sshd_*.log')
    return ns, ssh_config, hostfile


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _listening(ns):
    """``(address, port, process)`` of each TCP socket listening in namespace ``ns``."""
    out = _run('ip', 'netns', 'exec', ns, 'ss', '-ltnpH')
    sockets = set()
    for line in out.splitlines():
        address, port = line.split()[3].rsplit(':', 1)
        process = re.search(r'\(\("([^"]+)",pid=(\d+)', line)
        sockets.add((address.strip('[]'), port, process and f'{process[1]} {process[2]}'))
    return sockets


def _environ_holds(ns, token):
    """The processes in namespace ``ns`` whose environment holds ``token``."""
    pids = subprocess.run(['ip', 'netns', 'pids', ns], capture_output=True, text=True).stdout
    holding = []
    for pid in pids.split():
        with contextlib.suppress(OSError):
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if token.encode() in f.read():
                    holding.append(pid)
    return holding


def _check_exposure(sockets, holding, token_name):
    """Every listening socket on its host's address; the token stayed on the first host."""
    wrong = sorted(f'{address}:{port} ({process}) on host {host}'
                   for host, seen in zip(HOSTS, sockets) for address, port, process in seen
                   if address != host)
    if wrong:
        raise RuntimeError('sockets listening elsewhere than their host\'s address (ps-lite '
                           'has no authentication: anyone reaching them joins the job): '
                           + ', '.join(wrong))
    jobs = [sum(1 for *_, process in seen if process and not process.startswith('sshd '))
            for seen in sockets]
    if jobs[0] < 3 or jobs[1] < 1:
        raise RuntimeError(f'saw {jobs[0]} and {jobs[1]} listening sockets of the job on the '
                           f'two hosts, not the scheduler, server and worker 0, then worker 1')
    if holding:
        raise RuntimeError(f'{token_name} reached {HOSTS[1]} (processes {", ".join(holding)}): '
                           f'the launcher forwards more than the variables it names')
    print(f'every listening socket on its host\'s address: {jobs[0]} of the job on {HOSTS[0]}, '
          f'{jobs[1]} on {HOSTS[1]}, sshd on each, none on all interfaces; {token_name} '
          f'stayed off {HOSTS[1]}', flush=True)


def _run_job(tmp, ns, ssh_config, hostfile, data_dir):
    """The launch command, run on the first host; returns its output."""
    job = os.path.join(tmp, 'job')
    os.makedirs(job)
    root = os.path.dirname(os.path.dirname(os.path.abspath(gluon_classics.__file__)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('DMLC_', 'PS_'))}
    # This checkout on both hosts; one thread per process on a shared CPU; the
    # scheduler logs each node's address.
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')])),
               OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1', PS_VERBOSE='1')
    # What a user's environment may hold: a variable that would bind the scheduler to all
    # interfaces, and a secret under the prefix of the settings the launcher forwards.
    token = secrets.token_hex(16)
    env.update(DMLC_USE_KUBERNETES='1', GLUON_CLASSICS_TOKEN=token)
    command = ['ip', 'netns', 'exec', ns[0],
               'gluon-classics', 'launch', '-n', '2', '-s', '1', '-H', hostfile,
               '--ssh', f'ssh -F {ssh_config}', '--timeout', str(JOB_LIMIT), '--',
               'gluon-classics', 'train', 'lenet', '--epochs', '1',
               '--num-examples', str(EXAMPLES), '--data-dir', data_dir,
               '--seed', '0', '--save', 'worker{rank}.params']
    print('$', shlex.join(command[4:]), flush=True)
    with open(os.path.join(tmp, 'job.log'), 'w+') as log:
        # Own session: on the time limit the launcher and what it started die together.
        proc = subprocess.Popen(command, cwd=job, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        sockets, holding = [set(), set()], set()
        try:
            # the launcher's --timeout and this script's TIME_LIMIT bound the job
            while proc.poll() is None:
                for seen, name in zip(sockets, ns):
                    seen |= _listening(name)
                holding.update(_environ_holds(ns[1], token))
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.seek(0)
        out = log.read()
    if proc.returncode != 0:
        raise RuntimeError(f'the job failed (status {proc.returncode}):\n{out[-4000:]}')
    _check_exposure(sockets, sorted(holding), 'GLUON_CLASSICS_TOKEN')
    return job, out


def _one_process(data_dir, num_workers=2):
    """What the job computes (fit's steps on 2 workers), in one process with the total batch."""
    seed_everything(0)
    train_iter, test_iter = load_data('fashion-mnist', BATCH // num_workers, root=data_dir,
                                      ctx=mx.cpu(), shuffle_seed=0)
    train_iter = train_iter.subset(EXAMPLES, seed=0)
    net = get_model('lenet', num_classes=10, in_channels=1)
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu()])
    history = train_ch5(net, StackedShards(train_iter, num_workers), test_iter, BATCH,
                        make_trainer(net, LR), mx.cpu(), 1, seed=0, log=lambda *a: None,
                        progress=False)
    return net, history


def _check(job, out, data_dir):
    # ps-lite's scheduler (PS_VERBOSE=1) logs the address of every node it admits.
    nodes = sorted(set(re.findall(r'role=(server|worker), ip=([\d.]+)', out)))
    workers = [ip for role, ip in nodes if role == 'worker']
    if workers != sorted(HOSTS):
        raise RuntimeError(f'the scheduler saw workers at {workers}, not one on each of '
                           f'{HOSTS}:\n{out[-4000:]}')
    print('the scheduler admitted ' + ', '.join(f'a {role} at {ip}' for role, ip in nodes),
          flush=True)
    params = [mx.nd.load(os.path.join(job, f'worker{r}.params')) for r in range(2)]
    if sorted(params[0]) != sorted(params[1]):
        raise RuntimeError('the two workers saved different parameter names')
    for name in params[0]:
        if not np.array_equal(params[0][name].asnumpy(), params[1][name].asnumpy()):
            raise RuntimeError(f'the workers ended with different {name}')
    print(f'both workers (on {HOSTS[0]} and {HOSTS[1]}) ended with identical parameters '
          f'({len(params[0])} arrays)', flush=True)

    net, history = _one_process(data_dir)
    worst = 0.0
    for name, param in net._collect_params_with_prefix().items():
        job_value, one = params[0][name].asnumpy(), param.data().asnumpy()
        np.testing.assert_allclose(job_value, one, rtol=1e-4, atol=1e-5, err_msg=name)
        worst = max(worst, float(np.abs(job_value - one).max()))
    loss = float(re.search(r'epoch 1, loss ([\d.]+)', out).group(1))
    if abs(loss - history[0]['loss']) > 1e-3:
        raise RuntimeError(f'the job reported loss {loss}, one process {history[0]["loss"]:.4f}')
    print(f'equal to one process with the total batch {BATCH}: largest difference '
          f'{worst:.2g}, loss {loss} vs {history[0]["loss"]:.4f}', flush=True)


def rehearse(data_dir):
    """Set up, run, check, tear down. Raises NotRunnable or RuntimeError."""
    _check_machine()
    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(prefix='gluon-classics-cluster-')
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        ns, ssh_config, hostfile = _set_up(stack, tmp)
        print(f'hosts: {HOSTS[0]} (namespace {ns[0]}) and {HOSTS[1]} (namespace {ns[1]}), '
              f'sshd on each', flush=True)
        job, out = _run_job(tmp, ns, ssh_config, hostfile, data_dir)
        print('\n'.join(line for line in out.splitlines() if line.startswith(('epoch', 'dist'))))
        _check(job, out, data_dir)


def _interrupt(signum, frame):
    limit = f': the {TIME_LIMIT} s limit' if signum == signal.SIGALRM else ''
    raise KeyboardInterrupt(signal.Signals(signum).name + limit)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-dir', default=default_root('fashion-mnist'),
                        help='the Fashion-MNIST folder (default: $GLUON_CLASSICS_DATA/'
                             'fashion-mnist, else MXNet\'s cache)')
    args = parser.parse_args(argv)
    data_dir = os.path.abspath(args.data_dir)
    start = time.monotonic()
    # Ctrl-C, a kill or the time limit: the ExitStack still tears everything down.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, _interrupt)
    signal.alarm(TIME_LIMIT)
    try:
        rehearse(data_dir)
    except NotRunnable as err:
        print(f'cluster rehearsal not run: {err}', flush=True)
        return NOT_RUN
    except (RuntimeError, AssertionError) as err:
        print(f'cluster rehearsal FAILED: {err}', flush=True)
        return 1
    except KeyboardInterrupt as err:
        print(f'cluster rehearsal stopped ({str(err) or "SIGINT"}); everything was torn down',
              flush=True)
        return 130
    finally:
        signal.alarm(0)
    print(f'cluster rehearsal passed in {time.monotonic() - start:.0f} s (torn down)', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
