"""The ``gluon-classics`` command line: its options, each with the recipe's default in its help.

The options' choices and defaults come from the library's tables: the model
registry and :mod:`gluon_classics.choices`, data without MXNet. A subcommand's
options are added only when that subcommand is the one parsed (or all, for a
caller that wants the whole parser): ``--help``, ``--version`` and ``train
--help`` answer without importing MXNet (``ablate``, ``features`` and ``launch``
read tables that do).
"""
import argparse
import sys

from .. import __version__
from .errors import one_line

__all__ = ['build_parser', 'COMMANDS']


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
    from ..model_zoo import MODELS
    parser.add_argument('model', choices=list(MODELS))
    parser.add_argument('--variant', default='d2l',
                        help='; '.join(f'{name}: {", ".join(entry.variants)}'
                                       for name, entry in MODELS.items()) + ' (default d2l)')


def _recipe_help(key, show=str, default=None):
    """'default: 0.9 for lenet, 0.01 for alexnet', from the models' recipes."""
    from ..model_zoo import MODELS
    values = []
    for name, entry in MODELS.items():
        values.append((show(entry.recipe.get(key, default)), name))
        values += [(show(changed[key]), f'{name} {variant}')
                   for variant, changed in entry.variant_recipes.items() if key in changed]
    if len({value for value, _ in values}) == 1:
        return f'default {values[0][0]}'
    return 'default: ' + ', '.join(f'{value} for {where}' for value, where in values)

def _ctx(text):
    from ..devices import DeviceError, parse_ctx
    try:
        return parse_ctx(text)
    except DeviceError as err:
        # well formed, but this machine cannot honour it: one line, not a usage message
        print(f'gluon-classics: error: {one_line(err)}', file=sys.stderr)
        raise SystemExit(2) from None
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None

def _add_data_args(p):
    p.add_argument('--dataset', default='fashion-mnist',
                   help='fashion-mnist (default), mnist, cifar10 or folder:PATH')
    p.add_argument('--data-dir', metavar='DIR', help="folder with the data set's files")
    p.add_argument('--resize', type=int, metavar='N',
                   help='resize images to NxN; 0: their own size (' +
                   _recipe_help('resize', lambda n: n or 'none') + ')')
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


def _command(name):
    """``commands.NAME``, imported when the command runs (it imports MXNet)."""
    def run(*args, **kwargs):
        from . import commands
        return getattr(commands, name)(*args, **kwargs)
    run.__name__ = run.__qualname__ = name
    return run


def build_parser(command=None):
    """The ``gluon-classics`` parser: one subcommand per concern.

    ``command``: add only that subcommand's options (the others are names and help
    lines), so that parsing it imports only what it needs; None: all of them.
    """
    parser = _Parser(
        prog='gluon-classics',
        description='LeNet and AlexNet in MXNet Gluon, as the d2l chapters teach them.')
    parser.add_argument('--version', action='version', version=f'gluon-classics {__version__}')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, (add, help, description) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=description)
        if command is None or command == name:
            add(p)
    return parser


def command_of(argv):
    """The subcommand ``argv`` names (its first word that is one), or None."""
    return next((word for word in argv if word in COMMANDS), None)


def _add_shapes(p):
    _add_model_args(p)
    p.add_argument('--input-shape', type=_input_shape, metavar='N,C,H,W',
                   help="default: the variant's own, e.g. 1,1,28,28 for LeNet")
    p.set_defaults(func=_command('cmd_shapes'))


def _add_train(p):
    from ..choices import ACCEL_ENV, ACCEL_MODES, DTYPES, OPTIMIZERS, SCHEDULES
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
    p.set_defaults(func=_command('cmd_train'), variant=None, dataset=None)
    p.add_argument('--tensorboard', metavar='DIR',
                   help="per-epoch loss, accuracies, learning rate and examples/s as TensorBoard "
                        "scalars in DIR (the 'tensorboard' extra: tensorboardX)")


def _add_evaluate(p):
    _add_trained_model_args(p)
    p.add_argument('--batch-size', type=int, default=1000)
    # train: the final weights on the training set, to tell overfitting from the end-of-epoch
    # swing that train_ch5's running train acc averages away
    p.add_argument('--split', choices=['test', 'train'], default='test',
                   help='which split to score (default test)')
    p.set_defaults(func=_command('cmd_evaluate'))
    p.add_argument('--report', metavar='DIR',
                   help='also print the loss, per-class accuracy and the most confused pairs, '
                        'and write the confusion matrix to DIR as confusion.csv (counts) and '
                        'confusion.png')


def _add_predict(p):
    _add_trained_model_args(p)
    p.add_argument('--out', required=True, metavar='PATH.png')
    p.add_argument('--num', type=int, default=8, help='number of images, 1 to 256 (default 8)')
    p.set_defaults(func=_command('cmd_predict'))
    p.add_argument('--only-wrong', action='store_true',
                   help='only misclassified images, the first --num of the test set')


def _add_doctor(p):
    p.add_argument('--json', action='store_true', help='print the facts as JSON')
    p.add_argument('--data-dir', metavar='DIR', help='the Fashion-MNIST folder to check '
                                                     "(default: the loader's own)")
    p.set_defaults(func=_command('cmd_doctor'))


def _add_launch(p):
    from ..distributed.launcher import add_launch_arguments
    add_launch_arguments(p)
    p.set_defaults(func=_command('cmd_launch'))


def _add_ablate(p):
    from ..experiments import ABLATIONS
    from ..model_zoo import recipe
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
    p.set_defaults(func=_command('cmd_ablate'))


def _add_features(p):
    from ..experiments import ABLATIONS
    from ..model_zoo import LENET_VARIANTS
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
    p.set_defaults(func=_command('cmd_features'), variant=None, dataset=None)



def _add_export(p):
    _add_trained_model_args(p)
    p.add_argument('--out', required=True, metavar='PATH',
                   help='F.onnx; with --format mxnet a prefix: PREFIX-symbol.json and '
                        'PREFIX-0000.params')
    from ..choices import EXPORT_FORMATS
    p.add_argument('--format', choices=list(EXPORT_FORMATS), default='onnx',
                   help='; '.join(f'{k}: {v}' for k, v in EXPORT_FORMATS.items()) +
                   ' (default onnx)')
    p.add_argument('--batch-size', type=int, default=1000,
                   help='batch size of the check on the test set (default 1000)')
    p.set_defaults(func=_command('cmd_export'))


# name: (adds its options, its line in --help, its description)
COMMANDS = {
    'shapes': (_add_shapes, "print each layer's output shape, as the chapters do", None),
    'train': (_add_train, "train a model with the chapter's recipe", None),
    'evaluate': (_add_evaluate, 'test (or train) accuracy of saved parameters', None),
    'predict': (_add_predict, 'a grid of test images with true and predicted labels', None),
    'doctor': (_add_doctor, 'versions, build features, CPU, GPUs and data: what a bug report '
                            'needs', None),
    'launch': (_add_launch, 'run a training command as a parameter-server job',
               'Start 1 scheduler, S servers and W workers of COMMAND on this machine (on '
               '127.0.0.1), or over ssh with --hostfile: gluon-classics launch -n 2 -s 1 -- '
               'gluon-classics train lenet'),
    'ablate': (_add_ablate, "train the LeNet chapter's exercise variants side by side", None),
    'features': (_add_features, 'conv feature maps and activation statistics', None),
    'export': (_add_export, 'write trained parameters as ONNX (checked by ONNX Runtime on the '
                            "test set) or as MXNet's symbol + params", None),
}
