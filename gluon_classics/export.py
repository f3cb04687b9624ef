"""A trained net out of MXNet: ONNX through MXNet's own exporter, or MXNet's symbol + params.

What is written is checked before it replaces anything at the path: ``onnx.checker``, then,
given data, the file run by ONNX Runtime (CPU) or reloaded by MXNet against the net itself,
image by image (the same argmax everywhere, logits within ``tolerance``). A file that fails
is not installed; the old one, if any, stays (:mod:`.utils.outputs`). docs/export.md has the
five lines that load the file in ONNX Runtime.
"""
import json
import os
import shutil
import tempfile
import warnings

import mxnet as mx
import numpy as np
from mxnet import gluon

from .choices import EXPORT_FORMATS
from .devices import net_ctx
from .utils.extras import require
from .utils.outputs import atomic_write, check_output

__all__ = ['export_onnx', 'export_mxnet', 'compare', 'ExportMismatch', 'FORMATS', 'OPSET']

FORMATS = tuple(EXPORT_FORMATS)
# MXNet 1.9.1's exporter translates every operator for opset 13 at the newest (its
# _op_translations_opset13), but stamps the installed onnx's newest opset on the file (23 for
# onnx 1.18): the file declares 13, which the checker validates and older runtimes load.
OPSET = 13


class ExportMismatch(ValueError):
    """The written file does not compute what the net computes; it was not installed."""


def _ready(net, input_shape):
    """``net`` hybridized with its graph built for one ``(1,) + input_shape`` batch."""
    ctx = net_ctx(net)
    net.hybridize()
    net(mx.nd.zeros((1,) + tuple(input_shape), ctx=ctx))
    return ctx


def _input_shape(net, input_shape):
    shape = tuple(input_shape or getattr(net, 'input_shape', ()))
    if len(shape) != 3:
        raise ValueError(f'input_shape must be (C, H, W); got {input_shape!r} (a net without '
                         f'input_shape needs it given)')
    return shape


def _mxnet_files(net, folder, input_shape):
    """``net.export`` into ``folder``: the symbol file and the params file."""
    _ready(net, input_shape)
    prefix = os.path.join(folder, 'net')
    net.export(prefix, epoch=0)
    return prefix + '-symbol.json', prefix + '-0000.params'


def _onnx_model(onnx, net, folder, input_shape, metadata):
    """MXNet's exporter on the net, then: the declared opset, a named batch axis, the weights
    as constants, the output named ``logits``, and ``metadata`` in metadata_props."""
    symbol, params = _mxnet_files(net, folder, input_shape)
    path = os.path.join(folder, 'net.onnx')
    mx.onnx.export_model(symbol, params, [(1,) + input_shape], [np.float32], path,
                         dynamic=True, dynamic_input_shapes=[(None,) + input_shape])
    model = onnx.load(path)
    graph = model.graph
    del model.opset_import[:]
    model.opset_import.append(onnx.helper.make_opsetid('', OPSET))
    model.ir_version = onnx.helper.find_min_ir_version_for(model.opset_import)
    # The exporter lists every weight as a graph input too (pre-IR-4 style): ONNX Runtime then
    # treats them as inputs a caller may override and folds no constants. One input: 'data'.
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = ['logits' if o == old else o for o in node.output]
    graph.output[0].name = 'logits'
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = 'batch'
    from . import __version__  # here: the package imports this module before defining it
    model.producer_name, model.producer_version = 'gluon_classics', __version__
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        reason = ' '.join(str(err).split())
        raise ExportMismatch(f'onnx.checker rejects the exported graph ({reason}); the file '
                             f'was not written') from None
    return model


def _metadata(net, input_shape, class_names):
    meta = {'input_shape': ','.join(map(str, input_shape)),
            'input': 'data: float32 (batch, C, H, W), pixels in [0, 1]',
            'output': 'logits: float32 (batch, classes), before softmax'}
    if class_names is not None:
        meta['class_names'] = json.dumps(list(class_names))
    if getattr(net, 'variant', None):  # the zoo's factories set it
        meta['variant'] = str(net.variant)
    meta['model'] = type(net).__name__
    return meta


def compare(run, net, data_iter, tolerance=1e-4):
    """``run`` (numpy batch -> numpy logits) against ``net`` on every example of ``data_iter``.

    Returns
    -------
    dict
        ``images``, ``same_argmax`` (how many share the net's argmax), ``max_abs_diff`` (the
        largest logit difference) and ``tolerance``.
    """
    ctx = net_ctx(net)
    images = same = 0
    worst = 0.0
    for X, _ in data_iter:
        ours = net(X.as_in_context(ctx)).asnumpy()
        theirs = np.asarray(run(X.asnumpy().astype(np.float32)))
        if theirs.shape != ours.shape:
            raise ExportMismatch(f'the exported model gives logits of shape {theirs.shape} '
                                 f'for a batch the net answers with {ours.shape}')
        images += len(ours)
        same += int((ours.argmax(axis=1) == theirs.argmax(axis=1)).sum())
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return dict(images=images, same_argmax=same, max_abs_diff=worst, tolerance=tolerance)


