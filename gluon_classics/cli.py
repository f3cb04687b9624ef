"""The ``gluon-classics`` command: a thin layer over the library.

Every subcommand is a few lines that call public functions, so a script user
can do the same with one import. Errors a user can fix are printed as one line
(``gluon-classics: error: ...``) with exit status 2.
"""
import argparse
import json
import os
import sys

from .data import load_data
from .doctor import format_report, report
from .experiments import ABLATIONS, ablate, lenet_options, write_feature_report
from .model_zoo import LENET_VARIANTS, MODELS, get_model, model_for_data, print_shapes, recipe
from .training import (OPTIMIZERS, TrainingInterrupted, atomic_write, evaluate_accuracy, fit,
                       load_params, predict)
from .launch import add_launch_arguments, run_launch
from .training.distributed import connect
from .utils.devices import DeviceError, loader_ctx, parse_ctx, resolve_ctx
from .utils.plots import plot_history, show_images

__all__ = ['main', 'build_parser']


class UsageError(Exception):
    """A bad option or input the user can fix; printed as one line."""


def _input_shape(text):
    try:
        return tuple(int(d) for d in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'bad shape {text!r}: use comma-separated integers, '
                                         f'e.g. 1,1,28,28') from None


def _add_model_args(parser):
    parser.add_argument('model', choices=list(MODELS))
    parser.add_argument('--variant', default='d2l',
                        help='; '.join(f'{name}: {", ".join(entry.variants)}'
                                       for name, entry in MODELS.items()) + ' (default d2l)')


def _recipe_help(key, show=str):
    """'default: 0.9 for lenet, 0.01 for alexnet', from the models' recipes."""
    values = []
    for name, entry in MODELS.items():
        values.append((show(entry.recipe[key]), name))
        values += [(show(changed[key]), f'{name} {variant}')
                   for variant, changed in entry.variant_recipes.items() if key in changed]
    if len({value for value, _ in values}) == 1:
        return f'default {values[0][0]}'
    return 'default: ' + ', '.join(f'{value} for {where}' for value, where in values)


def cmd_shapes(args):
    net = get_model(args.model, variant=args.variant)
    shape = args.input_shape or (1,) + net.input_shape
    print_shapes(net, shape)


def _write_json(path, obj):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1)
    atomic_write(path, write)


def _ctx(text):
    try:
        return parse_ctx(text)
    except DeviceError as err:
        # well formed, but this machine cannot honour it: one line, not a usage message
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _model_kwargs(args):
    return {k: v for k, v in (('activation', getattr(args, 'activation', None)),
                              ('pool', getattr(args, 'pool', None))) if v}


def _log(*args):
    print(*args, flush=True)  # epoch lines as they come, also into a log file


def cmd_train(args, parallel=None):
    """``train``; ``parallel`` is the job this process already joined, if any."""
    # Joined once, here: fit trains in the job, and rank 0 writes the files for all workers.
    parallel = connect(parallel or args.kvstore, args.ctx)
    save = args.save and args.save.replace('{rank}', str(parallel.rank))
    checkpoint = args.checkpoint or (save + '.ckpt' if save
                                     else f'runs/{args.model}-{args.variant}.ckpt')
    try:
        net, history = fit(args.model, args.variant, dataset=args.dataset, epochs=args.epochs,
                           lr=args.lr, batch_size=args.batch_size, resize=args.resize,
                           data_dir=args.data_dir, ctx=args.ctx, seed=args.seed,
                           optimizer=args.optimizer, num_examples=args.num_examples,
                           checkpoint=checkpoint, resume=args.resume,
                           hybridize=not args.no_hybridize, kvstore=parallel,
                           model_kwargs=_model_kwargs(args), log=_log)
    except TrainingInterrupted as stop:
        if args.metrics and stop.history and parallel.is_chief:
            _write_json(args.metrics, stop.history)
        done = len(stop.history)
        print(f'gluon-classics: interrupted in epoch {stop.epoch}; '
              + (f'{done} finished epoch(s) are in {checkpoint}: '
                 f'continue with --resume {checkpoint}'
                 if done else 'no epoch had finished, nothing was saved'), file=sys.stderr)
        return 130
    if save and (parallel.is_chief or save != args.save):  # {rank}: every worker its own
        atomic_write(save, net.save_parameters)
    if not parallel.is_chief:
        return 0
    if args.metrics:
        _write_json(args.metrics, history)
    if args.plot:
        plot_history(history, path=args.plot)
    return 0


def _trained(args, test_iter):
    net = model_for_data(args.model, test_iter, variant=args.variant, **_model_kwargs(args))
    load_params(net, args.params, ctx=args.ctx)
    net.hybridize()
    return net


