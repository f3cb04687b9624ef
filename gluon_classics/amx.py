"""AMX for MXNet's oneDNN: on by default where it is safe (docs/amx.md).

MXNet 1.9.1's oneDNN (v2.4.4) has AMX kernels for bfloat16 but stops at
AVX512_CORE_BF16 unless ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX``, which it reads
once, at its first primitive. Linux (5.16 and later) kills a process with
SIGILL on its first AMX instruction unless the process asked for the tile
state first (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``); the
permission does not survive ``exec``. So, before MXNet's first oneDNN
primitive (``_backend`` calls :func:`before_import` and :func:`latch` around
``import mxnet``), where the CPU reports amx_bf16 and amx_tile, nobody
switched it off and the user set no max ISA of their own: ask for the
permission; only where it is granted and a child process once proved that
AMX runs here (some virtual machines advertise it and fault), raise the ISA,
run one tiny primitive so that oneDNN keeps it, and take the variable out of
the environment again, so no child inherits a raised ISA without the
permission (each process of ours asks on its own import).

Standard library only: this runs before MXNet is imported.
"""
import ctypes
import json
import os
import platform
import signal
import subprocess
import sys

__all__ = ['use', 'state', 'describe', 'ENV', 'ISA', 'ISA_VARS']

ENV = 'GLUON_CLASSICS_AMX'  # 0 keeps AMX off; unset or 1: on where it is safe
ISA = 'AVX512_CORE_AMX'
ISA_VARS = ('DNNL_MAX_CPU_ISA', 'MKLDNN_MAX_CPU_ISA')  # oneDNN's name, and its old one
CPUINFO = '/proc/cpuinfo'
FLAGS = ('amx_bf16', 'amx_tile')
SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 158, 0x1023, 18  # x86-64 Linux
PROBE_TIMEOUT_S = 120
_OFF, _ON = ('0', 'off', 'false', 'no'), ('', '1', 'on', 'true', 'yes')

# The proof, in a child: the permission, then one small bfloat16 convolution under the
# raised ISA, with oneDNN's verbose log on (its ISA string and the kernel it picked).
PROBE = '''import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(%d, %d, %d) != 0:
    print('AMX_PROBE ' + json.dumps({'granted': False,
                                     'reason': os.strerror(ctypes.get_errno())}), flush=True)
    sys.exit(0)
import mxnet as mx
from mxnet.contrib.amp.amp import bfloat16
x = mx.nd.amp_cast(mx.nd.ones((1, 16, 8, 8)), dtype=bfloat16)
w = mx.nd.amp_cast(mx.nd.ones((16, 16, 3, 3)), dtype=bfloat16)
mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=16, no_bias=True).wait_to_read()
print('AMX_PROBE ' + json.dumps({'granted': True}), flush=True)
''' % (SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)

_switch = None  # use(False) before MXNet loads keeps AMX off
_state = None  # the decision, once per process: dict(state, reason, isa, late)


def use(flag):
    """Python's switch: ``use(False)`` keeps AMX off, ``use(True)`` allows it where safe.

    Only before MXNet is loaded (the decision is taken then, once per
    process); afterwards a call that would change it raises RuntimeError.
    """
    global _switch
    if _state is not None and _state['state'] == ('off' if flag else 'on'):
        raise RuntimeError(
            f"gluon_classics: AMX is already {_state['state']} (decided when MXNet was loaded): "
            f"call gluon_classics.amx.use({flag}) before anything loads MXNet, or set "
            f"{ENV}={int(bool(flag))} before starting Python")
    _switch = bool(flag)


def state():
    """The decision: ``dict(state, reason, isa, late)``, or None before MXNet was loaded.

    ``state`` is one of ``on`` (permission granted, oneDNN's max ISA raised;
    ``isa`` is oneDNN's own ISA string from the proof), ``absent`` (no AMX on
    this CPU), ``off`` (the switch), ``user`` (the user's own max ISA),
    ``refused`` (the kernel refused the permission) or ``faulted`` (the proof
    failed: ``reason`` says how). ``late``: MXNet was imported before
    gluon_classics, so oneDNN may have chosen its ISA already.
    """
    return _state


