"""Where the training graph may compute in bfloat16, and where that paid.

bfloat16 is opt-in (``dtype='bfloat16'``): it is not the function as written
(every activation keeps 8 significant bits), so it is never picked for the
user. Whether it is faster depends on the CPU, not only on its flags: the
chapter's AlexNet step measured 1.71x float32 on an AMD Zen 4 and 0.66x on an
Intel Xeon without AMX, both with avx512_bf16 (``docs/speed.md``). A request
on a CPU class where it measured slower trains, and says so in one line.
"""
import mxnet as mx

from ..choices import DTYPES  # dtype -> what it means for training (data for --help)
from ..utils.devices import cpu_info, cpu_vendor

__all__ = ['DTYPES', 'BF16_FLAGS', 'MEASURED', 'check_dtype', 'cpu_class', 'advice']

BF16_FLAGS = ('avx512_bf16', 'amx_bf16')

# The chapter's AlexNet (1x224x224, batch 128, 2 threads, forward + backward + SGD step),
# bfloat16 against float32 images/s, by CPU class: (vendor, bf16 instructions).
MEASURED = {
    ('AuthenticAMD', 'avx512_bf16'): dict(
        speedup=1.71, machine='AMD EPYC (Zen 4), AVX-512 with avx512_bf16',
        figures='54.6 vs 32.0 images/s', date='2026-11-23'),
    ('GenuineIntel', 'avx512_bf16'): dict(
        speedup=0.66, machine='Intel Xeon, AVX-512 with avx512_bf16, no AMX',
        figures='22.8 vs 34.8 images/s', date='2026-12-02'),
}


def cpu_class(cpuinfo='/proc/cpuinfo'):
    """(vendor, the bf16 instructions it has: 'amx_bf16', 'avx512_bf16' or None)."""
    flags = cpu_info(cpuinfo)[2]
    bf16 = next((f for f in reversed(BF16_FLAGS) if f in flags), None)
    return cpu_vendor(cpuinfo), bf16


def advice(cpuinfo='/proc/cpuinfo'):
    """One line on bfloat16 for this CPU: unavailable, measured faster or slower, or unmeasured."""
    vendor, bf16 = cpu_class(cpuinfo)
    if bf16 is None:
        return 'bfloat16: unavailable (no avx512_bf16 or AMX): train in float32'
    m = MEASURED.get((vendor, bf16))
    if m is None:
        return (f'bfloat16: {bf16} present, not measured on this CPU class ({vendor}): '
                f'compare with benchmarks/bench_alexnet.py --peers ours,bf16')
    verdict = 'faster' if m['speedup'] > 1 else 'slower'
    return (f"bfloat16: measured {verdict} on this CPU class, {m['speedup']:.2f}x float32 "
            f"(chapter AlexNet, {m['figures']}, {m['machine']}, {m['date']})")


def check_dtype(net, ctxs, dtype, hybridize=True, log=None):
    """Raise a one-line ValueError unless ``net`` can train in ``dtype`` on ``ctxs``.

    ``log``, where given, hears one line when bfloat16 measured slower than
    float32 on this CPU class (it trains all the same: the user asked).
    """
    if dtype not in DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}: choose one of {", ".join(DTYPES)}')
    if dtype == 'float32':
        return
    from .graph import chain_layers, supported  # the graph module imports this one
    where = 'dtype bfloat16'
    if not hybridize:
        raise ValueError(f'{where} trains in the hybridized graph: leave hybridize on')
    if not all(c.device_type == 'cpu' for c in ctxs):
        raise ValueError(f'{where} runs on CPUs (oneDNN\'s bf16 kernels), not on '
                         f'{", ".join(map(str, ctxs))}: use float32 there')
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise ValueError(f'{where} needs an MXNet build with oneDNN (MKLDNN); this one has '
                         f'none: use float32')
    vendor, bf16 = cpu_class()
    if bf16 is None:
        raise ValueError(f'{where} needs a CPU with AVX512_BF16 or AMX (bfloat16 '
                         f'instructions); {cpu_info()[0]} has neither: use float32')
    layers = chain_layers(net)
    if layers is None or not supported(layers):
        raise ValueError(f'{where} applies to nets whose forward is a chain of float32 '
                         f'Conv2D, pooling, Dense and Dropout layers (the zoo\'s LeNet and '
                         f'AlexNet, Sequential chains); {type(net).__name__} is not one: '
                         f'use float32')
    m = MEASURED.get((vendor, bf16))
    if log is not None and m is not None and m['speedup'] < 1:
        log(f"gluon_classics: bfloat16 measured {m['speedup']:.2f}x float32 on this CPU class "
            f"({m['machine']}): float32 is faster here")