def _checked(agreement, what):
    if agreement['images'] == 0:
        raise ValueError('the data to check the export on yielded no examples')
    if agreement['same_argmax'] != agreement['images'] or \
            not agreement['max_abs_diff'] <= agreement['tolerance']:
        raise ExportMismatch(
            f'{what} disagrees with MXNet: the same argmax on {agreement["same_argmax"]} of '
            f'{agreement["images"]} images, max |logit difference| '
            f'{agreement["max_abs_diff"]:.3g} (tolerance {agreement["tolerance"]:g}); the file '
            f'was not written')
    return agreement


def export_onnx(net, path, data=None, *, input_shape=None, class_names=None, tolerance=1e-4):
    r"""Write ``net`` as an ONNX file through MXNet's exporter (``mxnet.onnx``), checked.

    The file takes ``data`` of shape ``(batch, C, H, W)`` (any batch) and gives ``logits``;
    its metadata_props hold ``class_names`` (JSON), ``input_shape`` and the model's name.
    ``onnx.checker`` (full check) must pass; with ``data``, ONNX Runtime on the CPU runs the
    file on every example and must agree with ``net``. Only then is ``path`` written
    (atomically; a symlink's target).

    Parameters
    ----------
    net : HybridBlock
        Initialized (e.g. loaded parameters); it is hybridized.
    path : str
    data : iterable of (X, y), optional
        Batches to compare ONNX Runtime with MXNet on (the test set).
    input_shape : (C, H, W), optional
        Default ``net.input_shape``; give the resized shape for a net trained resized.
    class_names : sequence of str, optional
    tolerance : float, default 1e-4
        Largest |logit difference| accepted.

    Returns
    -------
    dict
        ``path`` and, with ``data``, :func:`compare`'s ``images``, ``same_argmax``,
        ``max_abs_diff`` and ``tolerance``, and ``runtime`` (ONNX Runtime's version).

    Raises
    ------
    MissingExtra
        onnx or onnxruntime is not installed (the ``export`` extra).
    ExportMismatch
        ONNX Runtime disagrees with the net; nothing was written.
    OutputError
        ``path`` cannot be written.
    """
    onnx, ort = require('export', 'export_onnx')
    input_shape = _input_shape(net, input_shape)
    check_output(path)
    result = {}

    def write(tmp):
        with tempfile.TemporaryDirectory(prefix='gluon_classics-export.') as folder:
            model = _onnx_model(onnx, net, folder, input_shape,
                                _metadata(net, input_shape, class_names))
            with open(tmp, 'wb') as f:
                f.write(model.SerializeToString())
        if data is not None:
            session = ort.InferenceSession(tmp, providers=['CPUExecutionProvider'])
            result.update(_checked(compare(lambda x: session.run(None, {'data': x})[0], net,
                                           data, tolerance), 'ONNX Runtime'),
                          runtime=ort.__version__)

    result['path'] = atomic_write(path, write)
    return result


def export_mxnet(net, prefix, data=None, *, input_shape=None, tolerance=1e-4):
    """``net.export(prefix)``: ``PREFIX-symbol.json`` and ``PREFIX-0000.params``, checked.

    With ``data``, the two files are loaded back (``gluon.SymbolBlock.imports``) and must
    agree with ``net`` on every example before they are installed. Returns ``paths`` and, with
    ``data``, :func:`compare`'s figures.
    """
    input_shape = _input_shape(net, input_shape)
    targets = [prefix + '-symbol.json', prefix + '-0000.params']
    for target in targets:
        check_output(target)
    result = {}
    with tempfile.TemporaryDirectory(prefix='gluon_classics-export.') as folder:
        files = _mxnet_files(net, folder, input_shape)
        if data is not None:
            ctx = _ready(net, input_shape)
            with warnings.catch_warnings():  # the JSON has no input dtype; float32 is fed
                warnings.filterwarnings('ignore', 'Cannot decide type', UserWarning)
                loaded = gluon.SymbolBlock.imports(files[0], ['data'], files[1], ctx=ctx)
            result.update(_checked(compare(lambda x: loaded(mx.nd.array(x, ctx=ctx)).asnumpy(),
                                           net, data, tolerance), "MXNet's reloaded export"))
        result['paths'] = [atomic_write(target, lambda tmp, src=src: shutil.copyfile(src, tmp))
                           for target, src in zip(targets, files)]
    return result