def _eval_data(args, batch_size, split='test'):
    """The split a trained net is scored on, with the data settings it was trained with."""
    resize = recipe(args.model, args.variant)['resize'] if args.resize is None else \
        (args.resize or None)
    train_iter, test_iter = load_data(args.dataset, batch_size, resize=resize, root=args.data_dir,
                                      ctx=loader_ctx(args.ctx))
    return train_iter if split == 'train' else test_iter


def cmd_evaluate(args):
    data_iter = _eval_data(args, args.batch_size, args.split)
    net = _trained(args, data_iter)
    print(f'{args.split} acc {evaluate_accuracy(data_iter, net, args.ctx):.4f}')


def cmd_predict(args):
    test_iter = _eval_data(args, args.num)
    net = _trained(args, test_iter)
    images, true, pred = predict(net, test_iter, args.num, ctx=args.ctx[0])
    names = test_iter.text_labels
    titles = [f'{names[t]}\n{names[p]}' for t, p in zip(true, pred)]
    show_images(images, 1, len(titles), titles=titles, path=args.out)
    print(f'saved {len(titles)} test images with true (top) and predicted (bottom) labels '
          f'to {args.out}')


def cmd_ablate(args):
    variants = [v.strip() for v in args.variants.split(',') if v.strip()] if args.variants else None
    try:
        ablate(variants, epochs=args.epochs, seeds=args.seeds, out=args.out, model=args.model,
               dataset=args.dataset, data_dir=args.data_dir, resize=args.resize, ctx=args.ctx,
               lr=args.lr, batch_size=args.batch_size, num_examples=args.num_examples,
               log=_log)
    except KeyboardInterrupt:
        print(f'gluon-classics: interrupted; the variants that finished are in '
              f'{os.path.join(args.out, "results.md")}', file=sys.stderr)
        return 130
    print(f'wrote results.md, results.json and curves.png to {args.out}')
    return 0


def cmd_features(args):
    if not os.path.isfile(args.params):  # before the data set is read
        raise UsageError(f'parameter file {args.params} does not exist: '
                         f'train with --save {args.params} first')
    variant, kwargs = lenet_options(args.variant)
    test_iter = _eval_data(args, 256)
    kwargs.update(_model_kwargs(args))
    net = model_for_data(args.model, test_iter, variant=variant, **kwargs)
    load_params(net, args.params, ctx=args.ctx)
    report = write_feature_report(net, test_iter, args.out, num_images=args.num_images)
    print(f'wrote {", ".join(os.path.basename(f) for f in report["files"])} to {args.out}')
    return 0


def cmd_doctor(args):
    facts = report(args.data_dir)
    if args.json:
        print(json.dumps(facts, indent=1))
    else:
        print('\n'.join(format_report(facts)))


def cmd_launch(args):
    return run_launch(args)


def _add_data_args(p):
    p.add_argument('--dataset', default='fashion-mnist',
                   help='fashion-mnist (default), mnist, cifar10 or folder:PATH')
    p.add_argument('--data-dir', metavar='DIR', help="folder with the data set's files")
    p.add_argument('--resize', type=int, metavar='N',
                   help='resize images to NxN (' + _recipe_help('resize', lambda n: n or 'none')
                   + ')')
    p.add_argument('--ctx', type=_ctx, default=None, metavar='CTX',
                   help='cpu, gpu, gpu:0,1 or cpu:0,1 (default: a GPU if there is one)')


def _add_variant_overrides(p):
    p.add_argument('--activation', help="lenet: override the variant's activation (e.g. relu)")
    p.add_argument('--pool', choices=['avg', 'max'], help="lenet: override the variant's pooling")


