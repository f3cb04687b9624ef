"""Data parallelism past one process: MXNet's parameter server and a local launcher.

Within one process ``train_ch5`` already splits each batch over a list of
contexts; the ``gluon.Trainer``'s KVStore sums the gradients (``'device'`` on
GPUs, ``'local'`` on CPUs: :func:`default_kvstore`).

Across processes (``--kvstore dist_sync``) every worker runs the same
training command. Each reads its own equal shard of the training set with
``1 / num_workers`` of the batch, so one step of the job sees the batch of one
step of a single process and the chapter's learning rate carries over. The
servers sum the workers' gradients and every worker applies the same update
to the same weights (``update_on_kvstore=False``), so the workers stay
identical. Only rank 0 prints and writes files; the epoch's loss and train
accuracy are summed over the workers, and test accuracy is the full test set.

MXNet's own launcher (``tools/launch.py`` with the ``dmlc_tracker`` that the
pip wheel ships) fails on Python >= 3.9 (``Thread.isAlive`` is gone) and its
local mode binds the scheduler to the machine's outward address. :func:`launch`
does what its local mode does, on loopback: it starts 1 scheduler, S servers
and W workers of one command with the ``DMLC_*`` variables, and stops them all
when one fails, when the time is up, or on Ctrl-C. With ``--hostfile`` it
hands the job to MXNet's ssh launcher, with the ``isAlive`` fix applied.

    gluon-classics launch -n 2 -s 1 -- gluon-classics train lenet --kvstore dist_sync
    python -m gluon_classics.training.distributed -n 2 -- gluon-classics train lenet
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

__all__ = ['default_kvstore', 'is_distributed', 'connect', 'worker_batch_size',
           'shard_for_worker', 'checkpoint_path', 'sum_over_workers', 'rank', 'num_workers',
           'is_chief', 'launch', 'add_launch_arguments', 'run_launch', 'main']

# The one distributed KVStore of this process: ps-lite allows one per process,
# and train_ch5 / the CLI ask it who is rank 0.
_KVSTORE = None
# KVStore key of the epoch's [loss sum, correct, examples]; the Trainer's
# parameters use the keys 0 .. num_params - 1.
_METRICS_KEY = 1 << 30


def is_distributed(kvstore):
    """True for a ``'dist_*'`` KVStore name or a distributed KVStore object."""
    kind = kvstore if isinstance(kvstore, str) else getattr(kvstore, 'type', '')
    return kind.startswith('dist')


def default_kvstore(ctx):
    """The KVStore a list of contexts trains with when the user chose none.

    ``'device'`` (sum on the GPUs) for GPU contexts, ``'local'`` for CPU ones;
    in a process started by a launcher (``DMLC_ROLE=worker``),
    ``'dist_device_sync'`` or ``'dist_sync'``.
    """
    ctxs = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    gpu = any(c.device_type == 'gpu' for c in ctxs)
    if os.environ.get('DMLC_ROLE') == 'worker':
        return 'dist_device_sync' if gpu else 'dist_sync'
    return 'device' if gpu else 'local'


def connect(kvstore):
    """Join the parameter server for a ``'dist_*'`` name; other names pass through.

    Blocks until the scheduler has seen every server and worker. Returns the
    process's one distributed ``mx.kv.KVStore`` (created once; a distributed
    KVStore passed in becomes that one).

    Raises
    ------
    ValueError
        A ``'dist_*'`` KVStore in a process no launcher started.
    """
    global _KVSTORE
    if not is_distributed(kvstore):
        return kvstore
    if isinstance(kvstore, str):
        if _KVSTORE is not None:
            if _KVSTORE.type != kvstore:
                raise ValueError(f'this process already joined a {_KVSTORE.type} job; '
                                 f'it cannot also join a {kvstore} one')
            return _KVSTORE
        if os.environ.get('DMLC_ROLE') != 'worker':
            # Without the DMLC_* variables ps-lite aborts the process with a core dump.
            raise ValueError(f'--kvstore {kvstore} needs processes started by a launcher: '
                             f'gluon-classics launch -n 2 -- gluon-classics train ... '
                             f'--kvstore {kvstore}')
        import mxnet as mx
        kvstore = mx.kv.create(kvstore)
    if _KVSTORE is None:
        kvstore.broadcast = _settled_broadcast(kvstore)
        _KVSTORE = kvstore
    return kvstore


def _settled_broadcast(kv):
    """``kv.broadcast`` that returns once the weights have arrived.

    ``gluon.Trainer`` broadcasts rank 0's initial weights (an init and a pull
    per parameter) and then at once pushes the first gradients. Nothing
    orders the pull before those pushes, so a worker that is slower than the
    others can pull after the servers have summed the first gradients, and
    start from that sum instead of the weights: the workers drift apart, more
    often the busier the machine. Waiting for the pulled weights closes that
    window; it costs one wait per parameter, once.
    """
    broadcast = kv.broadcast

    def settled(key, value, out, priority=0):
        broadcast(key, value, out, priority=priority)
        for arr in out if isinstance(out, (list, tuple)) else [out]:
            arr.wait_to_read()
    return settled


def rank():
    """This worker's rank in the distributed job; 0 outside one."""
    return _KVSTORE.rank if _KVSTORE is not None else 0


