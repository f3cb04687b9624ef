"""Our operators (conv_pool.cc) check their attributes and shapes before any
work: each bad one raises one MXNetError naming it and what it may be, where
``pad=2**31-1`` used to pass shape inference and crash the process.

The cases run in a child process, one after another (MXNet used to repeat
every earlier message): a crash there fails the cases it reached instead of
killing pytest. Without a compiler the operators are not there: the tests check
that the status says why, then skip (or fail where GLUON_CLASSICS_REQUIRE names
kernels, as in CI).
"""
import json
import os
import subprocess
import sys

import pytest

from gluon_classics.accel import build
from helpers import no_compiler_status, without_kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST = dict(op='conv_pool', x=(2, 1, 28, 28), w=(6, 1, 5, 5),
             attrs=dict(pad=2, act='sigmoid', pool='max', pool_size=2, out_channels=6))
MAPS = dict(op='conv_pool_maps', x=(2, 6, 14, 14), w=(16, 6, 5, 5),
            attrs=dict(pad=0, act='relu', pool='avg', pool_size=2))

# the child: for each case (a JSON line on stdin), one line 'result {JSON}': the output's
# shape and its largest difference from MXNet's Convolution, Activation and
# Pooling; or the error's extension messages. 'symbol' cases only infer shapes
# (no memory is taken for their large inputs); None drops an attribute.
CHILD = '''
import json, sys
import mxnet as mx
import numpy as np
from gluon_classics.accel import kernels

def mxnets(x, w, b, a):
    k = w.shape[2]
    h = mx.nd.Convolution(x, w, b, kernel=(k, k), pad=(a['pad'],) * 2, num_filter=w.shape[0])
    if a['act'] != 'identity':
        h = mx.nd.Activation(h, act_type=a['act'])
    q = a['pool_size']
    return mx.nd.Pooling(h, pool_type=a['pool'], kernel=(q, q), stride=(q, q))

def run(case):
    op = kernels.OPERATORS[case['op']]
    attrs = {k: v for k, v in case['attrs'].items() if v is not None}
    if case.get('symbol'):
        y = getattr(mx.sym, op)(mx.sym.var('x'), mx.sym.var('w'), mx.sym.var('b'), **attrs)
        _, (shape,), _ = y.infer_shape(x=tuple(case['x']), w=tuple(case['w']), b=(case['w'][0],))
        return dict(shape=list(shape))
    rng = np.random.default_rng(0)
    x, w, b = (mx.nd.array(rng.standard_normal(s)) for s in (case['x'], case['w'], case['w'][:1]))
    y = getattr(mx.nd, op)(x, w, b, **attrs).asnumpy()
    want = mxnets(x, w, b, attrs).asnumpy()
    past = y[:, want.shape[1]:]  # the first block's zero maps up to out_channels
    return dict(shape=list(y.shape), diff=float(np.abs(y[:, :want.shape[1]] - want).max()),
                zeros=bool((past == 0).all()))

if not kernels.load():
    print('result', json.dumps(dict(off=kernels.status())), flush=True)
    sys.exit()
for line in sys.stdin:
    try:
        result = run(json.loads(line))
    except mx.MXNetError as e:
        lines = str(e).split('\\n')  # the extension's: '\\t[i] file[line]: message'
        result = dict(messages=[m.split(': ', 1)[1] for m in lines if m.startswith('\\t[')])
    print('result', json.dumps(result), flush=True)  # MXNet prints to stdout too
'''


def _case(base, symbol=False, x=None, w=None, **attrs):
    return dict(op=base['op'], x=x or base['x'], w=w or base['w'], symbol=symbol,
                attrs={**base['attrs'], **attrs})


