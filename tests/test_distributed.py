"""Data parallelism: several contexts in one process, and a parameter-server job on loopback.

The job tests start real MXNet schedulers, servers and workers bound to
127.0.0.1 only, under a hard time limit that kills their whole process group.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from gluon_classics import lenet
from gluon_classics.cli import build_parser
from gluon_classics.data import ArrayLoader
import gluon_classics.distributed.launcher as launcher
from gluon_classics.distributed.launcher import launch
from gluon_classics.training import load_checkpoint, make_trainer, train_ch5
from gluon_classics.distributed import (ParallelContext, StackedShards, connect,
                                                 default_kvstore, shard_for_worker,
                                                 worker_batch_size)
from helpers import ends, grid_images, write_idx_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Everything a job binds to or connects to; the launcher's default, spelled out.
LOOPBACK = {'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_NODE_HOST': '127.0.0.1',
            'DMLC_INTERFACE': 'lo'}


def _quiet(*args, **kwargs):
    pass


# --- several contexts in one process ---------------------------------------------------------

def _train(ctx, images, labels, init_params, batch_size=32, epochs=2):
    net = lenet(activation='relu')
    net.load_parameters(init_params, ctx=ctx)
    train_iter = ArrayLoader(images, labels, batch_size, shuffle=True, shuffle_seed=3,
                             ctx=mx.cpu())
    test_iter = ArrayLoader(images[:64], labels[:64], 64, ctx=mx.cpu())
    trainer = make_trainer(net, 0.1)
    history = train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, epochs, seed=0,
                        log=_quiet, progress=False)
    return [p.data(mx.cpu(0)).asnumpy() for p in net.collect_params().values()], history, trainer


def test_two_cpu_contexts_train_like_one(tmp_path):
    # 100 examples: the last batch (4) splits unevenly over the two contexts.
    images, labels = grid_images(100)
    net = lenet(activation='relu')
    net.initialize(init.Xavier(), ctx=mx.cpu(0))
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.save_parameters(str(tmp_path / 'init.params'))

    one, one_history, _ = _train(mx.cpu(0), images, labels, str(tmp_path / 'init.params'))
    two, two_history, trainer = _train([mx.cpu(0), mx.cpu(1)], images, labels,
                                       str(tmp_path / 'init.params'))
    assert trainer._kvstore.type == 'local'  # the CPU default, summing on the CPU
    start = [p.data().asnumpy() for p in net.collect_params().values()]
    assert not np.allclose(one[0], start[0]), 'training did not move the weights'
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(one_history, two_history):
        for key in ('loss', 'train_acc', 'test_acc'):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key


def test_default_kvstore(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    assert default_kvstore([mx.cpu(0), mx.cpu(1)]) == 'local'
    assert default_kvstore(mx.cpu()) == 'local'
    assert default_kvstore([mx.gpu(0), mx.gpu(1)]) == 'device'  # a Context needs no GPU
    monkeypatch.setenv('DMLC_ROLE', 'worker')  # a process started by a launcher
    assert default_kvstore([mx.cpu(0)]) == 'dist_sync'
    assert default_kvstore([mx.gpu(0), mx.gpu(1)]) == 'dist_device_sync'


def test_cli_contexts_and_kvstore():
    args = build_parser().parse_args(['train', 'lenet', '--ctx', 'cpu:0,1'])
    assert args.ctx == [mx.cpu(0), mx.cpu(1)] and args.kvstore is None
    args = build_parser().parse_args(['launch', '-n', '3', '-s', '2', '--timeout', '60', '--',
                                      'gluon-classics', 'train', 'lenet', '-n', '1'])
    assert (args.num_workers, args.num_servers, args.timeout) == (3, 2, 60)
    assert args.command == ['--', 'gluon-classics', 'train', 'lenet', '-n', '1']


def test_dist_kvstore_outside_a_job_is_a_clear_error(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    with pytest.raises(ValueError, match='gluon-classics launch'):
        connect('dist_sync')
    assert connect('local') == ParallelContext('local', rank=0, num_workers=1)
    assert connect(None, [mx.cpu(0), mx.cpu(1)]).kvstore == 'local'


def _fake_kv(kind, workers, rank):
    """Rank ``rank`` of a ``kind`` job, as a value: shards and sizes need no servers."""
    return ParallelContext(kind, rank=rank, num_workers=workers)


def test_shards_are_equal_and_disjoint():
    images, labels = grid_images(100)
    images[:, 0, 0, 0] = np.arange(100)  # an id per example
    loader = ArrayLoader(images, labels, 8, ctx=mx.cpu())
    shards = [shard_for_worker(loader, _fake_kv('dist_sync', 3, r)) for r in range(3)]
    ids = [set(s.images[:, 0, 0, 0].tolist()) for s in shards]
    assert [s.num_examples for s in shards] == [33, 33, 33]  # one left out: equal step counts
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    # async: the server's 1 / batch_size is fixed, so whole batches only
    shards = [shard_for_worker(loader, _fake_kv('dist_async', 3, r)) for r in range(3)]
    assert [s.num_examples for s in shards] == [32, 32, 32]
    assert shard_for_worker(loader, 'local') is loader
    assert worker_batch_size(256, _fake_kv('dist_sync', 3, 0)) == 85
    with pytest.raises(ValueError, match='smaller than the 4 workers'):
        worker_batch_size(2, _fake_kv('dist_sync', 4, 0))


def test_only_rank_0_prints_and_writes(tmp_path, capsys):
    from gluon_classics.cli import cmd_train
    images, labels = grid_images(64)
    write_idx_folder(str(tmp_path / 'data'), images, labels, images[:32], labels[:32])
    files = {name: str(tmp_path / name) for name in ('p.params', 'm.json', 'c.ckpt', 'plot.png')}
    args = build_parser().parse_args([
        'train', 'lenet', '--data-dir', str(tmp_path / 'data'), '--epochs', '1',
        '--batch-size', '32', '--ctx', 'cpu', '--save', files['p.params'],
        '--metrics', files['m.json'], '--checkpoint', files['c.ckpt'], '--plot', files['plot.png']])
    # This process as rank 1 of a job, with a local KVStore: no servers to wait for.
    assert cmd_train(args, ParallelContext('local', rank=1, num_workers=2)) == 0
    assert capsys.readouterr().out == ''
    assert not any(os.path.exists(f) for f in files.values())
    # {rank} in --save: every worker writes its own copy (to compare them), still nothing else.
    args.save = str(tmp_path / 'w{rank}.params')
    assert cmd_train(args, ParallelContext('local', rank=1, num_workers=2)) == 0
    assert sorted(os.listdir(tmp_path)) == ['data', 'w1.params']


# --- the launcher, with stand-in processes (no MXNet) -----------------------------------------

def _stand_in(body):
    return [sys.executable, '-c', 'import json, os, sys, time\n' + textwrap.dedent(body)]


def test_launch_sets_dmlc_tracker_environment(tmp_path):
    code = launch(_stand_in(f"""
        env = {{k: v for k, v in os.environ.items() if k.startswith('DMLC_')}}
        name = env['DMLC_ROLE'] + env.get('DMLC_TASK_ID', '')
        json.dump(env, open(os.path.join({str(tmp_path)!r}, name + '.json'), 'w'))
        """), num_workers=2, num_servers=1, timeout=60, log=_quiet,
        env=dict(os.environ, DMLC_USE_KUBERNETES='1'))  # it would bind to all interfaces
    assert code == 0
    env = {f[:-5]: json.load(open(tmp_path / f)) for f in os.listdir(tmp_path)}
    assert sorted(env) == ['scheduler', 'server2', 'worker0', 'worker1']
    for name, e in env.items():
        assert e['DMLC_PS_ROOT_URI'] == e['DMLC_NODE_HOST'] == '127.0.0.1'
        assert (e['DMLC_NUM_WORKER'], e['DMLC_NUM_SERVER']) == ('2', '1')
        assert e['DMLC_PS_ROOT_PORT'] == env['scheduler']['DMLC_PS_ROOT_PORT']
        assert e['DMLC_ROLE'] == name.rstrip('012')
    assert 'DMLC_TASK_ID' not in env['scheduler']
    assert env['worker1']['DMLC_JOB_CLUSTER'] == 'local'
    assert not any('DMLC_USE_KUBERNETES' in e for e in env.values())


# A job's process: writes its pid, joins the job (a server's or the scheduler's import serves
# it until the workers are done), and the workers stay a moment so that their sockets are seen.
KV_JOB = """
    open(os.path.join({out!r}, str(os.getpid())), 'w').close()
    import mxnet as mx
    kv = mx.kv.create('dist_sync')
    time.sleep(2)
    """


def test_every_process_of_a_job_listens_on_its_address_only(tmp_path):
    """ps-lite has no authentication: a port on every interface lets anyone join the job.
    Each process listens on 127.0.0.1 only, even with DMLC_USE_KUBERNETES set (which binds
    ps-lite's scheduler to 0.0.0.0)."""
    if not shutil.which('ss'):
        pytest.skip('no ss (iproute2) to list the listening sockets')
    codes = []
    job = threading.Thread(target=lambda: codes.append(launch(
        _stand_in(KV_JOB.format(out=str(tmp_path))), num_workers=2, num_servers=1, timeout=120,
        log=_quiet, env=dict(os.environ, DMLC_USE_KUBERNETES='1', OMP_NUM_THREADS='1'))))
    job.start()
    seen = set()  # (pid, local address) of every listening socket of the job's processes
    while job.is_alive():  # bounded by the launch's own time limit
        pids = set(os.listdir(tmp_path))
        for line in subprocess.run(['ss', '-ltnpH'], capture_output=True, text=True).stdout \
                .splitlines():
            pid = re.search(r'pid=(\d+)', line)
            if pid and pid.group(1) in pids:
                seen.add((pid.group(1), line.split()[3].rsplit(':', 1)[0]))
        time.sleep(0.1)
    job.join()
    assert codes == [0]
    assert {pid for pid, _ in seen} == set(os.listdir(tmp_path))  # all 4 processes listen
    assert {address for _, address in seen} == {'127.0.0.1'}, seen


def test_launch_shares_the_cores_among_workers():
    cores = os.cpu_count() or 1
    envs = launcher._role_envs(2, 1, '127.0.0.1', 9000, {})
    threads = {role: env['OMP_NUM_THREADS'] for role, _, env in envs}
    assert threads == {'scheduler': '1', 'server': '1', 'worker': str(max(1, cores // 2))}
    # the user's own setting wins, also one equal to the core count
    for chosen in ('7', str(cores)):
        envs = launcher._role_envs(2, 1, '127.0.0.1', 9000, {'OMP_NUM_THREADS': chosen})
        assert {env['OMP_NUM_THREADS'] for *_, env in envs} == {chosen}


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_launch_stops_the_job_when_a_worker_fails(tmp_path):
    code = launch(_stand_in(f"""
        open(os.path.join({str(tmp_path)!r}, str(os.getpid())), 'w').close()
        if os.environ.get('DMLC_TASK_ID') == '0':
            time.sleep(0.5)
            sys.exit(3)
        time.sleep(120)
        """), num_workers=2, num_servers=1, timeout=60, log=_quiet)
    assert code == 3  # the worker's status, not the time limit's 124: it did not wait for it
    pids = [int(p) for p in os.listdir(tmp_path)]
    assert len(pids) == 4 and all(_gone(p) for p in pids)


def test_launch_timeout_stops_the_job(tmp_path):
    code = launch(_stand_in(f"""
        open(os.path.join({str(tmp_path)!r}, str(os.getpid())), 'w').close()
        time.sleep(120)
        """), num_workers=2, num_servers=1, timeout=2, log=_quiet)
    assert code == 124  # its time limit's status; and nothing of the job is left
    pids = [int(p) for p in os.listdir(tmp_path)]  # those that started within the 2 s
    assert pids and all(_gone(p) for p in pids)


# A stand-in for ssh: runs the remote command line with a login's bare environment, and, like
# sshd when the connection drops, closes its standard input when told to stop. 127.0.0.3 is
# a host it cannot reach.
FAKE_SSH = """
import json, os, signal, subprocess, sys
host, line = sys.argv[-2], sys.argv[-1]
with open(os.environ['FAKE_SSH_LOG'], 'a') as f:
    f.write(json.dumps({'host': host, 'options': sys.argv[1:-2], 'line': line}) + '\\n')
if host == '127.0.0.3':
    sys.exit(255)
remote = subprocess.Popen(['sh', '-c', line], stdin=subprocess.PIPE,
                          env={'PATH': '/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/')})
signal.signal(signal.SIGTERM, lambda *_: remote.stdin.close())
sys.exit(remote.wait())
"""


# what a user's environment may hold, under the prefixes of the settings forwarded by name
SECRETS = {'GLUON_CLASSICS_TOKEN': 'secret-1', 'MXNET_S3_SECRET_KEY': 'secret-2',
           'PS_PASSWORD': 'secret-3', 'DMLC_SECRET': 'secret-4', 'OMP_TOKEN': 'secret-5'}


def _ssh_launch(tmp_path, body, hosts, **kwargs):
    (tmp_path / 'fake_ssh.py').write_text(FAKE_SSH)
    (tmp_path / 'out').mkdir()
    env = dict(os.environ, FAKE_SSH_LOG=str(tmp_path / 'ssh.log'), NOT_FORWARDED='1', **SECRETS)
    messages = []
    code = launch(_stand_in(body), hosts=hosts, ssh=f'{sys.executable} {tmp_path}/fake_ssh.py',
                  env=env, cwd=str(tmp_path / 'out'), log=messages.append, **kwargs)
    calls = [json.loads(line) for line in open(tmp_path / 'ssh.log')]
    return code, messages, calls


def test_ssh_launch_runs_each_role_on_its_host(tmp_path):
    code, _, calls = _ssh_launch(tmp_path, """
        env = dict(os.environ, CWD=os.getcwd())
        name = env['DMLC_ROLE'] + env.get('DMLC_TASK_ID', '')
        json.dump(env, open(name + '.json', 'w'))
        """, [('127.0.0.1', None), ('127.0.0.2', '2222')], num_workers=2, num_servers=1,
        timeout=60)
    assert code == 0
    out = tmp_path / 'out'
    env = {f[:-5]: json.load(open(out / f)) for f in os.listdir(out)}
    assert sorted(env) == ['scheduler', 'server2', 'worker0', 'worker1']
    # The scheduler runs here; worker i and server i on host i % 2, over ssh, with -p if given.
    assert sorted((c['host'], tuple(c['options'][-2:])) for c in calls) == [
        ('127.0.0.1', ('-o', 'BatchMode=yes')), ('127.0.0.1', ('-o', 'BatchMode=yes')),
        ('127.0.0.2', ('-p', '2222'))]
    assert [env[n]['DMLC_NODE_HOST'] for n in ('worker0', 'worker1', 'server2')] == [
        '127.0.0.1', '127.0.0.2', '127.0.0.1']
    for name, e in env.items():
        assert e['DMLC_PS_ROOT_URI'] == '127.0.0.1' and e['CWD'] == str(out), name
        assert e['DMLC_PS_ROOT_PORT'] == env['scheduler']['DMLC_PS_ROOT_PORT']
        # the launcher's Python, not the login's; only the job's variables
        assert e['PATH'] == os.environ['PATH'] and e.get('PYTHONPATH') == os.environ.get(
            'PYTHONPATH'), name
        assert ('NOT_FORWARDED' in e) == (name == 'scheduler'), name
        assert (set(SECRETS) <= set(e)) == (name == 'scheduler'), name
    assert env['worker1']['DMLC_JOB_CLUSTER'] == 'ssh'
    # On the remote command line (which ps shows to every user there): the named variables only.
    for call in calls:
        words = shlex.split(call['line'])
        forwarded = words[words.index('env') + 1:words.index('sh')]
        assert {w.split('=', 1)[0] for w in forwarded} <= launcher.FORWARD, forwarded
        assert not any(secret in call['line'] for secret in SECRETS.values()), call['line']


def test_ssh_launch_stops_everything_when_one_host_fails(tmp_path):
    code, messages, _ = _ssh_launch(tmp_path, """
        open(str(os.getpid()), 'w').close()
        if os.environ.get('DMLC_TASK_ID') == '1':
            time.sleep(0.5)
            sys.exit(3)
        time.sleep(120)
        """, [('127.0.0.1', None), ('127.0.0.2', None)], num_workers=2, num_servers=1,
        timeout=60)
    assert code == 3
    assert messages == ['worker 1 on 127.0.0.2 exited with status 3: stopping the job']
    pids = [int(p) for p in os.listdir(tmp_path / 'out')]
    # The remote processes die with their ssh connection, a moment after it.
    assert len(pids) == 4 and all(ends(p) for p in pids)


def test_ssh_launch_names_the_host_ssh_cannot_reach(tmp_path):
    code, messages, _ = _ssh_launch(tmp_path, 'time.sleep(120)',
                                    [('127.0.0.1', None), ('127.0.0.3', None)], timeout=60)
    assert code == 255 and len(messages) == 1
    assert messages[0].startswith('worker 1 on 127.0.0.3: ssh failed'), messages


def test_hostfile(tmp_path):
    (tmp_path / 'hosts').write_text('# the job\n127.0.0.1\n\nlocalhost:2222 slots=4\n')
    assert launcher.read_hostfile(str(tmp_path / 'hosts')) == [('127.0.0.1', None),
                                                               ('127.0.0.1', '2222')]
    (tmp_path / 'empty').write_text('# nobody\n')
    with pytest.raises(ValueError, match='names no host'):
        launcher.read_hostfile(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='cannot read the hosts file .*missing'):
        launcher.read_hostfile(str(tmp_path / 'missing'))
    args = build_parser().parse_args(['launch', '-H', 'hosts', '--ssh', 'ssh -F cfg', '--', 'x'])
    assert (args.hostfile, args.ssh) == ('hosts', 'ssh -F cfg')


# --- a real parameter-server job on loopback --------------------------------------------------

WORKER = """
import json, os, sys
import mxnet as mx
from gluon_classics import fit
from gluon_classics.distributed import connect

out = sys.argv[1]
job = connect(sys.argv[2])
net, history = fit('lenet', data_dir=os.path.join(out, 'data'), epochs=3, batch_size=32,
                   lr=0.1, seed=0, ctx=mx.cpu(), kvstore=job, progress=False,
                   checkpoint=os.path.join(out, 'job.ckpt'), model_kwargs={'activation': 'relu'})
net.save_parameters(os.path.join(out, f'worker{job.rank}.params'))
with open(os.path.join(out, f'worker{job.rank}.json'), 'w') as f:
    json.dump({'history': history, 'num_workers': job.num_workers}, f)
"""


def _run_job(tmp_path, kvstore, hard_limit=150):
    images, labels = grid_images(256)
    test_images, test_labels = grid_images(64, seed=1)
    write_idx_folder(str(tmp_path / 'data'), images, labels, test_images, test_labels)
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1',
               **LOOPBACK)
    cmd = [sys.executable, '-m', 'gluon_classics.distributed.launcher', '-n', '2', '-s', '1',
           '--timeout', str(hard_limit - 20), '--', sys.executable, str(script), str(tmp_path),
           kvstore]
    # Own session: on timeout the whole group (launcher, scheduler, server, workers) dies.
    proc = subprocess.Popen(cmd, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=hard_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f'the job ran past {hard_limit} s:\n{out[-3000:]}')
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    return out


def _one_process_reference(data_dir, num_workers=2):
    """What the job computes, in one process: WORKER's fit() with the job's total batch."""
    from gluon_classics import get_model, load_data
    from gluon_classics.training import seed_everything
    seed_everything(0)
    train_iter, test_iter = load_data('fashion-mnist', 32 // num_workers, root=data_dir,
                                      ctx=mx.cpu(), shuffle_seed=0)
    net = get_model('lenet', activation='relu', num_classes=10, in_channels=1)
    net.initialize(init.Xavier(), ctx=mx.cpu())
    history = train_ch5(net, StackedShards(train_iter, num_workers), test_iter, 32,
                        make_trainer(net, 0.1), mx.cpu(), 3, seed=0, log=_quiet, progress=False)
    return net, history


def test_dist_sync_job_on_loopback(tmp_path):
    out = _run_job(tmp_path, 'dist_sync')
    results = [json.load(open(tmp_path / f'worker{r}.json')) for r in range(2)]
    assert [r['num_workers'] for r in results] == [2, 2]
    # Both workers end with the same weights: one summed gradient, the same update.
    params = [mx.nd.load(str(tmp_path / f'worker{r}.params')) for r in range(2)]
    assert sorted(params[0]) == sorted(params[1])
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name].asnumpy(), params[1][name].asnumpy(), name)
    # The epochs are reported over both shards, the same on both workers, and learn.
    first, second = (r['history'] for r in results)
    for a, b in zip(first, second):
        assert (a['loss'], a['train_acc'], a['test_acc']) == (b['loss'], b['train_acc'],
                                                              b['test_acc'])
    losses = [record['loss'] for record in first]
    assert losses[-1] < losses[0] * 0.8, losses
    # And they are what one process computes with the job's total batch: 2 x 16.
    net, history = _one_process_reference(str(tmp_path / 'data'))
    for name, param in net._collect_params_with_prefix().items():
        np.testing.assert_allclose(params[0][name].asnumpy(), param.data().asnumpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)
    for a, b in zip(first, history):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-4), (first, history)
    # Rank 0 alone prints, and writes the checkpoint.
    assert out.count('epoch 1, loss') == 1 and out.count('dist_sync: 2 workers x 128') == 1, out
    ckpt = load_checkpoint(str(tmp_path / 'job.ckpt'))  # rank 0's, the whole job's state
    assert ckpt['epoch'] == 3 and ckpt['history'] == first
