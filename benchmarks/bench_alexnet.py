"""AlexNet (d2l, 1x224x224) training-step speed on a CPU: d2l's, gluon_classics's and PyTorch's.

    python -m benchmarks.bench_alexnet [--data-dir DIR] [--steps 3] [--batch-size 128]
                                       [--resize 224] [--threads N]
                                       [--peers d2l,ours,bf16,torch,torch_bf16]
    python -m benchmarks alexnet ...   (the same)

  d2l         the book's pipeline: d2l 1.0.3's own loader (per-image ``Resize`` +
              ``ToTensor``, 4 workers, numpy mode) and ``train_ch6``'s step (d2l_peer.py)
  ours        gluon_classics: ``load_data_fashion_mnist`` (one batched resize on the
              context) and train_ch5's step on ``make_objective``'s graph (ours.py)
  bf16        ours in bfloat16 (``train --dtype bfloat16``); only on CPUs with avx512_bf16
  torch       eager PyTorch, the same network, init, loss, SGD and batches (torch_peer.py;
              left out, in one line, without PyTorch)
  torch_bf16  the same under ``torch.autocast('cpu', dtype=torch.bfloat16)``; only on CPUs
              with avx512_bf16 or AMX

All train ``alexnet(variant='d2l')`` (PyTorch's layer shapes and parameter count are
checked against it) with Xavier init and SGD at lr 0.01: one warm-up step, then
``--steps`` timed steps, each peer in its own process, in the order given. A step runs
from asking the loader for the batch until every parameter's update is done, for every
peer. Achieved GFLOP/s = examples/s x the conv and dense layers' training FLOPs per
image, set against the best GEMM this CPU was seen to run (gemm.py, sampled before,
between and after the peers); a step above its peak is printed as measured, with a NOTE.
What each peer does in its timed step, and why the peak is not ``mx.nd.dot``:
docs/measurements/alexnet-speed.md. The report prints the AMX state our peers ran with.

The last line: every peer's ratio to d2l, bf16's to ours, ``ours_vs_torch_fp32=X.XX``
(ours / torch examples/s) and ``ours_vs_torch_bf16=X.XX`` (bf16 / torch_bf16), each only
where both peers ran, and ``best_vs_torch_best=X.XX``: our fastest peer (ours or bf16)
against PyTorch's fastest (torch or torch_bf16), where one of each ran.
"""
import argparse
import sys
import time

from .common import (INSTALL_TORCH, add_data_argument, cpu, format_table, loadavg,
                     machine_lines, module_argv, now, peer_options, run_peer,
                     threads as omp_threads, torch_installed)
from .gemm import Peaks, sample

PEERS = {'d2l': "d2l: the book's per-image Resize DataLoader + step",
         'ours': 'gluon_classics: batched resize + one static graph',
         'bf16': 'gluon_classics graph in bfloat16 (train --dtype bfloat16)',
         'torch': 'eager PyTorch float32, batched resize',
         'torch_bf16': 'eager PyTorch, bfloat16 autocast'}
TORCH_PEERS = ('torch', 'torch_bf16')
BF16_PEERS = ('bf16', 'torch_bf16')
OUR_PEERS = ('ours', 'bf16')


def bf16_missing(peer, flags):
    """Why ``peer`` cannot run in bfloat16 on a CPU with ``flags``, or None."""
    if peer == 'bf16' and 'avx512_bf16' not in flags:
        return 'no avx512_bf16 (MXNet\'s oneDNN has bfloat16 kernels only there)'
    if peer == 'torch_bf16' and not {'avx512_bf16', 'amx_bf16'} & set(flags):
        return 'neither avx512_bf16 nor AMX'
    return None


def layer_table(image_shape):
    """Training FLOPs per image of the conv and dense layers (2 per multiply-add, 3 passes:
    forward, input gradient, weight gradient; 2 for the first conv, which has no input
    gradient), the output shape at batch 1 of each of ``alexnet('d2l')``'s layers, and its
    parameter count."""
    from gluon_classics import alexnet, check_input_shape
    from gluon_classics.model_zoo import leaves
    from mxnet import init, nd
    from mxnet.gluon import nn
    net = alexnet(variant='d2l')
    net.initialize(init.Xavier())
    try:
        check_input_shape(net, (1,) + tuple(image_shape))
    except ValueError as err:  # too small an image for AlexNet's poolings, say
        sys.exit(f'bench_alexnet: --resize {image_shape[-1]}: {err}')
    x = nd.zeros((1,) + tuple(image_shape))
    total, first, shapes = 0.0, True, []
    for layer in leaves(net):
        x = layer(x)
        shapes.append(list(x.shape))
        if isinstance(layer, (nn.Conv2D, nn.Dense)):
            w = layer.weight.shape
            per_output = 1
            for d in w[1:]:
                per_output *= d
            outputs = x.size if isinstance(layer, nn.Conv2D) else w[0]
            fwd = 2.0 * per_output * outputs
            total += fwd * (2 if first else 3)
            first = False
    params = sum(p.data().size for p in net.collect_params().values())
    return total, shapes, params