BAD = {  # id: (case, its one message, after the operator's name)
    'pad 2**31-1': (_case(FIRST, pad=2**31 - 1), "pad = '2147483647': wants an integer in 0..1024"),
    'pad -1': (_case(FIRST, pad=-1), "pad = '-1': wants an integer in 0..1024"),
    'pad 3abc': (_case(FIRST, pad='3abc'), "pad = '3abc': wants an integer in 0..1024"),
    'pad 2.0': (_case(FIRST, pad=2.0), "pad = '2.0': wants an integer in 0..1024"),
    'pad missing': (_case(FIRST, pad=None), 'pad is missing: wants an integer in 0..1024'),
    'pool_size 0': (_case(FIRST, pool_size=0), "pool_size = '0': wants an integer in 1..32"),
    'pool_size 2**31-1': (_case(FIRST, pool_size=2**31 - 1),
                          "pool_size = '2147483647': wants an integer in 1..32"),
    'pool_size 3, first block': (_case(FIRST, pool_size=3),
                                 "pool_size = '3': wants 1, 2, 4, 8, 16 or 32 (a divisor of the "
                                 "32-column tile)"),
    'out_channels 2**40': (_case(FIRST, out_channels=2**40),
                           "out_channels = '1099511627776': wants an integer in 1..4096"),
    'out_channels below the filters': (
        _case(FIRST, out_channels=4),
        "out_channels = 4: wants 6..4096 (at least the weight's 6 filters)"),
    'act tanh': (_case(FIRST, act='tanh'), "act = 'tanh': wants sigmoid, relu or identity"),
    'pool sum': (_case(MAPS, pool='sum'), "pool = 'sum': wants max or avg"),
    'maps pad 2**31-1': (_case(MAPS, pad=2**31 - 1),
                         "pad = '2147483647': wants an integer in 0..1024"),
    'maps out_channels': (_case(MAPS, out_channels=16),
                          "out_channels: not an attribute of this operator "
                          "(gluon_classics_conv_pool's only)"),
    'x with 3 channels': (_case(FIRST, x=(2, 3, 28, 28)),
                          'x (2, 3, 28, 28): wants (N, 1, H, W) with H, W in 1..16384'),
    'weight of other maps': (_case(MAPS, w=(16, 5, 5, 5)),
                             'weight (16, 5, 5, 5): wants (F, 6, k, k) with F in 1..4096 and k in '
                             '1..11'),
    'kernel 13': (_case(MAPS, w=(16, 6, 13, 13)),
                  'weight (16, 6, 13, 13): wants (F, 6, k, k) with F in 1..4096 and k in 1..11'),
    'kernel past the image': (_case(MAPS, x=(2, 6, 3, 3)),
                              'weight (16, 6, 5, 5): its 5x5 kernel is larger than the padded '
                              'image, 3x3 (H + 2 * pad by W + 2 * pad)'),
    'pool past the output': (_case(MAPS, pool_size=32),
                             "pool_size = 32: wants at most the conv's output, 10x10 "
                             "(H + 2 * pad - k + 1 by W + 2 * pad - k + 1)"),
    'image side 16385': (_case(FIRST, symbol=True, x=(1, 1, 16385, 8)),
                         'x (1, 1, 16385, 8): wants (N, 1, H, W) with H, W in 1..16384'),
    'output past 2^31': (
        _case(FIRST, symbol=True, x=(4096, 1, 1024, 1024), pool_size=1, out_channels=4096),
        "the output (4096, 4096, 1024, 1024) passes MXNet's 2^31 - 1 floats: use smaller "
        "batches"),
    'activations past 2^34': (
        _case(FIRST, symbol=True, x=(65536, 1, 1024, 1024), pool_size=32),
        'a batch of 65536 needs more than 2^34 floats (64 GiB) of activations: use smaller '
        'batches'),
}
GOOD = {  # id: (case, its output's shape)
    'LeNet first block': (FIRST, [2, 6, 14, 14]),
    'LeNet second block': (MAPS, [2, 16, 5, 5]),
    'pad 1024, pool 32': (_case(FIRST, x=(1, 1, 3, 3), w=(2, 1, 3, 3), pad=1024, pool_size=32,
                                out_channels=2), [1, 2, 64, 64]),
    'out_channels 4096': (_case(FIRST, x=(1, 1, 8, 8), w=(6, 1, 3, 3), pad=0, out_channels=4096),
                          [1, 4096, 3, 3]),
    'maps k11, pool 32, identity': (_case(MAPS, x=(1, 2, 40, 40), w=(3, 2, 11, 11), pad=5,
                                          pool_size=32, act='identity', pool='max'), [1, 3, 1, 1]),
    'symbol, LeNet first block': (_case(FIRST, symbol=True), [2, 6, 14, 14]),
}
ORDER = list(BAD.items()) + list(GOOD.items())  # the bad ones first: each error follows another


def _run_child(env=None):
    """Each case's result by id; a case the child died before gets the reason."""
    cases = ''.join(json.dumps(case) + '\n' for _, (case, _) in ORDER)
    done = subprocess.run([sys.executable, '-c', CHILD], input=cases, capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=env)
    lines = [json.loads(line[7:]) for line in done.stdout.splitlines() if line[:7] == 'result ']
    if lines and 'off' in lines[0]:
        return lines[0]
    died = dict(died=f'the child exited with {done.returncode} here: {done.stderr[-2000:]}')
    return {name: lines[i] if i < len(lines) else died for i, (name, _) in enumerate(ORDER)}


@pytest.fixture(scope='module')
def results():
    return _run_child()


def _off(results):
    """Where the operators are not loaded, the status says why (a compiler is missing)."""
    if 'off' in results:
        assert build.find_compiler() is None, results['off']
        assert results['off'] == no_compiler_status()
        without_kernels()


@pytest.mark.parametrize('name', list(BAD))
def test_a_bad_attribute_or_shape_gets_one_message_naming_it(results, name):
    _off(results)
    case, message = BAD[name]
    assert results[name] == dict(messages=[f"gluon_classics_{case['op']}: {message}"])


@pytest.mark.parametrize('name', list(GOOD))
def test_attributes_in_range_still_work(results, name):
    _off(results)
    got, shape = results[name], GOOD[name][1]
    assert got.get('shape') == shape, got
    if 'diff' in got:  # the same numbers as MXNet's operators, zeros past the filters
        assert got['diff'] < 1e-5 and got['zeros'], got


def test_without_a_compiler_the_status_says_why(tmp_path):
    env = dict(os.environ, CXX='no-such-compiler', GLUON_CLASSICS_CACHE=str(tmp_path))
    assert _run_child(env) == dict(off="off: no C++ compiler: CXX='no-such-compiler' is not "
                                       "found (install it, or unset CXX to use g++)")
    assert os.listdir(tmp_path) == []
