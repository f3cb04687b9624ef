"""Start a parameter-server job: 1 scheduler, S servers and W workers of one command.

Every process runs the same training command with the ``DMLC_*`` variables
of its role (MXNet turns a server's or the scheduler's ``import mxnet`` into
its service loop). Without a hosts file all of them run on this machine,
bound to 127.0.0.1; with one (``-H hosts``, one ``host[:port]`` per line) the
scheduler runs here and the servers and workers go round the hosts over ssh.
The job stops as a whole when one process fails, when the time is up, or on
Ctrl-C, with one line naming the process and its host.

    gluon-classics launch -n 2 -s 1 -- gluon-classics train lenet
    python -m gluon_classics.distributed.launcher -n 2 -s 1 -H hosts -- gluon-classics train lenet

MXNet's own ``tools/launch.py`` (and the ``dmlc_tracker`` the wheel ships)
is not used: it fails on Python >= 3.9 (``Thread.isAlive``), binds its local
jobs to the machine's outward address, passes only a handful of variables
over ssh (not ``PATH`` or ``PYTHONPATH``, so the remote side finds another
Python), breaks on arguments with spaces, and leaves the job running when
one host fails.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['launch', 'read_hostfile', 'add_launch_arguments', 'run_launch', 'main']

# What a remote process inherits from the launcher's environment, by name, never by
# pattern: the forwarded variables are on the remote command line, which `ps` shows to
# every user of that host, so a variable not named here (a token, a password) stays on
# this machine. Set anything else a job needs on the hosts themselves.
FORWARD = frozenset((
    # the Python it runs
    'PATH', 'PYTHONPATH', 'LD_LIBRARY_PATH', 'VIRTUAL_ENV', 'CONDA_PREFIX', 'PYENV_VERSION',
    'CUDA_VISIBLE_DEVICES',
    # its place in the job (_role_envs)
    'DMLC_ROLE', 'DMLC_TASK_ID', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_WORKER',
    'DMLC_NUM_SERVER', 'DMLC_NODE_HOST', 'DMLC_JOB_CLUSTER',
    # ps-lite
    'PS_VERBOSE', 'PS_RESEND', 'PS_RESEND_TIMEOUT', 'PS_HEARTBEAT_INTERVAL',
    'PS_HEARTBEAT_TIMEOUT', 'DMLC_PS_WATER_MARK',
    # MXNet
    'MXNET_ENGINE_TYPE', 'MXNET_CPU_WORKER_NTHREADS', 'MXNET_CPU_PRIORITY_NTHREADS',
    'MXNET_OMP_MAX_THREADS', 'MXNET_KVSTORE_BIGARRAY_BOUND', 'MXNET_KVSTORE_REDUCTION_NTHREADS',
    'MXNET_KVSTORE_USETREE', 'MXNET_UPDATE_ON_KVSTORE', 'MXNET_SUBGRAPH_BACKEND',
    'MXNET_MKLDNN_ENABLED', 'MXNET_SAFE_ACCUMULATION', 'MXNET_USE_OPERATOR_TUNING',
    'MXNET_HOME', 'MXNET_GLUON_REPO', 'MXNET_CUDNN_AUTOTUNE_DEFAULT', 'MXNET_CUDNN_LIB_CHECKING',
    'MXNET_GPU_MEM_POOL_TYPE', 'MXNET_ENABLE_GPU_P2P',
    # oneDNN and OpenMP
    'DNNL_MAX_CPU_ISA', 'ONEDNN_MAX_CPU_ISA', 'OMP_NUM_THREADS', 'OMP_PROC_BIND', 'OMP_PLACES',
    'KMP_AFFINITY', 'KMP_BLOCKTIME',
    # this package
    'GLUON_CLASSICS_DATA', 'GLUON_CLASSICS_CACHE', 'GLUON_CLASSICS_ACCEL', 'GLUON_CLASSICS_MARCH',
))
# Never passed on: the launcher sets the first four per process, and DMLC_USE_KUBERNETES
# would bind the scheduler to every interface (0.0.0.0) instead of its address.
_DROPPED = ('DMLC_ROLE', 'DMLC_TASK_ID', 'DMLC_NUM_ATTEMPT', 'DMLC_NODE_HOST',
            'DMLC_USE_KUBERNETES')

# Runs a remote command so that it dies with its ssh connection: without a
# terminal nothing tells it that the launcher stopped the job, so a watcher
# kills it when ssh's standard input (held open by the launcher) closes.
_REMOTE_WRAPPER = ('exec 3<&0; "$@" & p=$!; { read -r _ <&3; kill $p; } >/dev/null 2>&1 & '
                   'w=$!; wait $p; s=$?; kill $w 2>/dev/null; exit $s')


def _free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_hostfile(path):
    """The ``(address, ssh port or None)`` of each host in ``path``.

    One host per line, ``name`` or ``name:port``; blank lines and ``#``
    comments are skipped, as is an MPI-style ``slots=N``. Names are resolved
    to IPv4 addresses here: ps-lite binds to the address it is given.
    """
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise ValueError(f'launch: cannot read the hosts file {path}: {err.strerror}') from None
    hosts = []
    for line in lines:
        entry = line.split('#', 1)[0].split('slots=', 1)[0].strip()
        if not entry:
            continue
        name, _, port = entry.partition(':')
        try:
            hosts.append((socket.gethostbyname(name), port or None))
        except OSError:
            raise ValueError(f'launch: host {name!r} in {path} does not resolve to an address')
    if not hosts:
        raise ValueError(f'launch: {path} names no host (one host[:port] per line)')
    return hosts


def _address_towards(host):
    """This machine's address on the route to ``host``: where the scheduler listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))  # a UDP connect only picks the route; nothing is sent
        except OSError as err:
            raise ValueError(f'launch: no route from this machine to {host} ({err.strerror}): '
                             f'run the launcher on a machine that reaches the hosts') from None
        return s.getsockname()[0]


