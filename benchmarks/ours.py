"""The gluon_classics peer: ``load_data_fashion_mnist`` batched on the context and train_ch5's
training graph.

    python -m benchmarks.ours lenet   [--accel on|graph|off] [--data-dir DIR] [--epochs 10] ...
    python -m benchmarks.ours alexnet [--dtype float32|bfloat16] [--data-dir DIR] [--steps 3] ...

lenet: ``train_ch5`` itself, through the fast path's public switch: ``on`` (the
oneDNN-shaped graph with our kernels for LeNet's conv blocks; their one-time compilation
happens before the timer starts), ``graph`` (the same graph with MXNet's operators for
them) or ``off`` (the plain static graph). An epoch record per epoch, then a run record.

alexnet: train_ch5's step, timed as the d2l peer's: the batch (``take`` + cast + batched
resize), ``make_objective``'s graph (forward, summed loss and correct count; in
``--dtype``), ``backward``, ``trainer.step``, the sums kept on the context, waited for.
"""
import argparse
import os
import time

from .common import add_peer_arguments, emit, recipe


def lenet(args):
    from gluon_classics import lenet as make_lenet, load_data_fashion_mnist, mx, train_ch5
    from gluon_classics.accel import kernels
    from mxnet import gluon, init
    peer = {'on': 'ours', 'off': 'ours-plain', 'graph': 'ours-mxnet-ops'}[args.accel]
    if args.accel == 'on':
        kernels.load()  # compiled once per machine, like an install step: not in the epochs
    ctx = mx.cpu()
    mx.random.seed(args.seed)
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, root=args.data_dir,
                                                    ctx=ctx, shuffle_seed=args.seed)
    if args.num_examples:
        train_iter = train_iter.subset(args.num_examples, seed=0)
    net = make_lenet(variant='d2l')
    net.initialize(init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    start, examples = time.time(), train_iter.num_examples
    history = train_ch5(net, train_iter, test_iter, args.batch_size, trainer, ctx,
                        args.epochs, log=lambda *a: print(*a, flush=True), accel=args.accel)
    for rec in history:
        train_wall = examples / rec['examples_per_sec']
        emit(kind='epoch', peer=peer, epoch=rec['epoch'], loss=rec['loss'],
             train_acc=rec['train_acc'], test_acc=rec['test_acc'], examples=examples,
             train_wall_s=train_wall, eval_s=rec['seconds'] - train_wall,
             examples_per_sec=rec['examples_per_sec'])
    emit(kind='run', peer=peer, total_s=time.time() - start,
         omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


def alexnet(args):
    from gluon_classics import alexnet as make_alexnet, load_data_fashion_mnist, mx
    from gluon_classics.training import make_objective
    from mxnet import autograd, gluon, init, nd
    ctx = mx.cpu()
    mx.random.seed(args.seed)
    train_iter, _ = load_data_fashion_mnist(args.batch_size, resize=args.resize,
                                            root=args.data_dir, ctx=ctx, shuffle_seed=args.seed)
    net = make_alexnet(variant='d2l')
    net.initialize(init.Xavier(), ctx=ctx)
    net(nd.zeros((1, 1, args.resize, args.resize), ctx=ctx))  # finish deferred shapes
    objective = make_objective(net, [ctx], dtype=args.dtype)  # train_ch5's training graph
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    loss_sum, correct = nd.zeros((1,), ctx=ctx), nd.zeros((1,), ctx=ctx)
    peer = 'bf16' if args.dtype == 'bfloat16' else 'ours'
    times, it = [], iter(train_iter)
    for step in range(1 + args.steps):
        t = time.perf_counter()
        X, y = next(it)
        with autograd.record():
            l, c = objective(X, y)
        l.backward()
        trainer.step(X.shape[0])
        loss_sum += l
        correct += c
        correct.wait_to_read()
        for p in net.collect_params().values():
            p.data().wait_to_read()
        times.append(time.perf_counter() - t)
        print(f'{peer} step {step} ({"warm-up" if step == 0 else "timed"}): {times[-1]:.2f} s',
              flush=True)
    from gluon_classics import amx
    emit(kind='steps', peer=peer, times=times[1:], batch_size=args.batch_size,
         loss=loss_sum.asscalar() / (1 + args.steps) / args.batch_size, amx=amx.describe())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_peer_arguments(ap)
    ap.add_argument('--accel', choices=('on', 'graph', 'off'), default='on')
    ap.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
    args = recipe(ap.parse_args(argv))
    (lenet if args.model == 'lenet' else alexnet)(args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
