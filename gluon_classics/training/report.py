"""What a trained net gets right and wrong on a split: loss, accuracy per class, the
confusion matrix (``evaluate --report``), and the misclassified images (``predict
--only-wrong``)."""
import os

import numpy as np
from ..devices import net_ctx
from ..utils.outputs import write_text
from ..utils.plots import plot_confusion
from .objective import objective

__all__ = ['evaluation_report', 'most_confused', 'format_report', 'write_report',
           'find_mistakes', 'REPORT_FILES']

REPORT_FILES = ('confusion.csv', 'confusion.png')


def evaluation_report(net, data_iter, class_names=None, ctx=None):
    """Score ``net`` on every example of ``data_iter``.

    Returns
    -------
    dict
        ``loss`` (the training objective's, per example), ``acc``, ``examples``, ``class_names``,
        ``matrix`` (K x K int64 counts: row = true class, column = predicted),
        ``per_class`` (accuracy per true class; NaN for a class with no examples) and
        ``confused`` (:func:`most_confused`).
    """
    ctx = ctx or net_ctx(net)
    matrix, loss_sum = None, 0.0
    for X, y in data_iter:
        logits = net(X.as_in_context(ctx))
        y = y.as_in_context(ctx)
        loss_sum += float(objective(logits, y)[0].asscalar())  # the training loss, summed
        if matrix is None:
            matrix = np.zeros((logits.shape[1],) * 2, dtype=np.int64)
        np.add.at(matrix, (y.asnumpy().astype(np.int64),
                           logits.argmax(axis=1).asnumpy().astype(np.int64)), 1)
    if matrix is None:
        raise ValueError('evaluation_report: the data iterator yielded no examples')
    n = int(matrix.sum())
    names = list(class_names) if class_names is not None else [str(i) for i in
                                                                range(len(matrix))]
    per_row = matrix.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        per_class = np.diag(matrix) / per_row
    return dict(loss=loss_sum / n, acc=float(np.trace(matrix)) / n, examples=n,
                class_names=names, matrix=matrix, per_class=per_class.tolist(),
                confused=most_confused(matrix, names))


def most_confused(matrix, names, k=5):
    """The ``k`` largest off-diagonal counts as ``(true name, predicted name, count)``."""
    off = np.array(matrix, dtype=np.int64)
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind='stable')[:k]
    return [(names[i], names[j], int(off[i, j]))
            for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]


def format_report(report, split='test'):
    """The printed summary: loss and accuracy, per-class accuracy, the most confused pairs."""
    names, matrix = report['class_names'], report['matrix']
    width = max(len(n) for n in names)
    lines = [f'{split} acc {report["acc"]:.4f} ({int(np.trace(matrix))}/{report["examples"]})',
             f'{split} loss {report["loss"]:.4f}', 'per-class accuracy:']
    for i, (name, acc, row) in enumerate(zip(names, report['per_class'], matrix)):
        lines.append(f'  {name:<{width}}  {acc:.3f} ({row[i]}/{row.sum()})')
    if report['confused']:
        lines.append('most confused (true -> predicted: images):')
        lines += [f'  {t} -> {p}: {c}' for t, p, c in report['confused']]
    return lines


def _csv_field(text):
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def write_report(report, folder, what=None):
    """``confusion.csv`` (counts: a row per true class, a column per predicted class, both
    named) and ``confusion.png`` (row-normalised colours, counts written) into ``folder``.
    Returns the paths written."""
    names, matrix = report['class_names'], report['matrix']
    rows = [','.join(['true\\predicted'] + [_csv_field(n) for n in names])]
    rows += [','.join([_csv_field(name)] + [str(int(c)) for c in row])
             for name, row in zip(names, matrix)]
    label = what and f'{what} file'
    csv = write_text(os.path.join(folder, REPORT_FILES[0]), '\n'.join(rows) + '\n', label)
    png = plot_confusion(matrix, names, path=os.path.join(folder, REPORT_FILES[1]),
                         title=f'accuracy {report["acc"]:.4f} on {report["examples"]} images',
                         what=label)
    return [csv, png]


def find_mistakes(net, data_iter, n=8, ctx=None):
    """The first ``n`` examples of ``data_iter`` that ``net`` gets wrong, as :func:`predict`
    returns them (``images``, ``true``, ``pred``), and how many examples were looked at."""
    ctx = ctx or net_ctx(net)
    images, true, pred, got, seen = [], [], [], 0, 0
    for X, y in data_iter:
        X = X.as_in_context(ctx)
        labels = y.asnumpy().astype(int)
        guess = net(X).argmax(axis=1).asnumpy().astype(int)
        wrong = np.flatnonzero(guess != labels)[:n - got]
        seen += len(labels) if got + len(wrong) < n else int(wrong[-1]) + 1
        if len(wrong):
            images.append(X.asnumpy()[wrong])
            true.append(labels[wrong])
            pred.append(guess[wrong])
            got += len(wrong)
        if got >= n:
            break
    if not got:
        return np.zeros((0,)), np.zeros((0,), int), np.zeros((0,), int), seen
    return np.concatenate(images), np.concatenate(true), np.concatenate(pred), seen
