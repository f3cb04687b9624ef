"""The AlexNet benchmark's bookkeeping (benchmarks/bench_alexnet.py): peers left out, the
GEMM peak, the last line, and the PyTorch peer's network against alexnet('d2l') (no timing:
that is the lead's run)."""
import argparse
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from benchmarks import bench_alexnet
from benchmarks.gemm import Peaks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AVX2 = {'avx', 'avx2', 'fma'}
FC, MATMUL = 'mx.nd.FullyConnected 2048^2 (oneDNN)', 'torch.matmul 2048^2'


def _gemm(source, gflops, dtype='float32', **extra):
    return dict(kind='gemm', source=source, dtype=dtype, gflops=gflops, **extra)


def test_peak_is_the_best_sample_of_any_source_and_names_it():
    peaks = Peaks()
    for record in (_gemm(FC, 40.0), _gemm(MATMUL, 80.0), _gemm(FC, 95.0), _gemm(MATMUL, 90.0),
                   dict(kind='skip', reason='torch not installed'),
                   _gemm(FC, None, 'bfloat16', error='MXNetError: no bf16 inner product')):
        peaks.add(record)
    assert peaks.best('float32') == (95.0, FC)
    assert peaks.best('bfloat16') == (None, None)
    line = peaks.describe('float32')
    assert line.startswith(f'float32 GEMM peak: 95.0 GFLOP/s from {FC}')
    assert '40.0 / 95.0' in line and '80.0 / 90.0' in line
    assert 'failed (MXNetError: no bf16 inner product)' in peaks.describe('bfloat16')


def test_peers_this_machine_cannot_run_are_left_out_in_one_line_each(capsys):
    ap = argparse.ArgumentParser()
    args = argparse.Namespace(peers='d2l,ours,bf16,torch,torch_bf16')
    assert bench_alexnet.select_peers(ap, args, AVX2, have_torch=True) == ['d2l', 'ours', 'torch']
    assert bench_alexnet.select_peers(ap, args, AVX2 | {'amx_bf16'}, have_torch=False) == \
        ['d2l', 'ours']
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("bench_alexnet: this CPU has no avx512_bf16 (MXNet's oneDNN has bfloat16 "
                      "kernels only there): leaving out the bf16 peer")
    assert 'neither avx512_bf16 nor AMX: leaving out the torch_bf16 peer' in out[1]
    assert out[-1].startswith('bench_alexnet: PyTorch is not installed: leaving out torch, '
                              'torch_bf16 (pip install torch==2.13.0 to include them;')
    with pytest.raises(SystemExit) as stop:
        bench_alexnet.select_peers(ap, argparse.Namespace(peers='ours,jax'), AVX2, True)
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        'error: unknown peer(s) jax: choose from d2l, ours, bf16, torch, torch_bf16')


def _report(rates, peaks, batch=4, amx=None):
    results = {p: {'times': [batch / r, batch / r]} for p, r in rates.items()}
    for peer, line in (amx or {}).items():
        results[peer]['amx'] = line
    args = argparse.Namespace(batch_size=batch)
    return bench_alexnet.report(args, list(rates), results, peaks, 1e9, '2', lambda: '0.0')


def test_last_line_has_the_torch_ratios_only_where_both_peers_ran(capsys):
    peaks = Peaks()
    peaks.add(_gemm(MATMUL, 100.0))
    last = _report({'d2l': 10.0, 'ours': 30.0, 'torch': 20.0}, peaks)
    assert last.split('  ') == ['ours vs d2l: 3.00x', 'torch vs d2l: 2.00x',
                                'ours_vs_torch_fp32=1.50', 'best_vs_torch_best=1.50']
    last = _report({'d2l': 10.0, 'ours': 30.0}, peaks)
    assert 'ours_vs_torch' not in last and last == 'ours vs d2l: 3.00x'
    table = capsys.readouterr().out
    assert f'float32 GEMM peak: 100.0 GFLOP/s from {MATMUL}' in table
    assert '30%' in table  # 30 examples/s x 1 GFLOP against 100


