"""The ``gluon-classics`` command: a thin layer over the library.

Every subcommand is a few lines that call public functions, so a script user
can do the same with one import. Errors a user can fix are printed as one line
(``gluon-classics: error: ...``) with exit status 2.
"""
import argparse
import json
import os
import signal
import sys
import threading
import warnings

from mxnet.base import MXNetError

from . import __version__
from ._backend import error_reason
from .accel import ENV as ACCEL_ENV, MODES as ACCEL_MODES
from .data import load_data
from .doctor import format_report, report
from .experiments import (ABLATIONS, REPORT_FILES, RESULT_FILES, ablate, lenet_options,
                          write_feature_report)
from .distributed.launcher import add_launch_arguments, run_launch
from .model_zoo import LENET_VARIANTS, MODELS, get_model, print_shapes, recipe
from .training import (DTYPES, OPTIMIZERS, SCHEDULES, TrainingInterrupted, atomic_write,
                       build_model, default_resize, describe_run, evaluate_accuracy, fit,
                       is_checkpoint, load_checkpoint, load_params, predict)
from .distributed import connect
from .utils.devices import DeviceError, loader_ctx, parse_ctx, resolve_ctx
from .utils.outputs import (OutputError, check_output, check_output_dir, claim_output,
                            figure_format, release_outputs, write_text)
from .utils.plots import plot_history, show_images

__all__ = ['main', 'build_parser']


class UsageError(Exception):
    """A bad option or input the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other error here."""

    def error(self, message):
        self.exit(2, f'gluon-classics: error: {" ".join(message.split())} '
                     f'(see {self.prog} --help)\n')


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


def _recipe_help(key, show=str, default=None):
    """'default: 0.9 for lenet, 0.01 for alexnet', from the models' recipes."""
    values = []
    for name, entry in MODELS.items():
        values.append((show(entry.recipe.get(key, default)), name))
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
    write_text(path, json.dumps(obj, indent=1), '--metrics')


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


_OUTPUTS = (('save', '--save'), ('metrics', '--metrics'), ('plot', '--plot'))


def _check_train_outputs(args, save, checkpoint):
    """Every file train writes, checked before the data is read and the first epoch runs,
    and held until this process ends: another run writing one of them is refused."""
    seen = {}
    for key, flag in _OUTPUTS + (('checkpoint', '--checkpoint'),):
        path = {'save': save, 'checkpoint': checkpoint}.get(key, getattr(args, key))
        if not path:
            continue
        real = claim_output(path, flag)
        if key == 'plot':
            figure_format(path, flag)
        if real in seen:
            raise OutputError(f'{flag} {path} is also the {seen[real]} path: give each output '
                              f'its own file')
        seen[real] = flag


def _resumed_outputs(args):
    """A bare --resume writes what the interrupted run was asked to write, into its checkpoint."""
    recorded = (load_checkpoint(args.resume).get('config') or {}).get('outputs') or {}
    for key, flag in _OUTPUTS:
        if getattr(args, key) is None and recorded.get(key):
            setattr(args, key, recorded[key])
            _log(f'{flag} {recorded[key]}, as the run was started')
    return args.checkpoint or args.resume


def _late_failure(err, checkpoint, history):
    """A file that could not be written after training: where the weights are instead."""
    done = len(history)
    return (f'{err}; the weights of epoch {done} are in the checkpoint {checkpoint} '
            f'(evaluate and predict take it as --params; unzip -p {checkpoint} net.params > '
            f'PATH extracts them)')


def cmd_train(args, parallel=None):
    """``train``; ``parallel`` is the job this process already joined, if any."""
    # Joined once, here: fit trains in the job, and rank 0 writes the files for all workers.
    parallel = connect(parallel or args.kvstore, args.ctx)
    resumed = _resumed_outputs(args) if args.resume else None
    save = args.save and args.save.replace('{rank}', str(parallel.rank))
    checkpoint = resumed or args.checkpoint or (
        save + '.ckpt' if save else f'runs/{args.model}-{args.variant or "d2l"}.ckpt')
    if parallel.is_chief:
        _check_train_outputs(args, save, checkpoint)
    elif save and save != args.save:  # {rank}: every worker writes its own
        check_output(save, '--save')
    outputs = {key: os.path.abspath(getattr(args, key)) for key, _ in _OUTPUTS
               if getattr(args, key)}
    try:
        net, history = fit(args.model, args.variant, dataset=args.dataset, epochs=args.epochs,
                           lr=args.lr, batch_size=args.batch_size, resize=args.resize,
                           data_dir=args.data_dir, ctx=args.ctx, seed=args.seed,
                           optimizer=args.optimizer, schedule=args.schedule,
                           num_examples=args.num_examples, dtype=args.dtype,
                           accel=args.accel, checkpoint=checkpoint, resume=args.resume,
                           hybridize=not args.no_hybridize, kvstore=parallel,
                           model_kwargs=_model_kwargs(args) or None, outputs=outputs, log=_log)
    except TrainingInterrupted as stop:
        if args.metrics and stop.history and parallel.is_chief:
            _write_json(args.metrics, stop.history)
        done = len(stop.history)
        print(f'gluon-classics: {_signal_name()} in epoch {stop.epoch}; '
              + (f'{done} finished epoch(s) are in {checkpoint}: '
                 f'continue with --resume {checkpoint}'
                 if done else 'no epoch had finished, nothing was saved'), file=sys.stderr)
        return _interrupted_status()
    try:
        if save and (parallel.is_chief or save != args.save):  # {rank}: every worker its own
            atomic_write(save, net.save_parameters, '--save')
        if not parallel.is_chief:
            return 0
        if args.metrics:
            _write_json(args.metrics, history)
        if args.plot:
            plot_history(history, path=args.plot)
    except OutputError as err:
        raise UsageError(_late_failure(err, checkpoint, history)) from None
    return 0