def describe():
    """One line on AMX, for ``gluon-classics doctor``."""
    s = _state or dict(state='undecided', reason='MXNet not loaded yet', isa=None, late=False)
    if s['state'] == 'on':
        line = f"AMX: on (tile permission granted; oneDNN's ISA: {s['isa']})"
        return line + ('; MXNet was imported before gluon_classics: oneDNN may have chosen its '
                       'ISA before' if s['late'] else '')
    if s['state'] == 'absent':
        return f"AMX: absent ({s['reason']})"
    if s['state'] == 'user':
        return f"AMX: present, left to {s['reason']}"
    return f"AMX: {'present, ' if s['state'] != 'undecided' else ''}off ({s['reason']})"


def _say(text):
    print(f'gluon_classics: {text}', file=sys.stderr, flush=True)


def _cpu(cpuinfo=None):
    """(flags, the CPU's identity for the cache) of the first CPU in ``cpuinfo``."""
    from .utils.cpuinfo import first_cpu  # standard library only, like this module
    fields = first_cpu(cpuinfo or CPUINFO)
    ident = ', '.join(f'{k} {fields.get(k, "?")}' for k in ('model name', 'cpu family', 'model',
                                                            'stepping'))
    return set(fields.get('flags', '').split()), ident


def _arch_prctl(code, arg):
    """The kernel's answer to ``arch_prctl(code, arg)``: None when granted, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_ARCH_PRCTL, code, arg) == 0:
        return None
    return os.strerror(ctypes.get_errno())


def _request():
    """Ask for the AMX tile state: None when granted, else the kernel's reason."""
    return _arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)


def _cache_path():
    from .utils.outputs import cache_dir
    return os.path.join(cache_dir(), 'amx.json')


def _read_cache():
    try:
        with open(_cache_path()) as f:
            cache = json.load(f)
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key, verdict):
    from .utils.outputs import OutputError, write_text
    cache = _read_cache()
    cache[key] = verdict
    try:
        write_text(_cache_path(), json.dumps(cache, indent=1, sort_keys=True) + '\n',
                   'the AMX verdict cache')
    except OutputError:
        pass  # a read-only cache folder: the proof runs again next time, nothing is lost


