"""AMX for MXNet's oneDNN (gluon_classics/amx.py): the decision on both sides, each case in a
fresh process, with the CPU's flags, the kernel's answer and the proof faked where this CPU
cannot give them.

The mechanism itself is real in every case: a fake AMX CPU raises oneDNN's max ISA to
``AVX2`` instead (``amx.ISA``), which any AVX-512 or AVX2 CPU shows in oneDNN's verbose log
(its ISA string and a convolution's kernel), so the log says whether the variable was there
at oneDNN's first primitive, and whether oneDNN kept it after the variable left.
"""
import functools
import json
import os
import subprocess
import sys
import textwrap

import pytest

from gluon_classics import amx
from gluon_classics.devices import cpu_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AMX_CPUINFO = ('vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n'
               'model name\t: INTEL(R) XEON(R) PLATINUM 8581C\nstepping\t: 2\n'
               'flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n')
# Before gluon_classics: amx.py loaded on its own (standard library only) and faked, so that
# `import gluon_classics` below runs _backend's real path with the fakes in place.
PRELUDE = '''
import importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location('gluon_classics.amx', {path!r})
amx = importlib.util.module_from_spec(spec)
sys.modules['gluon_classics.amx'] = amx
spec.loader.exec_module(amx)
amx.ISA = 'AVX2'  # visible in oneDNN's log on any CPU of ours
CALLS = []
if {cpuinfo!r}:
    amx.CPUINFO = {cpuinfo!r}
if {grant!r} is not None:
    def _arch_prctl(code, arg):
        CALLS.append([code, arg])
        return None if {grant!r} else 'Operation not permitted'
    amx._arch_prctl = _arch_prctl
if {proof!r} == 'ok':
    amx._probe = lambda code=None: dict(usable=True, isa='(faked proof)')
elif {proof!r} == 'sigill':  # a child that dies as a VM that advertises AMX and faults does
    real = amx._probe
    amx._probe = lambda code=None: real('import os, signal; os.kill(os.getpid(), signal.SIGILL)')
elif {proof!r} == 'never':
    def _never(code=None):
        raise AssertionError('the proof ran although its verdict was cached')
    amx._probe = _never
'''
# After: a convolution of a new shape, and what this process and a child of it see.
EPILOGUE = '''
from gluon_classics import mx
x = mx.nd.ones((1, 16, 8, 8))
mx.nd.Convolution(x, mx.nd.ones((16, 16, 3, 3)), kernel=(3, 3), num_filter=16,
                  no_bias=True).wait_to_read()
show = 'import os; print(os.environ.get("DNNL_MAX_CPU_ISA"))'
child = subprocess.run([sys.executable, '-c', show], capture_output=True, text=True).stdout.strip()
print('RESULT ' + json.dumps(dict(state=amx.state(), calls=CALLS, child=child,
                                  env=os.environ.get('DNNL_MAX_CPU_ISA'),
                                  describe=amx.describe())), flush=True)
'''


def _child(tmp_path, before='', cpuinfo=True, grant=True, proof='ok', env=None, after=''):
    """Run a process that imports gluon_classics under the fakes; (result, oneDNN's ISA
    string, the convolutions' kernels, stderr)."""
    path = ''
    if cpuinfo:
        path = str(tmp_path / 'cpuinfo')
        with open(path, 'w') as f:
            f.write(AMX_CPUINFO)
    code = PRELUDE.format(path=os.path.join(ROOT, 'gluon_classics', 'amx.py'), cpuinfo=path,
                          grant=grant, proof=proof)
    code += textwrap.dedent(before) + '\nimport gluon_classics\n' + EPILOGUE + after
    full = {k: v for k, v in os.environ.items() if k not in amx.ISA_VARS + (amx.ENV,)}
    full.update(PYTHONPATH=ROOT, DNNL_VERBOSE='1', GLUON_CLASSICS_CACHE=str(tmp_path / 'cache'),
                **(env or {}))
    done = subprocess.run([sys.executable, '-c', code], env=full, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith('RESULT '))[7:])
    result['doctor'] = next((json.loads(line[7:]) for line in lines
                             if line.startswith('DOCTOR ')), None)
    return (result,) + _log(lines) + (done.stderr,)