def test_last_line_sets_our_fastest_against_pytorchs_fastest(capsys):
    peaks = Peaks()
    last = _report({'ours': 30.0, 'bf16': 50.0, 'torch': 45.0, 'torch_bf16': 40.0}, peaks)
    assert last.split('  ') == ['bf16 vs ours: 1.67x', 'ours_vs_torch_fp32=0.67',
                                'ours_vs_torch_bf16=1.25', 'best_vs_torch_best=1.11']
    assert 'fastest: ours bf16 50.0, PyTorch torch 45.0 examples/s' in capsys.readouterr().out
    # one side's faster dtype may be missing: still the fastest of what ran
    last = _report({'ours': 30.0, 'torch_bf16': 40.0}, peaks)
    assert last == 'best_vs_torch_best=0.75'
    assert 'best_vs_torch_best' not in _report({'ours': 30.0, 'bf16': 50.0}, peaks)
    assert 'best_vs_torch_best' not in _report({'d2l': 10.0, 'torch': 20.0}, peaks)


def test_the_amx_state_our_peers_ran_with_is_printed(capsys):
    peaks = Peaks()
    on = "AMX: on (tile permission granted; oneDNN's ISA: Intel AVX-512 ... AMX)"
    _report({'ours': 30.0, 'bf16': 50.0, 'torch': 40.0}, peaks, amx={'ours': on, 'bf16': on})
    assert f"MXNet's oneDNN in the ours, bf16 peer(s): {on}" in capsys.readouterr().out.splitlines()
    off = 'AMX: present, off (GLUON_CLASSICS_AMX=0)'
    _report({'ours': 30.0, 'bf16': 50.0}, peaks, amx={'ours': on, 'bf16': off})
    assert f"MXNet's oneDNN: ours: {on}; bf16: {off}" in capsys.readouterr().out.splitlines()
    _report({'torch': 40.0}, peaks)
    assert "MXNet's oneDNN" not in capsys.readouterr().out


def test_a_step_above_the_peak_is_printed_as_measured_with_the_peaks_source(capsys):
    peaks = Peaks()
    peaks.add(_gemm(FC, 20.0))
    _report({'ours': 30.0}, peaks)
    out = capsys.readouterr().out
    assert '150%' in out and '100%' not in out  # not clamped
    assert f'NOTE: ours ran 30.0 GFLOP/s, above the 20.0 of its peak ({FC})' in out


def test_a_torch_net_that_is_not_alexnet_d2l_stops_the_run():
    flops, shapes, params = bench_alexnet.layer_table((1, 224, 224))
    record = dict(shapes=[[f'l{i}', s] for i, s in enumerate(shapes)], parameters=params)
    bench_alexnet.check_torch_net('torch', record, shapes, params)  # the same: passes
    record['shapes'][0][1] = [1, 96, 55, 55]  # the first conv padded by 2
    with pytest.raises(SystemExit, match="network is not alexnet\\('d2l'\\)"):
        bench_alexnet.check_torch_net('torch', record, shapes, params)
    assert params == 46764746 and round(flops / 1e9, 2) == 5.56


def _torch_child(code):
    # In its own process: PyTorch's OpenMP runtime is not MXNet's.
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'mxnet' not in run.stderr.lower()
    return run.stdout.splitlines()


def test_torch_peer_says_torch_is_missing_in_a_skip_record():
    """As where PyTorch is not installed: the import fails (torch hidden from the child)."""
    out = _torch_child('import sys; sys.modules["torch"] = None\n'
                       'from benchmarks import torch_peer\n'
                       'sys.exit(torch_peer.main(["alexnet", "--steps", "0"]))')
    assert out == ['torch_peer: PyTorch is not installed, skipping the torch peers (pip install '
                   'torch==2.13.0; never a dependency of gluon_classics)',
                   'BENCH_JSON {"kind": "skip", "reason": "torch not installed"}']


def test_torch_peer_network_matches_alexnet_d2l():
    if importlib.util.find_spec('torch') is None:  # looked for, not imported: it runs in the child
        pytest.skip('PyTorch is not installed: the PyTorch AlexNet is not compared with ours '
                    '(pip install torch==2.13.0 to compare it)')
    out = _torch_child('import json, torch\nfrom torch import nn\n'
                       'from benchmarks import torch_peer as t\n'
                       'net = t.alexnet_torch(nn)\n'
                       'print(json.dumps([t.layer_shapes(torch, net, nn, (1, 224, 224)),'
                       ' sum(p.numel() for p in net.parameters())]))')
    named, params = json.loads(out[-1])
    _, shapes, mx_params = bench_alexnet.layer_table((1, 224, 224))
    assert [shape for _, shape in named] == shapes and params == mx_params
    assert [name for name, _ in named][:3] == ['conv0', 'pool0', 'conv1']