def _from_checkpoint(args):
    """``--params`` given a checkpoint: its recorded model, variant, overrides and data."""
    if not is_checkpoint(args.params):
        return
    config = load_checkpoint(args.params).get('config') or {}
    if not config:
        return
    recorded = dict(model=config['model'], variant=config['variant'],
                    activation=config['model_kwargs'].get('activation'),
                    pool=config['model_kwargs'].get('pool'),
                    resize=config['resize'] or 0, dataset=config['dataset'])
    for key, value in recorded.items():
        given = getattr(args, key)
        if given is not None and given != value and not (key == 'resize' and given == 0 == value):
            raise UsageError(f'{"--" * (key != "model")}{key} {given} contradicts the checkpoint '
                             f'{args.params}, which holds {describe_run(config)}: leave it out')
        setattr(args, key, value)
    if args.data_dir is None and config.get('data_dir') and os.path.isdir(config['data_dir']):
        args.data_dir = config['data_dir']


def _trained(args, data_iter):
    net = build_model(args.model, args.variant, num_classes=data_iter.num_classes,
                      in_channels=data_iter.image_shape[0], **_model_kwargs(args))
    load_params(net, args.params, ctx=args.ctx)
    net.hybridize()
    return net


def _eval_data(args, batch_size, split='test'):
    """The split a trained net is scored on, with the data settings it was trained with."""
    args.variant = args.variant or 'd2l'
    args.dataset = args.dataset or 'fashion-mnist'
    resize = default_resize(args.model, args.variant) if args.resize is None \
        else (args.resize or None)
    train_iter, test_iter = load_data(args.dataset, batch_size, resize=resize, root=args.data_dir,
                                      ctx=loader_ctx(args.ctx))
    return train_iter if split == 'train' else test_iter


def _run_trained(args, run):
    """``run()`` a loaded net; an input it cannot take is a wrong variant or resize."""
    try:
        return run()
    except MXNetError as err:
        raise UsageError(f'the parameters in {args.params} do not take this data '
                         f'({error_reason(err)}): '
                         f'pass the --variant, --activation/--pool and --resize they were '
                         f'trained with, or give the run\'s checkpoint as --params '
                         f'(it records them)') from None


def _check_params_file(args):
    if not os.path.isfile(args.params):  # before the data set is read
        raise UsageError(f'parameter file {args.params} does not exist: '
                         f'train with --save {args.params} first')
    _from_checkpoint(args)


def cmd_evaluate(args):
    _check_params_file(args)
    data_iter = _eval_data(args, args.batch_size, args.split)
    net = _trained(args, data_iter)
    acc = _run_trained(args, lambda: evaluate_accuracy(data_iter, net, args.ctx))
    print(f'{args.split} acc {acc:.4f}')