def _role_envs(num_workers, num_servers, host, port, base, nodes=None):
    """The environment of each process, as dmlc_tracker sets it.

    The scheduler gets the root address and the counts; workers and servers
    also ``DMLC_TASK_ID`` (workers first) and ``DMLC_JOB_CLUSTER``.
    ``DMLC_NODE_HOST`` pins every node to its address (``host``, or its entry
    in ``nodes``, one per worker then server), and ``DMLC_PS_ROOT_URI`` the
    scheduler to ``host``: ps-lite binds to these, never to all interfaces
    (without them it would take the first outward interface).

    Returns
    -------
    list of (role, node address, env)
        The scheduler first, as dmlc_tracker starts it; then the servers the
        workers wait for; then the workers.
    """
    nodes = nodes or [host] * (num_workers + num_servers)
    common = {k: v for k, v in base.items() if k not in _DROPPED}
    common.update(DMLC_PS_ROOT_URI=host, DMLC_PS_ROOT_PORT=str(port),
                  DMLC_NUM_WORKER=str(num_workers), DMLC_NUM_SERVER=str(num_servers))
    cores = os.cpu_count() or 1
    threads = base.get('OMP_NUM_THREADS')  # the user's: importing gluon_classics leaves it
    envs = [('scheduler', host, dict(common, DMLC_ROLE='scheduler', DMLC_NODE_HOST=host))]
    cluster = 'local' if len(set(nodes)) == 1 and nodes[0] == host else 'ssh'
    for i, role in enumerate(['worker'] * num_workers + ['server'] * num_servers):
        env = dict(common, DMLC_ROLE=role, DMLC_TASK_ID=str(i), DMLC_JOB_CLUSTER=cluster,
                   DMLC_NODE_HOST=nodes[i])
        envs.append((role, nodes[i], env))
    workers_here = sum(1 for role, node, _ in envs if role == 'worker' and node == host)
    for role, node, env in envs:
        # The workers of a machine share its cores; servers and the scheduler
        # mostly wait. The user's own setting wins.
        if threads:
            env['OMP_NUM_THREADS'] = threads
        elif role != 'worker':
            env['OMP_NUM_THREADS'] = '1'
        elif node == host:
            env['OMP_NUM_THREADS'] = str(max(1, cores // workers_here))
        else:  # another machine's cores are its own business
            env.pop('OMP_NUM_THREADS', None)
    return envs[:1] + envs[1 + num_workers:] + envs[1:1 + num_workers]


def _remote_command(env, command, cwd):
    """The shell line ssh runs: the forwarded environment, ``cwd``, ``command``."""
    forward = {k: v for k, v in env.items() if k in FORWARD}
    words = ['env'] + [f'{k}={v}' for k, v in sorted(forward.items())]
    words += ['sh', '-c', _REMOTE_WRAPPER, 'sh'] + list(command)
    return f'cd {shlex.quote(cwd)} && exec ' + ' '.join(shlex.quote(w) for w in words)


def _stop(procs, grace=5.0):
    """SIGTERM every process still running, then SIGKILL what is left after ``grace``."""
    alive = [p for *_, p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in alive:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(command, num_workers=2, num_servers=1, *, hosts=None, ssh='ssh', timeout=None,
           host='127.0.0.1', port=None, env=None, cwd=None, stop_grace=30.0, log=None):
    """Run ``command`` as a parameter-server job, here or over ssh.

    Parameters
    ----------
    command : list of str
        The program and its arguments, e.g. ``['gluon-classics', 'train',
        'lenet']``; run without a shell.
    num_workers, num_servers : int
    hosts : list of (str, str or None), optional
        ``(address, ssh port)`` per host (:func:`read_hostfile`): worker i
        and server i run on host ``i % len(hosts)``, over ssh, in ``cwd``
        with the launcher's Python (``PATH``, ``PYTHONPATH``...) and the
        settings named in :data:`FORWARD` (nothing else). The scheduler runs
        here, on this machine's address towards the first host. Default: the
        whole job on this machine, on ``host``.
    ssh : str, default 'ssh'
        The ssh command line (e.g. ``'ssh -F config'``); ``BatchMode=yes``
        is added, so a host that asks for a password fails at once.
    timeout : float, optional
        Seconds before the whole job is stopped (exit status 124).
    host : str, default '127.0.0.1'
        The address of every process when ``hosts`` is None.
    port : int, optional
        The scheduler's port; a free one by default.
    env : dict, optional
        Base environment; ``os.environ`` by default.
    cwd : str, optional
        Every process's working folder (the same path on every host); this
        process's by default.
    stop_grace : float, default 30
        Seconds the servers and the scheduler get to shut down after the
        workers have finished (rank 0 tells them to) before they are killed.
    log : callable, optional
        Where to report failures; stderr by default.

    Returns
    -------
    int
        0 when every worker succeeded; else the first failure's exit status
        (negative: killed by that signal), or 124 on timeout.
    """
    if not command:
        raise ValueError('launch: no command to run (put it after --)')
    if num_workers < 1 or num_servers < 1:
        raise ValueError(f'need at least 1 worker and 1 server; got {num_workers} and '
                         f'{num_servers}')
    if log is None:
        def log(msg):
            print(f'gluon-classics launch: {msg}', file=sys.stderr, flush=True)
    base = dict(os.environ if env is None else env)
    placed = nodes = None  # (address, ssh port) of each worker, then of each server
    if hosts:
        host = _address_towards(hosts[0][0])
        placed = [hosts[i % len(hosts)] for i in range(num_workers)]
        placed += [hosts[i % len(hosts)] for i in range(num_servers)]
        nodes = [address for address, _ in placed]
    port = port or _free_port(host)
    envs = _role_envs(num_workers, num_servers, host, port, base, nodes)
    ssh_argv = shlex.split(ssh) + ['-o', 'BatchMode=yes']
    cwd = cwd or os.getcwd()
    deadline = None if timeout is None else time.monotonic() + timeout
    procs = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Being terminated must stop the job too, not orphan it.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for role, node, role_env in envs:
            if nodes is None or role == 'scheduler':
                proc = subprocess.Popen(list(command), env=role_env, cwd=cwd)
            else:
                ssh_port = placed[int(role_env['DMLC_TASK_ID'])][1]
                argv = ssh_argv + (['-p', ssh_port] if ssh_port else [])
                argv += [node, _remote_command(role_env, command, cwd)]
                # stdin stays open: its end is the remote process's signal to stop
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=base)
            name = role + ('' if role == 'scheduler' else ' ' + role_env['DMLC_TASK_ID'])
            procs.append((name, node if nodes else None, proc))
        return _wait(procs, deadline, stop_grace, timeout, log, ssh)
    except FileNotFoundError as err:
        raise ValueError(f'launch: {err.filename}: command not found') from None
    finally:
        _stop(procs)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _failure(name, node, code, ssh):
    where = f'{name} on {node}' if node else name
    over_ssh = node and name != 'scheduler'
    if over_ssh and code == 255:
        return (f'{where}: ssh failed (status 255): check that `{ssh} {node} true` works '
                f'without a password')
    if over_ssh and code == 127:
        return (f'{where}: command not found (status 127): every host needs the same '
                f'Python environment at the same path')
    return f'{where} exited with status {code}: stopping the job'


def _wait(procs, deadline, stop_grace, timeout, log, ssh):
    workers = [p for name, _, p in procs if name.startswith('worker')]
    done_at = None
    while True:
        for name, node, p in procs:
            code = p.poll()
            if code not in (None, 0):
                log(_failure(name, node, code, ssh))
                return code
        now = time.monotonic()
        if all(p.poll() == 0 for p in workers):
            done_at = done_at or now
            if all(p.poll() is not None for *_, p in procs):
                return 0
            if now - done_at > stop_grace:
                log(f'the servers did not stop {stop_grace:g} s after the workers: killing them')
                return 0
        if deadline is not None and now > deadline:
            log(f'timed out after {timeout:g} s: stopping the job')
            return 124
        time.sleep(0.05)


def run_launch(args):
    """Run a parsed ``launch`` command line (see :func:`add_launch_arguments`)."""
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    hosts = read_hostfile(args.hostfile) if args.hostfile else None
    return launch(command, args.num_workers, args.num_servers, hosts=hosts, ssh=args.ssh,
                  timeout=args.timeout)


def add_launch_arguments(parser):
    """The ``launch`` options, shared by the CLI and ``python -m gluon_classics.distributed.launcher``."""
    parser.add_argument('-n', '--num-workers', type=int, default=2, metavar='W',
                        help='worker processes (default 2)')
    parser.add_argument('-s', '--num-servers', type=int, default=1, metavar='S',
                        help='server processes (default 1)')
    parser.add_argument('--timeout', type=float, metavar='SECONDS',
                        help='stop the whole job after this long (exit status 124)')
    parser.add_argument('-H', '--hostfile', metavar='PATH',
                        help='one host[:port] per line: run the servers and workers on those '
                             'machines over ssh, in this folder, with this Python (default: '
                             'all processes on this machine, on 127.0.0.1)')
    parser.add_argument('--ssh', default='ssh', metavar='COMMAND',
                        help="with --hostfile: the ssh command (default 'ssh'; e.g. "
                             "'ssh -F my_config')")
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the training command, after --')
    return parser


def main(argv=None):
    """``python -m gluon_classics.distributed.launcher -n 2 -- COMMAND ...``."""
    parser = add_launch_arguments(argparse.ArgumentParser(
        prog='python -m gluon_classics.distributed.launcher',
        description='Run a command as an MXNet parameter-server job, here or over ssh.'))
    args = parser.parse_args(argv)
    try:
        return run_launch(args)
    except ValueError as err:
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