def num_workers():
    """Workers in the distributed job; 1 outside one."""
    return _KVSTORE.num_workers if _KVSTORE is not None else 1


def is_chief():
    """True in the process that prints and writes files (rank 0, or no job)."""
    return rank() == 0


def worker_batch_size(batch_size, kvstore):
    """Each worker's share of ``batch_size`` (all of it outside a job)."""
    if not is_distributed(kvstore):
        return batch_size
    if batch_size < kvstore.num_workers:
        raise ValueError(f'batch size {batch_size} is smaller than the {kvstore.num_workers} '
                         f'workers: each needs at least one example per batch')
    return batch_size // kvstore.num_workers


def shard_for_worker(train_iter, kvstore, seed=0, log=None):
    """This worker's shard of ``train_iter``; the loader itself outside a job.

    Every worker gets the same number of examples, so all take the same
    number of steps: a synchronous job whose workers disagree on that waits
    forever. Up to ``num_workers - 1`` examples (a seeded choice) are left out
    for that. With ``dist_async`` the server applies each worker's batch with
    a fixed ``1 / batch_size``, so a shard is cut to whole batches.

    Parameters
    ----------
    train_iter : ArrayLoader
        The whole training set, batched with :func:`worker_batch_size`.
    kvstore : str or KVStore
    seed : int
        Picks the examples left out.
    log : callable, optional
        Told the job's shape, on rank 0.
    """
    if not is_distributed(kvstore):
        return train_iter
    workers, me = kvstore.num_workers, kvstore.rank
    per_worker = train_iter.num_examples // workers
    if 'async' in kvstore.type:
        per_worker -= per_worker % train_iter.batch_size
    if per_worker < 1:
        raise ValueError(f'{train_iter.num_examples} training examples are too few for '
                         f'{workers} workers with batch size {train_iter.batch_size}')
    if per_worker * workers < train_iter.num_examples:
        train_iter = train_iter.subset(per_worker * workers, seed=seed)
    if log is not None and me == 0:
        total = '' if 'async' in kvstore.type else f' ({train_iter.batch_size * workers} in all)'
        log(f'{kvstore.type}: {workers} workers x {per_worker} examples, batch '
            f'{train_iter.batch_size} per worker{total}')
    return train_iter.shard(workers, me)