def _probe(code=None):
    """Run the proof in a child: ``dict(usable, reason or isa)``, or None where the child
    failed for a reason that says nothing about AMX (not worth remembering)."""
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARS and 'VERBOSE' not in k}
    env.update(DNNL_MAX_CPU_ISA=ISA, DNNL_VERBOSE='1', OMP_NUM_THREADS='1')
    try:
        done = subprocess.run([sys.executable, '-c', code or PROBE], env=env,
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return dict(usable=False, reason=f'the proof did not finish ({err})', keep=False)
    lines = done.stdout.splitlines()
    isa = next((line.split('isa:', 1)[1] for line in lines
                if line.startswith('dnnl_verbose,info,cpu,isa:')), None)
    convs = [line.split(',')[4] for line in lines
             if line.startswith('dnnl_verbose,exec,cpu,convolution,')]
    result = next((json.loads(line[len('AMX_PROBE '):]) for line in lines
                   if line.startswith('AMX_PROBE ')), None)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return dict(usable=False, reason=f'a bfloat16 step under AMX died of {name} in a child '
                                         f'process: this machine advertises AMX but faults on it')
    if result is None or done.returncode:
        tail = (done.stderr.strip().splitlines() or ['no output'])[-1]
        return dict(usable=False, reason=f'the proof failed: {tail}', keep=False)
    if not result['granted']:
        return dict(usable=False, reason=f"the kernel refused the tile permission in the "
                                         f"proof ({result['reason']})")
    if not any('amx' in impl for impl in convs):
        return dict(usable=False, reason=f"oneDNN picked no AMX kernel under {ISA} (its ISA: "
                                         f"{isa}; kernel {', '.join(convs) or 'none'})")
    return dict(usable=True, isa=isa)


def _verdict(ident):
    """(the proof's verdict for this CPU and kernel, whether it was proved just now): cached,
    or proved once."""
    key = f'{ident}; Linux {platform.release()}'
    cached = _read_cache().get(key)
    if isinstance(cached, dict) and 'usable' in cached:
        return cached, False
    verdict = _probe()
    if verdict.pop('keep', True):
        _write_cache(key, verdict)
    return verdict, True


def _decide():
    flags, ident = _cpu()
    setting = os.environ.get(ENV, '').strip().lower()
    if setting not in _OFF + _ON:
        raise ValueError(f"gluon_classics: {ENV}={os.environ[ENV]!r} is not a switch: set it "
                         f"to 0 (AMX off) or 1, or leave it unset (on where it is safe)")
    missing = [f for f in FLAGS if f not in flags]
    if missing or platform.machine() != 'x86_64' or not sys.platform.startswith('linux'):
        why = f"this CPU reports no {' or '.join(missing)}" if missing else \
            f'AMX is enabled on x86-64 Linux only ({sys.platform}, {platform.machine()})'
        return dict(state='absent', reason=why)
    if setting in _OFF or _switch is False:
        why = f'{ENV}={os.environ[ENV]}' if setting in _OFF else 'gluon_classics.amx.use(False)'
        return dict(state='off', reason=why)
    user = next((v for v in ISA_VARS if v in os.environ), None)
    if user:
        value = os.environ[user]
        # their setting stands; where it lets oneDNN use AMX, the permission keeps it from SIGILL
        if 'AMX' not in value.upper() and value.upper() != 'ALL':
            return dict(state='user', reason=f'your own {user}={value}')
        refused = _request()
        return dict(state='user', reason=f'your own {user}={value}; ' + (
            f'the kernel refused the tile permission ({refused})' if refused else
            'tile permission granted'))
    refused = _request()
    if refused:
        return dict(state='refused', reason=f'the kernel refused the tile permission ({refused})')
    verdict, new = _verdict(ident)
    if not verdict['usable']:
        if new:  # said once; doctor says it every time
            _say(f"AMX off: {verdict['reason']}; bfloat16 runs on AVX-512 (docs/amx.md)")
        return dict(state='faulted', reason=verdict['reason'])
    return dict(state='on', isa=verdict['isa'])


def before_import():
    """Decide (once per process); where AMX goes on, put the raised max ISA in the
    environment for oneDNN to read. Returns the variable set, or None; raises ValueError
    where ``GLUON_CLASSICS_AMX`` is not a switch.

    Call right before ``import mxnet``, then :func:`latch` right after it.
    """
    global _state
    if _state is not None:
        return None
    loaded = 'mxnet' in sys.modules
    _state = dict(dict(reason=None, isa=None), **_decide(), late=loaded)
    if loaded and _state['state'] == 'on':
        _say('mxnet was imported before gluon_classics: AMX applies only if no oneDNN operator '
             'ran before (import gluon_classics first to be sure; docs/amx.md)')
    if _state['state'] != 'on':
        return None
    os.environ[ISA_VARS[0]] = ISA
    return ISA_VARS[0]


def latch(mx, variable):
    """Where :func:`before_import` set ``variable``: run one tiny oneDNN primitive, so that
    oneDNN reads it and keeps it; the caller then takes it out of the environment."""
    if variable is None:
        return
    x = mx.nd.ones((1, 1, 3, 3), ctx=mx.cpu())
    mx.nd.Convolution(x, x, kernel=(3, 3), num_filter=1, no_bias=True).wait_to_read()
