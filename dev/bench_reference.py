"""Times MXNet's own Convolution + Activation + Pooling on LeNet's conv blocks,
and our operators through MXNet (where they build), for comparison with
bench_conv_pool.cc: the same shapes, batch, phases and columns.

Both run as bound symbolic executors (MXNet's graph path, oneDNN inside), with
the first block computing no gradient for x, as our operator does not.

    python dev/bench_reference.py [--batch 256] [--repeats 30]

Threads: OMP_NUM_THREADS, as for MXNet's operators in training.
"""
import argparse
import os
import sys
import time

import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gluon_classics.accel import kernels  # noqa: E402  (this checkout's, not an installed one)

# LeNet's two conv blocks: (x's shape without the batch, weight's shape, pad)
BLOCKS = {'conv_pool': ((1, 28, 28), (6, 1, 5, 5), 2),
          'conv_pool_maps': ((6, 14, 14), (16, 6, 5, 5), 0)}
KINDS = [('sigmoid', 'avg'), ('relu', 'max')]


def _symbol(name, how, weight_shape, pad, act, pool):
    x, w, b = mx.sym.var('x'), mx.sym.var('w'), mx.sym.var('b')
    if how == 'ours':
        attrs = dict(out_channels=weight_shape[0]) if name == 'conv_pool' else {}
        return getattr(mx.sym, kernels.OPERATORS[name])(x, w, b, pad=pad, act=act, pool=pool,
                                                         pool_size=2, **attrs)
    h = mx.sym.Convolution(x, w, b, kernel=weight_shape[2:], pad=(pad, pad),
                           num_filter=weight_shape[0])
    h = mx.sym.Activation(h, act_type=act)
    return mx.sym.Pooling(h, pool_type=pool, kernel=(2, 2), stride=(2, 2))


def _seconds(run, repeats):
    """(median, best) seconds of run(), after 3 runs to warm up."""
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), min(times)


def bench(name, how, act, pool, batch, repeats):
    image, weight_shape, pad = BLOCKS[name]
    sym = _symbol(name, how, weight_shape, pad, act, pool)
    rng = np.random.default_rng(0)
    shapes = dict(x=(batch, *image), w=weight_shape, b=(weight_shape[0],))
    grad_req = dict(x='null' if name == 'conv_pool' else 'write', w='write', b='write')
    ex = sym.simple_bind(mx.cpu(), grad_req=grad_req, **shapes)
    for arg, scale in (('x', 1.0), ('w', 0.2), ('b', 1.0)):
        ex.arg_dict[arg][:] = rng.standard_normal(shapes[arg]) * scale
    dy = mx.nd.array(rng.standard_normal(ex.outputs[0].shape))

    def forward():
        ex.forward(is_train=True)
        mx.nd.waitall()

    def backward():
        ex.backward(dy)
        mx.nd.waitall()

    forward()
    ho = image[1] + 2 * pad - weight_shape[2] + 1
    conv_flops = 2.0 * batch * np.prod(weight_shape) * ho * ho
    backward_flops = conv_flops * (2 if name == 'conv_pool_maps' else 1)  # dw, and dx
    for phase, run, flops in (('forward', forward, conv_flops),
                              ('backward', backward, backward_flops)):
        median, best = _seconds(run, repeats)
        print(f'{how:6} {name:15} {act + "/" + pool:12} {phase:9} {median / batch * 1e6:10.2f} '
              f'{best / batch * 1e6:10.2f} {flops / median / 1e9:9.1f}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error('--batch and --repeats: at least 1')
    hows = ['mxnet'] + (['ours'] if kernels.load() else [])
    print(f'batch {args.batch}, {args.repeats} repeats, OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")}, ours: {kernels.status()}')
    print(f'{"how":6} {"operator":15} {"act/pool":12} {"phase":9} {"us/image":>10} {"best":>10} '
          f'{"GFLOP/s":>9}')
    for name in BLOCKS:
        for act, pool in KINDS:
            for how in hows:
                bench(name, how, act, pool, args.batch, args.repeats)


if __name__ == '__main__':
    main()