def select_peers(ap, args, flags, have_torch):
    """The peers asked for, less those this CPU or this environment cannot run (one line
    each)."""
    peers = [p.strip() for p in args.peers.split(',') if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        ap.error(f'unknown peer(s) {", ".join(unknown) or "(none given)"}: '
                 f'choose from {", ".join(PEERS)}')
    for peer in [p for p in peers if p in BF16_PEERS]:
        why = bf16_missing(peer, flags)
        if why:
            print(f'bench_alexnet: this CPU has {why}: leaving out the {peer} peer')
            peers.remove(peer)
    torch_peers = [p for p in peers if p in TORCH_PEERS]
    if torch_peers and not have_torch:
        them = 'them' if len(torch_peers) > 1 else 'it'
        print(f'bench_alexnet: PyTorch is not installed: leaving out {", ".join(torch_peers)} '
              f'({INSTALL_TORCH} to include {them}; never a dependency of gluon_classics)')
        peers = [p for p in peers if p not in TORCH_PEERS]
    return peers


def check_torch_net(peer, record, shapes, params):
    """Stop if PyTorch's network is not gluon_classics's alexnet('d2l')."""
    theirs = [shape for _, shape in record['shapes']]
    if theirs != shapes or record['parameters'] != params:
        sys.exit(f'bench_alexnet: the {peer} peer\'s network is not alexnet(\'d2l\'): layer '
                 f'shapes {theirs} and {record["parameters"]} parameters against {shapes} and '
                 f'{params}; fix alexnet_torch in benchmarks/torch_peer.py')


def amx_line(results):
    """The AMX state our peers ran with (each one's doctor line), one line; None if none said."""
    said = {p: results[p]['amx'] for p in OUR_PEERS if 'amx' in results.get(p, {})}
    if not said:
        return None
    if len(set(said.values())) == 1:
        return f"MXNet's oneDNN in the {', '.join(said)} peer(s): {next(iter(said.values()))}"
    return "MXNet's oneDNN: " + '; '.join(f'{p}: {line}' for p, line in said.items())


def fastest(rates, among):
    """The peer of ``among`` with the most examples/s in ``rates``, or None."""
    return max((p for p in among if p in rates), key=rates.get, default=None)


def report(args, peers, results, peaks, flops, threads, load):
    rows, rates, warnings = [], {}, []
    for peer in peers:
        times = results[peer]['times']
        rates[peer] = rate = args.batch_size * len(times) / sum(times)
        gflops = rate * flops / 1e9
        peak, source = peaks.best('bfloat16' if peer in BF16_PEERS else 'float32')
        if peak and gflops > peak:  # printed as measured, never clamped
            warnings.append(f'NOTE: {peer} ran {gflops:.1f} GFLOP/s, above the {peak:.1f} of its '
                            f'peak ({source}): the GEMM samples met a busier CPU than the '
                            f'steps, or no sampled GEMM reaches this CPU; find which before '
                            f'quoting that column')
        rows.append([PEERS[peer], f'{min(times):.2f} / {sorted(times)[len(times) // 2]:.2f}',
                     f'{rate:.1f}', f'{gflops:.1f}', f'{100 * gflops / peak:.0f}%' if peak
                     else 'n/a'])
    print(f'\ntraining FLOPs per image (conv + dense): {flops / 1e9:.2f} GFLOP; '
          f'{threads} threads; load average now {load()}')
    for dtype in ['float32'] + (['bfloat16'] if set(peers) & set(BF16_PEERS) else []):
        print(peaks.describe(dtype))
    print(format_table(rows, ['pipeline', 'step s (min / median)', 'examples/s', 'GFLOP/s',
                              'of GEMM peak']))
    for line in warnings:
        print(line)
    for line in filter(None, [amx_line(results)]):
        print(line)
    ratios = [f'{p} vs d2l: {rates[p] / rates["d2l"]:.2f}x' for p in peers
              if p != 'd2l' and 'd2l' in rates]
    if 'bf16' in rates and 'ours' in rates:
        ratios.append(f'bf16 vs ours: {rates["bf16"] / rates["ours"]:.2f}x')
    if 'ours' in rates and 'torch' in rates:
        ratios.append(f'ours_vs_torch_fp32={rates["ours"] / rates["torch"]:.2f}')
    if 'bf16' in rates and 'torch_bf16' in rates:
        ratios.append(f'ours_vs_torch_bf16={rates["bf16"] / rates["torch_bf16"]:.2f}')
    ours, theirs = fastest(rates, OUR_PEERS), fastest(rates, TORCH_PEERS)
    if ours and theirs:
        print(f'fastest: ours {ours} {rates[ours]:.1f}, PyTorch {theirs} {rates[theirs]:.1f} '
              f'examples/s')
        ratios.append(f'best_vs_torch_best={rates[ours] / rates[theirs]:.2f}')
    return '  '.join(ratios)


def peer_argv(peer, args, threads):
    options = ['alexnet'] + peer_options(args, steps=args.steps, resize=args.resize)
    if peer in TORCH_PEERS:
        return module_argv(f'{__package__}.torch_peer', *options, '--threads', threads,
                           *(['--bf16'] if peer == 'torch_bf16' else []))
    if peer == 'd2l':
        return module_argv(f'{__package__}.d2l_peer', *options)
    return module_argv(f'{__package__}.ours', *options,
                       '--dtype', 'bfloat16' if peer == 'bf16' else 'float32')


def parse_args(argv):
    ap = argparse.ArgumentParser(prog='python -m benchmarks.bench_alexnet',
                                 description=__doc__.split('\n')[0])
    add_data_argument(ap)
    ap.add_argument('--steps', type=int, default=3, help='timed steps per peer (after 1 warm-up)')
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--resize', type=int, default=224)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--threads', type=int, default=None,
                    help='OMP_NUM_THREADS of every process and torch.set_num_threads '
                         '(default: $OMP_NUM_THREADS, else 2)')
    ap.add_argument('--peers', default='d2l,ours,bf16,torch,torch_bf16',
                    help='comma-separated, run in this order (default d2l,ours,bf16,torch,'
                         'torch_bf16; the bf16 ones are left out on CPUs without bfloat16 '
                         'instructions, the torch ones without PyTorch)')
    ap.add_argument('--seed', type=int, default=0)
    return ap, ap.parse_args(argv)


