"""The optional extras (setup.cfg): a feature imports its modules here, or fails in one line.

``EXTRAS`` maps each extra to the modules its feature imports; tests/test_export.py checks it
against setup.cfg. README's lock installs every extra.
"""
import importlib

from ..errors import Fixable

__all__ = ['EXTRAS', 'MissingExtra', 'require']

EXTRAS = {
    'export': ('onnx', 'onnxruntime'),  # gluon-classics export, export_onnx
    'tensorboard': ('tensorboardX',),  # train --tensorboard, TensorBoardLogger
}


class MissingExtra(Fixable, ImportError):
    """A feature's optional extra is not installed; the message names it and the install."""


def require(extra, feature):
    """The modules of ``extra``, imported, in ``EXTRAS`` order; ``feature`` names the user.

    Raises
    ------
    MissingExtra
        One of them does not import: one line naming the extra and the pip command.
    """
    modules, missing = [], []
    for name in EXTRAS[extra]:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as err:  # absent, or broken (a wrong protobuf): say which
            missing.append(name if isinstance(err, ModuleNotFoundError) and err.name == name
                           else f'{name} ({err})')
    if missing:
        raise MissingExtra(f'{feature} needs the {extra!r} extra ({", ".join(missing)} did not '
                           f'import): pip install "gluon_classics[{extra}]", or pip install -r '
                           f'requirements.txt from the checkout')
    return modules
