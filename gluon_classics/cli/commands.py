"""The subcommands: each a few lines over public functions, one import away for a script."""
import json
import os
import sys

from .._backend import error_reason  # first: MXNet through its checks
from mxnet.base import MXNetError

from ..data import load_data
from ..distributed.launcher import run_launch
from .. import doctor
from ..experiments import RESULT_FILES, REPORT_FILES, ablate, lenet_options, write_feature_report
from ..model_zoo import get_model, print_shapes
from ..training import TrainingInterrupted, build_model, evaluate_accuracy, fit, load_params, predict
from ..training.settings import trained_settings
from ..devices import loader_ctx, resolve_ctx
from ..utils.outputs import check_output, check_output_dir, figure_format
from ..utils.plots import show_images
from .errors import UsageError, signals
from ..export import export_mxnet, export_onnx
from ..training.report import (REPORT_FILES as EVAL_REPORT_FILES, evaluation_report,
                               find_mistakes, format_report, write_report)
from ..training.tensorboard import TensorBoardLogger
from ..utils.extras import require

__all__ = ['cmd_shapes', 'cmd_train', 'cmd_evaluate', 'cmd_predict', 'cmd_ablate',
           'cmd_features', 'cmd_doctor', 'cmd_launch', 'cmd_export']


def log(*args):
    print(*args, flush=True)  # epoch lines as they come, also into a log file


def model_kwargs(args):
    return {k: v for k, v in (('activation', getattr(args, 'activation', None)),
                              ('pool', getattr(args, 'pool', None))) if v}


def cmd_shapes(args):
    net = get_model(args.model, variant=args.variant)
    print_shapes(net, args.input_shape or (1,) + net.input_shape)


def cmd_train(args, parallel=None):
    """``train``; ``parallel`` is the job this process already joined, if any."""
    tensorboard = _tensorboard(args)  # the extra and the folder, before anything is read
    try:
        fit(args.model, args.variant, dataset=args.dataset, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, resize=args.resize, data_dir=args.data_dir, ctx=args.ctx,
            seed=args.seed, optimizer=args.optimizer, schedule=args.schedule,
            num_examples=args.num_examples, dtype=args.dtype, accel=args.accel,
            checkpoint=args.checkpoint or True, resume=args.resume,
            hybridize=not args.no_hybridize, kvstore=parallel or args.kvstore,
            model_kwargs=model_kwargs(args) or None, save=args.save, metrics=args.metrics,
            plot=args.plot, log=log, callbacks=[tensorboard] if tensorboard else ())
    except TrainingInterrupted as stop:
        done, checkpoint = len(stop.history), stop.checkpoint
        print(f'gluon-classics: {signals.name()} in epoch {stop.epoch}; '
              + (f'{done} finished epoch(s) are in {checkpoint}: continue with --resume '
                 f'{checkpoint}' if done and checkpoint else 'no epoch had finished, nothing was '
                 'saved'), file=sys.stderr)
        return signals.status()
    finally:
        if tensorboard:
            tensorboard.close()
    return 0


def _tensorboard(args):
    if not getattr(args, 'tensorboard', None):
        return None
    return TensorBoardLogger(args.tensorboard, what='--tensorboard')


def _trained(args, split='test', batch_size=None):
    """The trained net ``--params`` holds and the data split to score it on, with its ctxs."""
    if not os.path.isfile(args.params):  # before the data set is read
        raise UsageError(f'parameter file {args.params} does not exist: '
                         f'train with --save {args.params} first')
    variant, kwargs = args.variant, {}
    if getattr(args, 'command', None) == 'features' and variant:  # an ablation's name: a variant and options
        variant, kwargs = lenet_options(variant)
    run = trained_settings(args.params, dict(
        model=args.model, variant=variant, activation=getattr(args, 'activation', None),
        pool=getattr(args, 'pool', None), resize=args.resize, dataset=args.dataset,
        data_dir=args.data_dir))
    ctxs = resolve_ctx(args.ctx)
    train_iter, test_iter = load_data(run['dataset'], batch_size or args.batch_size,
                                      resize=run['resize'], root=run['data_dir'],
                                      ctx=loader_ctx(ctxs))
    data = train_iter if split == 'train' else test_iter
    kwargs.update({k: run[k] for k in ('activation', 'pool') if run.get(k)})
    net = build_model(run['model'], run['variant'], num_classes=data.num_classes,
                      in_channels=data.image_shape[0], **kwargs)
    load_params(net, args.params, ctx=ctxs)
    return net, data, ctxs


def _run_trained(args, run):
    """``run()`` a loaded net; an input it cannot take is a wrong variant or resize."""
    try:
        return run()
    except MXNetError as err:
        raise UsageError(f'the parameters in {args.params} do not take this data '
                         f'({error_reason(err)}): pass the --variant, --activation/--pool and '
                         f'--resize they were trained with, or give the run\'s checkpoint as '
                         f'--params (it records them)') from None


def cmd_evaluate(args):
    if args.report:  # before the data is read
        check_output_dir(args.report, EVAL_REPORT_FILES, '--report')
    net, data, ctxs = _trained(args, args.split)
    net.hybridize()
    if args.report:
        report = _run_trained(args, lambda: evaluation_report(net, data, data.text_labels,
                                                              ctxs[0]))
        print('\n'.join(format_report(report, args.split)))
        files = write_report(report, args.report, '--report')
        print(f'wrote {", ".join(os.path.basename(f) for f in files)} to {args.report}')
        return
    acc = _run_trained(args, lambda: evaluate_accuracy(data, net, ctxs))
    print(f'{args.split} acc {acc:.4f}')