def run_peers(args, peers, threads, have_torch, shapes, params):
    """Each peer's steps record, with GEMM peak samples before, between and after them."""
    dtypes = ['float32'] + (['bfloat16'] if set(peers) & set(BF16_PEERS) else [])
    frameworks = ['mxnet', 'torch'] if have_torch else ['mxnet']
    peaks, results = Peaks(), {}
    sample(peaks, dtypes, threads, frameworks)
    for peer in peers:
        print(f'--- {peer}', flush=True)
        records = run_peer(peer_argv(peer, args, threads), env={'OMP_NUM_THREADS': threads})
        steps = [r for r in records if r['kind'] == 'steps']
        if not steps:  # the child said why in its line (torch missing, say)
            continue
        results[peer] = steps[0]
        if peer in TORCH_PEERS:
            check_torch_net(peer, results[peer], shapes, params)
        # The CPU may be shared: the peaks are sampled before, between and after the peers.
        sample(peaks, dtypes, threads, frameworks)
    return results, peaks


def main(argv=None):
    ap, args = parse_args(argv)
    _, _, flags = cpu()
    have_torch = torch_installed()
    peers = select_peers(ap, args, flags, have_torch)
    threads = omp_threads(args.threads)
    print(f'bench_alexnet {now()}')
    for line in machine_lines():
        print(line)
    print(f'OMP_NUM_THREADS={threads}, load average {loadavg()}\n'
          f'AlexNet (d2l) at {args.resize}, batch {args.batch_size}, 1 warm-up + {args.steps} '
          f'timed steps per peer: {", ".join(peers) or "(none left)"}', flush=True)
    if not peers:
        return 1
    start = time.time()
    flops, shapes, params = layer_table((1, args.resize, args.resize))
    results, peaks = run_peers(args, peers, threads, have_torch, shapes, params)
    last = report(args, [p for p in peers if p in results], results, peaks, flops, threads,
                  loadavg)
    print('  '.join(filter(None, [last, f'(total {time.time() - start:.0f} s)'])))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