def _log(lines):
    """oneDNN's ISA string(s) and the convolutions' kernels in its verbose log."""
    return ([line.split('isa:', 1)[1] for line in lines if ',info,cpu,isa:' in line],
            [line.split(',')[4] for line in lines if ',exec,cpu,convolution,' in line])


@functools.lru_cache(maxsize=None)
def _native():
    """oneDNN's ISA string and kernel for the same convolution without gluon_classics."""
    code = EPILOGUE.split('show =')[0].replace('from gluon_classics import mx',
                                                'import mxnet as mx')
    env = {k: v for k, v in os.environ.items() if k not in amx.ISA_VARS}
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=dict(env, DNNL_VERBOSE='1'), timeout=300)
    isa, convs = _log(done.stdout.splitlines())
    return isa, convs[-1:]


def test_granted_raises_the_isa_before_the_first_primitive_and_leaves_nothing_for_children(
        tmp_path):
    result, isa, convs, err = _child(tmp_path)
    assert result['state']['state'] == 'on' and not result['state']['late']
    assert result['calls'] == [[amx.ARCH_REQ_XCOMP_PERM, amx.XFEATURE_XTILEDATA]]
    assert isa == ['Intel AVX2']  # the variable was there at oneDNN's first primitive ...
    assert convs[-1] == 'jit:avx2'  # ... and oneDNN kept it for a new shape after it left
    assert result['env'] is None and result['child'] == 'None'  # nothing for children
    assert result['describe'].startswith("AMX: on (tile permission granted; oneDNN's ISA:")
    assert err == ''


def test_refused_permission_never_raises_the_isa(tmp_path):
    result, isa, convs, err = _child(tmp_path, grant=False)
    assert result['state']['state'] == 'refused'
    assert 'refused the tile permission (Operation not permitted)' in result['state']['reason']
    assert (isa, convs[-1:]) == _native() and 'AVX2' not in isa[0]
    assert result['env'] is None and err == ''


@pytest.mark.parametrize('variable', amx.ISA_VARS)
@pytest.mark.parametrize('value, asks', [('AVX512_CORE', False), ('AVX512_CORE_AMX', True)])
def test_the_users_own_max_isa_stands(tmp_path, variable, value, asks):
    """Never overridden; where it lets oneDNN use AMX, the permission is asked for, so that
    their setting does not die of SIGILL."""
    result, isa, convs, err = _child(tmp_path, env={variable: value})
    assert result['state']['state'] == 'user'
    assert f'your own {variable}={value}' in result['state']['reason']
    assert result['env'] == (value if variable == 'DNNL_MAX_CPU_ISA' else None)
    assert bool(result['calls']) == asks
    assert result['describe'] == f'AMX: present, left to your own {variable}={value}' + (
        '; tile permission granted' if asks else '')
    assert 'AVX2' not in ''.join(isa) and 'avx2' not in ''.join(convs)


def test_mxnet_imported_and_run_before_says_so_in_one_line_and_keeps_its_isa(tmp_path):
    before = '''
        import mxnet
        x = mxnet.nd.ones((1, 1, 4, 4))
        mxnet.nd.Convolution(x, x, kernel=(4, 4), num_filter=1, no_bias=True).wait_to_read()
    '''
    result, isa, convs, err = _child(tmp_path, before=before)
    assert result['state']['late'] and result['state']['state'] == 'on'
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'mxnet was imported before gluon_classics' in lines[0]
    # oneDNN had chosen its ISA at the script's convolution: the raised one came too late
    assert (isa, convs[-1:]) == _native()
    assert result['env'] is None and result['child'] == 'None'
    assert 'imported before gluon_classics' in result['describe']