WRONG = '\N{BALLOT X}'  # marks a wrong prediction's title


def _grid(n, max_cols=8):
    """Rows and columns for ``n`` images: at most ``max_cols`` a row."""
    cols = min(n, max_cols)
    return -(-n // cols), cols


# The most images predict draws: 32 rows of 8, a figure of 1200x4800 pixels at 1.5 inches
# a cell (matplotlib refuses past 65536 pixels, long after a grid stops being readable).
MAX_PREDICT = 256


def cmd_predict(args):
    if not 1 <= args.num <= MAX_PREDICT:
        raise UsageError(f'--num must be 1 to {MAX_PREDICT} (a readable grid of 8 a row); '
                         f'got {args.num}')
    check_output(args.out, '--out')
    figure_format(args.out, '--out')
    # --only-wrong reads on until it has --num mistakes: whole batches
    net, data, ctxs = _trained(args, batch_size=max(args.num, 1000) if args.only_wrong
                               else args.num)
    if args.num > data.num_examples:
        raise UsageError(f'--num {args.num} is more than the {data.num_examples} test images: '
                         f'use at most --num {data.num_examples}')
    net.hybridize()
    if args.only_wrong:
        images, true, pred, seen = _run_trained(
            args, lambda: find_mistakes(net, data, args.num, ctx=ctxs[0]))
        if not len(true):
            print(f'no misclassified images among the {seen} test images: nothing to draw, '
                  f'{args.out} not written')
            return
    else:
        images, true, pred = _run_trained(args, lambda: predict(net, data, args.num,
                                                                ctx=ctxs[0]))
    names = data.text_labels
    titles = [f'{names[t]}\n{names[p]}' + ('' if t == p else f' {WRONG}')
              for t, p in zip(true, pred)]
    show_images(images, *_grid(len(titles)), titles=titles, path=args.out)
    if args.only_wrong:
        print(f'saved the {len(titles)} misclassified images among the first {seen} test '
              f'images with true (top) and predicted (bottom, marked {WRONG}) labels to '
              f'{args.out}')
    else:
        print(f'saved {len(titles)} test images with true (top) and predicted (bottom) labels '
              f'to {args.out}')


def cmd_ablate(args):
    check_output_dir(args.out, RESULT_FILES, '--out')
    variants = [v.strip() for v in args.variants.split(',') if v.strip()] if args.variants else None
    try:
        ablate(variants, epochs=args.epochs, seeds=args.seeds, out=args.out, model=args.model,
               dataset=args.dataset, data_dir=args.data_dir, resize=args.resize,
               ctx=args.ctx, lr=args.lr, batch_size=args.batch_size,
               num_examples=args.num_examples, log=log)
    except KeyboardInterrupt:
        print(f'gluon-classics: {signals.name()}; the variants that finished are in '
              f'{os.path.join(args.out, "results.md")}', file=sys.stderr)
        return signals.status()
    print(f'wrote results.md, results.json and curves.png to {args.out}')
    return 0


def cmd_features(args):
    check_output_dir(args.out, REPORT_FILES, '--out')
    net, data, _ = _trained(args, batch_size=256)
    report = _run_trained(args, lambda: write_feature_report(net, data, args.out,
                                                             num_images=args.num_images))
    print(f'wrote {", ".join(os.path.basename(f) for f in report["files"])} to {args.out}')
    return 0


def cmd_doctor(args):
    facts = doctor.report(args.data_dir)
    print(json.dumps(facts, indent=1) if args.json else '\n'.join(doctor.format_report(facts)))


def cmd_launch(args):
    return run_launch(args)


def cmd_export(args):
    if args.format == 'onnx':
        require('export', 'gluon-classics export')  # before the data is read
        check_output(args.out, '--out')
    else:
        for suffix in ('-symbol.json', '-0000.params'):
            check_output(args.out + suffix, '--out')
    if args.batch_size < 1:
        raise UsageError(f'--batch-size must be at least 1; got {args.batch_size}')
    net, data, _ = _trained(args, batch_size=args.batch_size)
    shape = data.image_shape
    if args.format == 'onnx':
        result = _run_trained(args, lambda: export_onnx(net, args.out, data, input_shape=shape,
                                                        class_names=data.text_labels))
        written, checker = args.out, 'onnx.checker passed; ONNX Runtime ' \
                                     f'{result["runtime"]} (CPU)'
    else:
        result = _run_trained(args, lambda: export_mxnet(net, args.out, data, input_shape=shape))
        written = ' and '.join(args.out + s for s in ('-symbol.json', '-0000.params'))
        checker = 'reloaded by MXNet (SymbolBlock.imports)'
    print(f'wrote {written} (input: batch x {"x".join(map(str, shape))})')
    print(f'checked: {checker} against MXNet on the {result["images"]} test images: '
          f'argmax identical on {result["same_argmax"]}/{result["images"]}, max |logit '
          f'difference| {result["max_abs_diff"]:.2g} (<= {result["tolerance"]:g})')
    return 0
