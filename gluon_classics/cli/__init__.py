"""The ``gluon-classics`` command: a thin layer over the library.

:mod:`.parser` holds the options, :mod:`.commands` the subcommands (each a
few lines over public functions, so a script does the same with one import),
:mod:`.errors` how it reports: an error a user can fix is one line
(``gluon-classics: error: ...``) with exit status 2.
"""
import importlib
import sys
import warnings

from ..utils.extras import MissingExtra
from ..utils.outputs import release_outputs
from .errors import UsageError, one_line, show_warning, signals
from .parser import build_parser, command_of

__all__ = ['main', 'build_parser', 'cmd_train', 'UsageError']


def __getattr__(name):  # the commands import MXNet: only when used (--help does not)
    if name in ('commands', 'cmd_train'):
        commands = importlib.import_module('.commands', __name__)
        return commands if name == 'commands' else commands.cmd_train
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(command_of(argv) or '').parse_args(argv)  # options import MXNet
        with signals, warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.func(args) or 0
    except ImportError as err:  # MXNet unusable (_backend's BackendError), an extra missing
        if type(err).__name__ != 'BackendError' and not isinstance(err, MissingExtra):
            raise
        print(f'gluon-classics: error: {one_line(err).removeprefix("gluon_classics: ")}',
              file=sys.stderr)
        return 2
    except (UsageError, ValueError, FileNotFoundError, ArithmeticError) as err:
        # ValueError covers DataError, CheckpointError, OutputError and SettingError;
        # ArithmeticError a NaN loss
        print(f'gluon-classics: error: {one_line(err)}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # train and ablate say more; evaluate, predict... only this
        print(f'gluon-classics: {signals.name()}; nothing was written', file=sys.stderr)
        return signals.status()
    finally:
        release_outputs()  # a command's claims end with it (an in-process caller goes on)