def test_mxnet_imported_without_a_onednn_primitive_still_gets_it(tmp_path):
    before = '''
        import mxnet
        (mxnet.nd.ones((2,)) + 1).wait_to_read()  # not a oneDNN primitive
    '''
    result, isa, convs, err = _child(tmp_path, before=before)
    assert result['state']['late'] and isa == ['Intel AVX2'] and convs[-1] == 'jit:avx2'
    assert result['env'] is None


@pytest.mark.parametrize('how', ['env', 'python'])
def test_the_off_switch_restores_todays_behaviour(tmp_path, how):
    if how == 'env':
        result, isa, convs, err = _child(tmp_path, env={amx.ENV: '0'})
        assert result['state']['reason'] == f'{amx.ENV}=0'
    else:
        result, isa, convs, err = _child(tmp_path, before='amx.use(False)')
        assert result['state']['reason'] == 'gluon_classics.amx.use(False)'
    assert result['state']['state'] == 'off' and result['calls'] == []
    assert (isa, convs[-1:]) == _native()
    assert result['describe'].startswith('AMX: present, off (')


def test_a_bad_switch_value_fails_mxnets_load_in_one_line(tmp_path):
    code = 'import gluon_classics\nfrom gluon_classics import lenet'  # the first use loads MXNet
    env = dict(os.environ, PYTHONPATH=ROOT, **{amx.ENV: 'maybe'})
    done = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith(
        f"{amx.ENV}='maybe' is not a switch: set it to 0 (AMX off) or 1, or leave it unset "
        f"(on where it is safe)")


def test_use_after_the_decision_that_would_change_it_raises(tmp_path):
    before = 'amx._state = dict(state="on", reason=None, isa="x", late=False)'
    code = PRELUDE.format(path=os.path.join(ROOT, 'gluon_classics', 'amx.py'), cpuinfo='',
                          grant=None, proof=None) + before + '''
amx.use(True)  # no change: fine
try:
    amx.use(False)
except RuntimeError as err:
    print(err)
'''
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert 'AMX is already on (decided when MXNet was loaded)' in done.stdout


def test_a_machine_that_faults_on_amx_falls_back_in_one_line_and_remembers(tmp_path):
    result, isa, convs, err = _child(tmp_path, proof='sigill')
    assert result['state']['state'] == 'faulted'
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'died of SIGILL in a child process' in lines[0]
    assert (isa, convs[-1:]) == _native()
    with open(tmp_path / 'cache' / 'amx.json') as f:
        cache = json.load(f)
    (key, verdict), = cache.items()
    assert 'model 207' in key and f'Linux {os.uname().release}' in key
    assert verdict['usable'] is False
    # the next process reads the verdict: no second proof, the same state, no second line
    again, isa, convs, err = _child(tmp_path, proof='never')
    assert again['state'] == result['state'] and err == ''


def test_the_proof_on_this_machine_says_why_amx_cannot_run_here(tmp_path):
    """The real proof child (no fakes): on a CPU without AMX the kernel refuses the tile
    state, or oneDNN picks no AMX kernel; never usable."""
    if {'amx_bf16', 'amx_tile'} <= cpu_info()[2]:
        pytest.skip('this CPU has AMX: test_the_real_amx_path covers it')
    verdict = amx._probe()
    assert verdict['usable'] is False
    assert ('refused the tile permission' in verdict['reason']
            or 'picked no AMX kernel' in verdict['reason'])


def test_a_cpu_without_amx_changes_nothing(tmp_path):
    """No AMX flags: no permission asked, no variable, oneDNN's ISA and kernels as without
    gluon_classics."""
    if {'amx_bf16', 'amx_tile'} <= cpu_info()[2]:
        pytest.skip('this CPU has AMX')
    result, isa, convs, err = _child(tmp_path, cpuinfo=False)
    assert result['state']['state'] == 'absent' and result['calls'] == []
    assert (isa, convs[-1:]) == _native()
    assert result['describe'].startswith('AMX: absent (this CPU reports no amx_bf16')


DOCTOR = """
from gluon_classics import doctor
lines = doctor.format_report(doctor.report())
print('DOCTOR ' + json.dumps([line for line in lines if line.startswith('AMX')]))
"""


