"""The package's errors name the setting at fault in the caller's own words.

A message marks a setting as ``[[lr=0.3]]`` (or ``[[resume]]``, without a
value). Raised from the library it reads as Python (``lr=0.3``); the CLI
spells the same error with its options (``--lr 0.3``) through
:func:`spell`. So no library message names a command-line flag, and one
error type serves both.
"""
import re

__all__ = ['Fixable', 'SettingError', 'spell', 'python_spelling']

_SLOT = re.compile(r'\[\[(\w+)(?:=(.*?))?\]\]')

# Where the Python spelling of a value is not ``name=value``.
_PYTHON_VALUES = {('ctx', 'cpu'): 'ctx=mx.cpu()'}


def python_spelling(name, value):
    """``lr=0.3``; a bare ``name`` without a value."""
    if value is None:
        return name
    return _PYTHON_VALUES.get((name, value), f'{name}={value}')


def spell(text, spelling=python_spelling):
    """``text`` with each ``[[name=value]]`` written by ``spelling(name, value)``."""
    return _SLOT.sub(lambda m: spelling(m[1], m[2]), text)


class Fixable:
    """Mixed into an exception or warning whose message marks settings with ``[[...]]``."""

    def __str__(self):
        return spell(super().__str__())

    def raw(self):
        """The message with its ``[[...]]`` marks, to build a longer one of the same kind."""
        return super().__str__()

    def spelled(self, spelling):
        """The message with its settings written by ``spelling`` (the CLI's options)."""
        return spell(super().__str__(), spelling)


class SettingError(Fixable, ValueError):
    """A setting the caller can fix; the message names it and the fix."""
