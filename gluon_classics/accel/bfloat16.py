"""Where the training graph may compute in bfloat16, and where that paid.

bfloat16 is opt-in (``dtype='bfloat16'``): it is not the function as written
(every activation keeps 8 significant bits), so it is never picked for the
user. Whether it is faster depends on the network and the CPU, not only on its
flags (the chapter's AlexNet gains on some CPU classes and loses on others;
LeNet's layers are too small to gain anywhere): the figures are data,
``docs/measurements/bfloat16.json``, by network and CPU class. A request where
it measured slower trains, and says so in one line; ``fit`` (``train``) in
float32 hints at bfloat16 where it measured at least 1.5x faster.
"""
import functools
import json
import os

import mxnet as mx

from .. import amx
from ..choices import DTYPES  # dtype -> what it means for training (data for --help)
from ..devices import cpu_info, cpu_vendor

__all__ = ['DTYPES', 'BF16_FLAGS', 'MEASUREMENTS', 'HINT_AT', 'measured', 'lookup',
           'check_dtype', 'cpu_class', 'advice', 'hint']

BF16_FLAGS = ('avx512_bf16', 'amx_bf16')
# docs/measurements/bfloat16.json, through the package's link to it (a wheel holds the file)
MEASUREMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bfloat16.json')
HINT_AT = 1.5  # float32 training hints at bfloat16 where it measured at least this much faster


@functools.lru_cache(maxsize=None)
def measured(path=MEASUREMENTS):
    """The measured rows (``network``, ``variant``, ``vendor``, ``bf16``, ``speedup``,
    ``machine``, ``figures``, ``how``, ``date``, ``source``)."""
    with open(path) as f:
        return tuple(json.load(f)['measurements'])


def lookup(network, variant, vendor, bf16, rows=None):
    """The row measured for ``network`` (its ``variant``, else every variant's) on the
    CPU class ``(vendor, bf16)``, or None."""
    rows = [r for r in (measured() if rows is None else rows) if (r['network'], r['vendor'],
                                                                    r['bf16']) ==
            (network, vendor, bf16)]
    return next((r for r in rows if r['variant'] == variant), None) or next(
        (r for r in rows if r['variant'] is None), None)


def _network(net):
    """(the zoo's model name, its variant) of ``net``: ('alexnet', 'd2l')..."""
    return type(net).__name__.lower(), getattr(net, 'variant', None)


def cpu_class(cpuinfo='/proc/cpuinfo', amx_on=None):
    """(vendor, the bf16 instructions oneDNN runs: 'amx_bf16', 'avx512_bf16' or None).

    'amx_bf16' only where AMX is on for MXNet's oneDNN (``amx_on``; by default
    :func:`gluon_classics.amx.state`): an AMX CPU with it off runs avx512_bf16.
    """
    flags = cpu_info(cpuinfo)[2]
    if amx_on is None:
        amx_on = (amx.state() or {}).get('state') == 'on'
    usable = [f for f in BF16_FLAGS if f in flags and (f != 'amx_bf16' or amx_on)]
    return cpu_vendor(cpuinfo), usable[-1] if usable else None


def _figure(row):
    return f"{row['speedup']:.2f}x float32 ({row['figures']}, {row['machine']}, {row['date']})"


def advice(cpuinfo='/proc/cpuinfo', amx_on=None):
    """One line on bfloat16 for this CPU: unavailable, measured faster or slower (the
    chapter's AlexNet, then LeNet), or unmeasured."""
    vendor, bf16 = cpu_class(cpuinfo, amx_on)
    if bf16 is None:
        return 'bfloat16: unavailable (no avx512_bf16 or AMX): train in float32'
    m = lookup('alexnet', 'd2l', vendor, bf16)
    if m is None:
        return (f'bfloat16: {bf16} present, not measured on this CPU class ({vendor}): '
                f'compare with python -m benchmarks.bench_alexnet --peers ours,bf16')
    verdict = 'faster' if m['speedup'] > 1 else 'slower'
    lenet = lookup('lenet', 'd2l', vendor, bf16)
    return (f"bfloat16: measured {verdict} on this CPU class, {_figure(m)} for the chapter's "
            f"AlexNet" + (f"; LeNet {lenet['speedup']:.2f}x" if lenet else ''))


def hint(net, ctxs, hybridize=True, cpuinfo='/proc/cpuinfo'):
    """A one-line hint for training ``net`` in float32 where bfloat16 could run and
    measured at least :data:`HINT_AT` times faster for it on this CPU class, else None."""
    if _refusal(net, ctxs, hybridize, cpuinfo) is not None:
        return None
    m = lookup(*_network(net), *cpu_class(cpuinfo))
    if m is None or m['speedup'] < HINT_AT:
        return None
    return (f"gluon_classics: bfloat16 measured {m['speedup']:.2f}x float32 for {m['network']} "
            f"on this CPU class ({m['machine']}, {m['date']}): dtype bfloat16 trains faster "
            f"here, in other numbers (opt-in; docs/training.md)")


def _refusal(net, ctxs, hybridize, cpuinfo='/proc/cpuinfo'):
    """Why ``net`` cannot train in bfloat16 on ``ctxs`` (one line), or None."""
    from .graph import chain_layers, supported  # the graph module imports this one
    where = 'dtype bfloat16'
    if not hybridize:
        return f'{where} trains in the hybridized graph: leave hybridize on'
    if not all(c.device_type == 'cpu' for c in ctxs):
        return (f'{where} runs on CPUs (oneDNN\'s bf16 kernels), not on '
                f'{", ".join(map(str, ctxs))}: use float32 there')
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return f'{where} needs an MXNet build with oneDNN (MKLDNN); this one has none: use float32'
    if cpu_class(cpuinfo)[1] is None:
        return (f'{where} needs a CPU with AVX512_BF16 or AMX (bfloat16 instructions); '
                f'{cpu_info(cpuinfo)[0]} has neither: use float32')
    layers = chain_layers(net)
    if layers is None or not supported(layers):
        return (f'{where} applies to nets whose forward is a chain of float32 Conv2D, '
                f'pooling, Dense and Dropout layers (the zoo\'s LeNet and AlexNet, Sequential '
                f'chains); {type(net).__name__} is not one: use float32')
    return None


def check_dtype(net, ctxs, dtype, hybridize=True, log=None):
    """Raise a one-line ValueError unless ``net`` can train in ``dtype`` on ``ctxs``.

    ``log``, where given, hears one line when bfloat16 measured slower than
    float32 for this network on this CPU class (it trains all the same: the
    user asked).
    """
    if dtype not in DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}: choose one of {", ".join(DTYPES)}')
    if dtype == 'float32':
        return
    why = _refusal(net, ctxs, hybridize)
    if why:
        raise ValueError(why)
    m = lookup(*_network(net), *cpu_class())
    if log is not None and m is not None and m['speedup'] < 1:
        log(f"gluon_classics: bfloat16 measured {m['speedup']:.2f}x float32 for "
            f"{m['network']} on this CPU class ({m['machine']}): float32 is faster here")