@pytest.mark.parametrize('case, says', [
    (dict(), "AMX: on (tile permission granted; oneDNN's ISA: (faked proof))"),
    (dict(grant=False), 'AMX: present, off (the kernel refused the tile permission '
                        '(Operation not permitted))'),
    (dict(env={amx.ENV: 'off'}), f'AMX: present, off ({amx.ENV}=off)'),
    (dict(cpuinfo=False), 'AMX: absent (this CPU reports no amx_bf16 or amx_tile)'),
])
def test_doctor_has_one_amx_line(tmp_path, case, says):
    if not case.get('cpuinfo', True) and {'amx_bf16', 'amx_tile'} <= cpu_info()[2]:
        pytest.skip('this CPU has AMX')
    code_env = dict(case.get('env', {}), GLUON_CLASSICS_DATA=str(tmp_path))
    args = {k: v for k, v in case.items() if k != 'env'}
    result = _child(tmp_path, env=code_env, after=DOCTOR, **args)[0]
    assert result['doctor'] == [says]


def _fake_proof(*lines, status=0):
    """A proof child that prints ``lines`` and exits with ``status``."""
    return 'import sys\n' + ''.join(f'print({line!r})\n' for line in lines) + \
        f'sys.exit({status})\n'


AMX_ISA = 'Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX'


@pytest.mark.parametrize('lines, usable, says', [
    ([f'dnnl_verbose,info,cpu,isa:{AMX_ISA}',
      'dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,forward_inference,x',
      'AMX_PROBE {"granted": true}'], True, AMX_ISA),
    (['dnnl_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support',
      'dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_bf16,forward_inference,x',
      'AMX_PROBE {"granted": true}'], False, 'oneDNN picked no AMX kernel under '
                                            'AVX512_CORE_AMX (its ISA: Intel AVX-512 with'),
    (['AMX_PROBE {"granted": false, "reason": "Invalid argument"}'], False,
     'the kernel refused the tile permission in the proof (Invalid argument)'),
])
def test_the_proofs_verdict_is_read_from_onednns_log(lines, usable, says):
    verdict = amx._probe(_fake_proof(*lines))
    assert verdict['usable'] is usable
    assert says in (verdict['isa'] if usable else verdict['reason'])
    assert 'keep' not in verdict  # a verdict on AMX: remembered


def test_a_proof_that_fails_for_another_reason_is_not_remembered():
    verdict = amx._probe(_fake_proof('ImportError: no mxnet', status=1))
    assert verdict['usable'] is False and verdict['keep'] is False


@pytest.mark.skipif(not {'amx_bf16', 'amx_tile'} <= cpu_info()[2],
                    reason='this CPU has no AMX (amx_bf16 and amx_tile): the AMX path cannot run '
                           'here; the tests above fake it')
def test_the_real_amx_path(tmp_path):
    """On an AMX CPU, nothing faked: a bfloat16 convolution runs on oneDNN's AMX kernels."""
    code = '''
import gluon_classics
from gluon_classics import amx, mx
from mxnet.contrib.amp.amp import bfloat16
x = mx.nd.amp_cast(mx.nd.ones((1, 16, 8, 8)), dtype=bfloat16)
w = mx.nd.amp_cast(mx.nd.ones((16, 16, 3, 3)), dtype=bfloat16)
mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=16, no_bias=True).wait_to_read()
print('STATE', amx.state()['state'], amx.describe())
'''
    env = {k: v for k, v in os.environ.items() if k not in amx.ISA_VARS + (amx.ENV,)}
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=dict(env, PYTHONPATH=ROOT, DNNL_VERBOSE='1',
                                   GLUON_CLASSICS_CACHE=str(tmp_path)), timeout=300)
    assert done.returncode == 0, done.stderr
    state = next(line for line in done.stdout.splitlines() if line.startswith('STATE '))
    if ' on ' not in state:
        pytest.fail(f'AMX is advertised but not on: {state}')
    convs = _log(done.stdout.splitlines())[1]
    assert 'amx' in convs[-1], convs
