"""Public names loaded on first use (PEP 562): the package and the model zoo serve
``--help`` and their tables without importing MXNet, which the modules behind the names do."""
import importlib
import sys

__all__ = ['lazy_names']


def lazy_names(package, names):
    """``(__getattr__, __dir__)`` for ``package`` (its ``__name__``), whose ``names`` map each
    submodule (relative to it) to the public names it holds; each is imported once."""
    where = {name: module for module, held in names.items() for name in held}

    def __getattr__(name):
        if name not in where:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(f'.{where[name]}', package), name)
        setattr(sys.modules[package], name, value)  # once
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
