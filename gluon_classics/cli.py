"""The ``gluon-classics`` command: a thin layer over the library.

Every subcommand is a few lines that call public functions, so a script user
can do the same with one import. Errors a user can fix are printed as one line
(``gluon-classics: error: ...``) with exit status 2.
"""
import argparse
import sys

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
    parser.add_argument('model', choices=['lenet', 'alexnet'])
    parser.add_argument('--variant', default='d2l',
                        help="lenet: d2l, gluon, lenet5; alexnet: d2l, imagenet (default d2l)")


def cmd_shapes(args):
    from . import get_model, print_shapes
    net = get_model(args.model, variant=args.variant)
    shape = args.input_shape or (1,) + net.input_shape
    print_shapes(net, shape)


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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from . import BackendError  # noqa: F401  (MXNet problems become one line)
    except ImportError as err:
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f'gluon-classics: error: {err}', file=sys.stderr)
        return 2
