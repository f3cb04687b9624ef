"""Our own CPU operators (``conv_pool.cc``), loaded into MXNet once per process.

:mod:`.build` compiles the library (once per machine); this module loads it
and makes ``mx.nd``/``mx.sym`` functions of its operators. Without a compiler
nothing is loaded and the graph uses MXNet's operators (the same function,
slower): :func:`status` says which and why.
"""
import ctypes
import sys

import mxnet as mx

from . import build
from .build import OPERATORS  # the names conv_pool.cc registers, beside its source

__all__ = ['load', 'status', 'describe', 'OPERATORS', 'TILE', 'MAX_KERNEL', 'MAX_PAD', 'MAX_POOL',
           'MAX_CHANNELS']

# conv_pool.cc's limits:
TILE, MAX_KERNEL = 32, 11  # its kCols and kMaxK: pool sizes must divide TILE
# its kMaxPad, kMaxPool, kMaxChannels: attributes past them are refused (graph.py keeps MXNet's ops)
MAX_PAD, MAX_POOL, MAX_CHANNELS = 1024, 32, 4096
_state = {}  # once per process: MXNet cannot unload a library


def _load():
    path, why = build.library()
    if path is None:
        return None, why
    from mxnet.base import _LIB, c_str, check_call, mx_uint
    try:
        check_call(_LIB.MXLoadLib(c_str(path), mx_uint(0)))
        for name in OPERATORS.values():
            _register(name)
    except mx.base.MXNetError as e:  # a file from before builds were proven in a child
        return None, f'off: MXNet cannot load {path} ({build.message_line(str(e))}); ' \
                     f'remove it to rebuild'
    return path, f'on ({path})'


def _register(name):
    """``mx.nd.<name>`` and ``mx.sym.<name>`` for an operator a library added.

    ``mx.library.load`` would regenerate the Python function of every one of
    MXNet's ~950 operators (0.7 s, in the first epoch's time); this makes ours.
    """
    from mxnet.base import _LIB, OpHandle, c_str, check_call
    from mxnet.ndarray.register import _make_ndarray_function
    from mxnet.symbol.register import _make_symbol_function
    handle = OpHandle()
    check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(handle)))
    for package, make in ((mx.ndarray, _make_ndarray_function),
                          (mx.symbol, _make_symbol_function)):
        function = make(handle, name, name)
        function.__module__ = f'{package.__name__}.op'
        setattr(package.op, name, function)  # where MXNet's own operators live
        setattr(package, name, function)


def load():
    """Whether our operators are loaded into MXNet (compiling them the first time).

    Called only where a graph wants them; where they are off, says so once.
    """
    if not _state:
        _state['path'], _state['status'] = _load()
        if _state['path'] is None:
            print(f"gluon_classics: LeNet's CPU kernels are {_state['status']}; MXNet's "
                  f"operators instead (the same numbers, slower)", file=sys.stderr, flush=True)
    return _state['path'] is not None


def status():
    """One line: whether our operators are in use, and from which file or why not."""
    load()
    return _state['status']


def describe():
    """Like :func:`status`, without compiling or loading anything (for ``doctor``)."""
    return _state['status'] if _state else build.describe()