def _add_trained_model_args(p):
    """What ``evaluate`` and ``predict`` need to rebuild a trained net and its test data."""
    _add_model_args(p)
    _add_variant_overrides(p)
    _add_data_args(p)
    p.add_argument('--params', required=True, metavar='PATH', help='file written by train --save')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='gluon-classics',
        description='LeNet and AlexNet in MXNet Gluon, as the d2l chapters teach them.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('shapes', help="print each layer's output shape, as the chapters do")
    _add_model_args(p)
    p.add_argument('--input-shape', type=_input_shape, metavar='N,C,H,W',
                   help="default: the variant's own, e.g. 1,1,28,28 for LeNet")
    p.set_defaults(func=cmd_shapes)

    p = sub.add_parser('train', help="train a model with the chapter's recipe")
    _add_model_args(p)
    _add_variant_overrides(p)
    _add_data_args(p)
    p.add_argument('--epochs', type=int, help=_recipe_help('epochs'))
    p.add_argument('--lr', type=float, help=_recipe_help('lr'))
    p.add_argument('--batch-size', type=int, help=_recipe_help('batch_size'))
    p.add_argument('--optimizer', choices=list(OPTIMIZERS), default='sgd',
                   help='; '.join(f'{name}: {what}' for name, (what, _) in OPTIMIZERS.items()))
    p.add_argument('--num-examples', type=int, metavar='N', help='train on N examples only')
    p.add_argument('--seed', type=int, help='fixed seed: the same run again, also when resumed')
    p.add_argument('--save', metavar='PATH',
                   help='write the parameters (net.save_parameters); in a launched job rank 0 '
                        'writes them, or every worker its own with {rank} in PATH')
    p.add_argument('--metrics', metavar='PATH.json', help='write the per-epoch history as JSON')
    p.add_argument('--plot', metavar='PATH.png', help='draw loss and accuracy by epoch')
    p.add_argument('--checkpoint', metavar='PATH',
                   help='checkpoint after every epoch '
                        '(default: SAVE.ckpt, else runs/MODEL-VARIANT.ckpt)')
    p.add_argument('--resume', metavar='PATH', help='continue from a checkpoint')
    p.add_argument('--kvstore', default=None,
                   help="gradient aggregation: local (default for CPUs), device (default for "
                        "GPUs); dist_sync, dist_device_sync or dist_async under "
                        "'gluon-classics launch' (the default there: dist_sync)")
    p.add_argument('--no-hybridize', action='store_true', help='run imperatively (debugging)')
    p.set_defaults(func=cmd_train)

    p = sub.add_parser('evaluate', help='test (or train) accuracy of saved parameters')
    _add_trained_model_args(p)
    p.add_argument('--batch-size', type=int, default=1000)
    # train: the final weights on the training set, to tell overfitting from the end-of-epoch
    # swing that train_ch5's running train acc averages away
    p.add_argument('--split', choices=['test', 'train'], default='test',
                   help='which split to score (default test)')
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser('predict', help='a grid of test images with true and predicted labels')
    _add_trained_model_args(p)
    p.add_argument('--out', required=True, metavar='PATH.png')
    p.add_argument('--num', type=int, default=8, help='number of images (default 8)')
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser('doctor', help='versions, build features, CPU, GPUs and data: '
                                      'what a bug report needs')
    p.add_argument('--json', action='store_true', help='print the facts as JSON')
    p.add_argument('--data-dir', metavar='DIR', help='the Fashion-MNIST folder to check '
                                                     "(default: the loader's own)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser('launch', help='run a training command as a parameter-server job',
                       description='Start 1 scheduler, S servers and W workers of COMMAND on '
                                   'this machine (on 127.0.0.1), or over ssh with --hostfile: '
                                   'gluon-classics launch -n 2 -s 1 -- gluon-classics train '
                                   'lenet')
    add_launch_arguments(p)
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser('ablate', help="train the LeNet chapter's exercise variants side by side")
    p.add_argument('model', choices=['lenet'])
    _add_data_args(p)
    p.add_argument('--variants', metavar='A,B,...',
                   help='comma-separated names from gluon_classics.experiments.ABLATIONS '
                        f'(default: all): {", ".join(ABLATIONS)}')
    lenet_recipe = recipe('lenet')
    p.add_argument('--epochs', type=int, help=f'epochs per run (default {lenet_recipe["epochs"]})')
    p.add_argument('--seeds', type=int, default=1, metavar='K',
                   help='runs per variant, with seeds 0..K-1 (default 1)')
    p.add_argument('--lr', type=float, help=f'shared learning rate (default {lenet_recipe["lr"]})')
    p.add_argument('--batch-size', type=int, help=f'default {lenet_recipe["batch_size"]}')
    p.add_argument('--num-examples', type=int, metavar='N', help='train on N examples only')
    p.add_argument('--out', default='runs/ablation', metavar='DIR',
                   help='folder for results.md, results.json, curves.png (default runs/ablation)')
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser('features', help='conv feature maps and activation statistics')
    p.add_argument('model', choices=['lenet'])
    p.add_argument('--variant', default='d2l',
                   help=f'a LeNet variant ({", ".join(LENET_VARIANTS)}) or an ablate variant '
                        f'({", ".join(list(ABLATIONS)[1:4])}, ...) that the parameters were '
                        f'trained as (default d2l)')
    _add_variant_overrides(p)
    _add_data_args(p)
    p.add_argument('--params', required=True, metavar='PATH', help='file written by train --save')
    p.add_argument('--out', required=True, metavar='DIR')
    p.add_argument('--num-images', type=int, default=4, metavar='K',
                   help='test images in the feature-map grids (default 4)')
    p.set_defaults(func=cmd_features)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, 'ctx'):  # the one place the CLI picks the device
        args.ctx = resolve_ctx(args.ctx)
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, FileNotFoundError, ArithmeticError) as err:
        # ValueError covers DataError and CheckpointError; ArithmeticError a NaN loss
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        return 2