def checkpoint_path(kvstore, checkpoint, resume, log=None):
    """``checkpoint``, or None under ``dist_async``, whose optimizer lives on the servers.

    Raises
    ------
    ValueError
        ``resume`` under ``dist_async``: the trainer's state cannot be loaded.
    """
    if not is_distributed(kvstore) or 'async' not in kvstore.type:
        return checkpoint
    if resume:
        raise ValueError(f'--resume does not work with {kvstore.type}: the optimizer state '
                         f'lives on the servers; resume with dist_sync')
    if checkpoint and log is not None and kvstore.rank == 0:
        log(f'{kvstore.type}: no checkpoint (the optimizer state lives on the servers)')
    return None


def sum_over_workers(values):
    """Sum a few numbers over the workers of a synchronous job.

    Every worker must call it the same number of times. Outside a job, and
    under ``dist_async`` (where the servers would apply the optimizer to the
    numbers), ``values`` come back unchanged.

    Parameters
    ----------
    values : sequence of float

    Returns
    -------
    list of float
    """
    kv = _KVSTORE
    if kv is None or 'async' in kv.type:
        return list(values)
    import mxnet as mx
    # float64: a sum of 60,000 losses keeps its last digits.
    arr = mx.nd.array(values, dtype='float64')
    if not getattr(kv, '_gluon_classics_metrics', False):
        kv.init(_METRICS_KEY, mx.nd.zeros(arr.shape, dtype='float64'))
        kv._gluon_classics_metrics = True
    kv.pushpull(_METRICS_KEY, arr, out=arr)
    return arr.asnumpy().tolist()