def _grid(n, max_cols=8):
    """Rows and columns for ``n`` images: at most ``max_cols`` a row."""
    cols = min(n, max_cols)
    return -(-n // cols), cols


def cmd_predict(args):
    if args.num < 1:
        raise UsageError(f'--num must be at least 1; got {args.num}')
    check_output(args.out, '--out')
    figure_format(args.out, '--out')
    _check_params_file(args)
    test_iter = _eval_data(args, args.num)
    net = _trained(args, test_iter)
    images, true, pred = _run_trained(args, lambda: predict(net, test_iter, args.num,
                                                            ctx=args.ctx[0]))
    names = test_iter.text_labels
    titles = [f'{names[t]}\n{names[p]}' for t, p in zip(true, pred)]
    show_images(images, *_grid(len(titles)), titles=titles, path=args.out)
    print(f'saved {len(titles)} test images with true (top) and predicted (bottom) labels '
          f'to {args.out}')


def cmd_ablate(args):
    check_output_dir(args.out, RESULT_FILES, '--out')
    variants = [v.strip() for v in args.variants.split(',') if v.strip()] if args.variants else None
    try:
        ablate(variants, epochs=args.epochs, seeds=args.seeds, out=args.out, model=args.model,
               dataset=args.dataset, data_dir=args.data_dir, resize=args.resize, ctx=args.ctx,
               lr=args.lr, batch_size=args.batch_size, num_examples=args.num_examples,
               log=_log)
    except KeyboardInterrupt:
        print(f'gluon-classics: {_signal_name()}; the variants that finished are in '
              f'{os.path.join(args.out, "results.md")}', file=sys.stderr)
        return _interrupted_status()
    print(f'wrote results.md, results.json and curves.png to {args.out}')
    return 0


def cmd_features(args):
    check_output_dir(args.out, REPORT_FILES, '--out')
    _check_params_file(args)
    variant, kwargs = lenet_options(args.variant or 'd2l')
    args.variant = variant
    test_iter = _eval_data(args, 256)
    kwargs.update(_model_kwargs(args))
    net = build_model(args.model, variant, num_classes=test_iter.num_classes,
                      in_channels=test_iter.image_shape[0], **kwargs)
    load_params(net, args.params, ctx=args.ctx)
    report = _run_trained(args, lambda: write_feature_report(net, test_iter, args.out,
                                                             num_images=args.num_images))
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
    p.add_argument('--params', required=True, metavar='PATH',
                   help="file written by train --save, or the run's checkpoint (which also "
                        "gives the variant, overrides and resize)")
    p.set_defaults(variant=None, dataset=None)  # None = not given: a checkpoint may say


def build_parser():
    parser = _Parser(
        prog='gluon-classics',
        description='LeNet and AlexNet in MXNet Gluon, as the d2l chapters teach them.')
    parser.add_argument('--version', action='version', version=f'gluon-classics {__version__}')
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
    p.add_argument('--optimizer', choices=list(OPTIMIZERS),
                   help='; '.join(f'{name}: {what}' for name, (what, *_) in OPTIMIZERS.items())
                   + ' (' + _recipe_help('optimizer', default='sgd') + ')')
    p.add_argument('--schedule', choices=list(SCHEDULES),
                   help='learning rate by epoch: ' + '; '.join(
                       f'{name}: {what}' for name, what in SCHEDULES.items())
                   + " (default: the recipe's, else the optimizer's: "
                   + ', '.join(f'{s} for {o}' for o, (_, _, s) in OPTIMIZERS.items()) + ')')
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
    p.add_argument('--resume', metavar='PATH',
                   help='finish the run a checkpoint holds, with its settings and outputs, '
                        'into that checkpoint; --epochs, --lr and --data-dir may change')
    p.add_argument('--kvstore', default=None,
                   help="gradient aggregation: local (default for CPUs), device (default for "
                        "GPUs); dist_sync, dist_device_sync or dist_async under "
                        "'gluon-classics launch' (the default there: dist_sync)")
    p.add_argument('--no-hybridize', action='store_true', help='run imperatively (debugging)')
    p.add_argument('--dtype', choices=list(DTYPES),
                   help='compute type of the training graph: ' + '; '.join(
                       f'{k}: {v}' for k, v in DTYPES.items()))
    p.add_argument('--accel', choices=list(ACCEL_MODES),
                   help='the fast path: ' + '; '.join(f'{k}: {v}' for k, v in ACCEL_MODES.items())
                   + f' (default ${ACCEL_ENV}, else on)')
    # None = not given: the recipe's value, or with --resume the checkpoint's
    p.set_defaults(func=cmd_train, variant=None, dataset=None)

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
    p.add_argument('--params', required=True, metavar='PATH',
                   help="file written by train --save, or the run's checkpoint")
    p.add_argument('--out', required=True, metavar='DIR')
    p.add_argument('--num-images', type=int, default=4, metavar='K',
                   help='test images in the feature-map grids (default 4)')
    p.set_defaults(func=cmd_features, variant=None, dataset=None)
    return parser


_signals = []  # the signal that stopped this run, if it was not SIGINT (Ctrl-C)


def _on_sigterm(signum, frame):
    _signals.append(signum)
    raise KeyboardInterrupt  # handled like Ctrl-C: the same checkpoint and resume hint


def _signal_name():
    return 'stopped by SIGTERM' if _signals else 'interrupted'


def _interrupted_status():
    return 128 + (_signals[-1] if _signals else signal.SIGINT)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f'gluon-classics: warning: {message}', file=sys.stderr, flush=True)


def _one_line(err):
    text = ' '.join(str(err).split()) or type(err).__name__
    # the library's messages name root=DIR, the Python argument; here it is the option
    return text.replace('root=DIR', '--data-dir DIR')


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, 'ctx'):  # the one place the CLI picks the device
        args.ctx = resolve_ctx(args.ctx)
    _signals.clear()
    previous = None
    if hasattr(signal, 'SIGTERM') and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args) or 0
    except (UsageError, ValueError, FileNotFoundError, ArithmeticError) as err:
        # ValueError covers DataError, CheckpointError and OutputError; ArithmeticError a NaN loss
        print(f'gluon-classics: error: {_one_line(err)}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # train and ablate say more; evaluate, predict... only this
        print(f'gluon-classics: {_signal_name()}; nothing was written', file=sys.stderr)
        return _interrupted_status()
    finally:
        release_outputs()  # a command's claims end with it (an in-process caller goes on)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
