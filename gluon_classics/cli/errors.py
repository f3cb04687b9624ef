"""How the command line reports: one line per error or warning, in its own options.

The library's errors mark the settings they name (:mod:`gluon_classics.errors`);
here they are spelled as the options that set them (``lr`` is ``--lr``). A
signal stops a run like Ctrl-C, and the exit status says which.
"""
import signal
import sys
import threading

from ..errors import Fixable, spell

__all__ = ['UsageError', 'one_line', 'cli_spelling', 'show_warning', 'Signals', 'signals']

# A setting's option, where it is not --name-with-dashes.
FLAGS = {'root': '--data-dir', 'hybridize': '--no-hybridize'}


class UsageError(Exception):
    """A bad option or input the user can fix; printed as one line."""


def cli_spelling(name, value):
    """``lr``, ``0.3`` -> ``--lr 0.3``; the model is the positional MODEL."""
    if name == 'model':
        return value or 'MODEL'
    flag = FLAGS.get(name) or '--' + name.replace('_', '-')
    return flag if value is None else f'{flag} {value}'


def one_line(err):
    """An error's message on one line, its settings spelled as options."""
    text = err.spelled(cli_spelling) if isinstance(err, Fixable) else str(err)
    return ' '.join(spell(text, cli_spelling).split()) or type(err).__name__


def show_warning(message, category, filename, lineno, file=None, line=None):
    print(f'gluon-classics: warning: {one_line(message)}', file=sys.stderr, flush=True)


class Signals:
    """SIGTERM handled like Ctrl-C (the same checkpoint and resume hint) while in a command."""

    def __init__(self):
        self.received, self.previous = [], None

    def _on_sigterm(self, signum, frame):
        self.received.append(signum)
        raise KeyboardInterrupt

    def __enter__(self):
        self.received.clear()
        if hasattr(signal, 'SIGTERM') and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    def name(self):
        return 'stopped by SIGTERM' if self.received else 'interrupted'

    def status(self):
        return 128 + (self.received[-1] if self.received else signal.SIGINT)


signals = Signals()  # the command line's: one command at a time runs in a process