def _free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _role_envs(num_workers, num_servers, host, port, base):
    """The environment of each process, as dmlc_tracker's local launcher sets it.

    The scheduler gets the root address and the counts; workers and servers
    also ``DMLC_TASK_ID`` (workers first) and ``DMLC_JOB_CLUSTER=local``.
    ``DMLC_NODE_HOST`` pins every node to ``host``: without it ps-lite binds
    to the first outward interface.
    """
    common = {k: v for k, v in base.items()
              if k not in ('DMLC_ROLE', 'DMLC_TASK_ID', 'DMLC_NUM_ATTEMPT')}
    common.update(DMLC_PS_ROOT_URI=host, DMLC_PS_ROOT_PORT=str(port),
                  DMLC_NUM_WORKER=str(num_workers), DMLC_NUM_SERVER=str(num_servers),
                  DMLC_NODE_HOST=host)
    cores = os.cpu_count() or 1
    # Importing gluon_classics sets OMP_NUM_THREADS to all cores when unset:
    # that value is no choice of the user's.
    threads = base.get('OMP_NUM_THREADS')
    threads = None if threads == str(cores) else threads
    envs = [('scheduler', dict(common, DMLC_ROLE='scheduler'))]
    for i, role in enumerate(['worker'] * num_workers + ['server'] * num_servers):
        env = dict(common, DMLC_ROLE=role, DMLC_TASK_ID=str(i), DMLC_JOB_CLUSTER='local')
        envs.append((role, env))
    for role, env in envs:
        # The workers share the cores; servers and the scheduler mostly wait.
        # The user's own setting wins.
        env['OMP_NUM_THREADS'] = threads or str(max(1, cores // num_workers)
                                                if role == 'worker' else 1)
    # The scheduler first, as dmlc_tracker starts it; then the servers the workers wait for.
    return envs[:1] + envs[1 + num_workers:] + envs[1:1 + num_workers]


def _stop(procs, grace=5.0):
    """SIGTERM every process still running, then SIGKILL what is left after ``grace``."""
    alive = [p for _, p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in alive:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(command, num_workers=2, num_servers=1, *, timeout=None, host='127.0.0.1',
           port=None, env=None, stop_grace=30.0, log=None):
    """Run ``command`` as a parameter-server job on this machine.

    Starts 1 scheduler, ``num_servers`` servers and ``num_workers`` workers
    of the same command (MXNet turns a server's or the scheduler's
    ``import mxnet`` into its service loop) and waits for the workers.

    Parameters
    ----------
    command : list of str
        The program and its arguments, e.g. ``['gluon-classics', 'train',
        'lenet', '--kvstore', 'dist_sync']``; run without a shell.
    num_workers, num_servers : int
    timeout : float, optional
        Seconds before the whole job is stopped (exit status 124).
    host : str, default '127.0.0.1'
        The address every node binds to and connects to.
    port : int, optional
        The scheduler's port; a free one by default.
    env : dict, optional
        Base environment; ``os.environ`` by default.
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
    port = port or _free_port(host)
    envs = _role_envs(num_workers, num_servers, host, port,
                      dict(os.environ if env is None else env))
    deadline = None if timeout is None else time.monotonic() + timeout
    procs = []
    previous = None
    if hasattr(signal, 'SIGTERM') and _in_main_thread():
        # Being terminated must stop the job too, not orphan it.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for role, role_env in envs:
            procs.append((role, subprocess.Popen(list(command), env=role_env)))
        return _wait(procs, deadline, stop_grace, timeout, log)
    except FileNotFoundError:
        raise ValueError(f'launch: {command[0]}: command not found') from None
    finally:
        _stop(procs)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _in_main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


def _wait(procs, deadline, stop_grace, timeout, log):
    workers = [p for role, p in procs if role == 'worker']
    done_at = None
    while True:
        for role, p in procs:
            code = p.poll()
            if code not in (None, 0):
                log(f'{role} (pid {p.pid}) exited with status {code}: stopping the job')
                return code
        now = time.monotonic()
        if all(p.poll() == 0 for p in workers):
            done_at = done_at or now
            if all(p.poll() is not None for _, p in procs):
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
    if args.hostfile:
        return _mxnet_ssh_launch(args, command)
    return launch(command, args.num_workers, args.num_servers, timeout=args.timeout)


def _mxnet_ssh_launch(args, command):
    """MXNet's ``tools/launch.py --launcher ssh``, with Python 3.9's ``isAlive`` fix."""
    import runpy
    import threading
    import mxnet
    if not hasattr(threading.Thread, 'isAlive'):
        threading.Thread.isAlive = threading.Thread.is_alive  # dmlc_tracker predates 3.9
    script = os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'launch.py')
    argv = [script, '-n', str(args.num_workers), '-s', str(args.num_servers),
            '-H', args.hostfile, '--launcher', 'ssh']
    if args.sync_dst_dir:
        argv += ['--sync-dst-dir', args.sync_dst_dir]
    saved, sys.argv = sys.argv, argv + command
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        sys.argv = saved
    return 0


def add_launch_arguments(parser):
    """The ``launch`` options, shared by the CLI and ``python -m`` this module."""
    parser.add_argument('-n', '--num-workers', type=int, default=2, metavar='W',
                        help='worker processes (default 2)')
    parser.add_argument('-s', '--num-servers', type=int, default=1, metavar='S',
                        help='server processes (default 1)')
    parser.add_argument('--timeout', type=float, metavar='SECONDS',
                        help='stop the whole job after this long (exit status 124)')
    parser.add_argument('-H', '--hostfile', metavar='PATH',
                        help="one host per line: run on those machines over ssh with MXNet's "
                             "tools/launch.py (default: all processes on this machine, "
                             "on 127.0.0.1)")
    parser.add_argument('--sync-dst-dir', metavar='DIR',
                        help='with --hostfile: rsync the current folder to DIR on every host')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the training command, after --')
    return parser


def main(argv=None):
    """``python -m gluon_classics.training.distributed -n 2 -- COMMAND ...``."""
    parser = add_launch_arguments(argparse.ArgumentParser(
        prog='python -m gluon_classics.training.distributed',
        description='Run a command as a local MXNet parameter-server job.'))
    args = parser.parse_args(argv)
    try:
        return run_launch(args)
    except ValueError as err:
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
