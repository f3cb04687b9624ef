"""Plots as the d2l chapters draw them, usable without a display."""
import os
import sys

import numpy as np

from .outputs import save_figure

__all__ = ['show_images', 'plot_history', 'plot_confusion']

# plot_history's curves: key, (colour, line style), label, as d2l's Animator draws them
HISTORY_CURVES = (('loss', ('C0', '-'), 'train loss'), ('train_acc', ('m', '--'), 'train acc'),
                  ('test_acc', ('g', '-.'), 'test acc'))


def _pyplot():
    """matplotlib.pyplot, on the Agg backend when there is no display to draw on."""
    import matplotlib
    headless = sys.platform.startswith('linux') and not (
        os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))
    # Only choose a backend when none is set up yet: a notebook's inline
    # backend or the user's own choice wins.
    if headless and 'matplotlib.pyplot' not in sys.modules and 'MPLBACKEND' not in os.environ:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _to_hwc(img):
    if hasattr(img, 'asnumpy'):
        img = img.asnumpy()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)  # CHW, as the loaders give, to HWC
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5, path=None):
    """Plot images on a grid, as d2l's ``show_images``.

    Parameters
    ----------
    imgs : sequence of array-like or NDArray
        Images as ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``; extra ones are ignored.
    num_rows, num_cols : int
        Grid size.
    titles : sequence of str, optional
        One title per image.
    scale : float, default 1.5
        Inches per grid cell.
    path : str, optional
        Also save the figure to this file (format from its extension).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        The grid's axes, flattened.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale),
                             squeeze=False)
    axes = axes.flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        img = _to_hwc(img)
        ax.imshow(img, cmap='gray' if img.ndim == 2 else None)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    if titles and num_rows > 1:
        fig.tight_layout()  # room for multi-line titles between the rows
    if path:
        save_figure(fig, path, bbox_inches='tight')
    return axes


def plot_history(history, path=None, title=None, ax=None):
    """Train loss, train accuracy and test accuracy by epoch, as d2l's Animator draws them.

    Parameters
    ----------
    history : list of dict
        What :func:`~gluon_classics.train_ch5` returns (or its ``--metrics`` JSON).
    path : str, optional
        Also save the figure to this file.
    title : str, optional
    ax : matplotlib.axes.Axes, optional
        Draw here (cleared first) instead of on a new figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    epochs = [r['epoch'] for r in history]
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(4.5, 3.2))
    else:
        ax.cla()
    for key, (color, line), label in HISTORY_CURVES:
        ax.plot(epochs, [r[key] for r in history], line, color=color, label=label, marker='o',
                markersize=3)
    ax.set_xlabel('epoch')
    ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)
    ax.grid(True)
    ax.legend()
    if title:
        ax.set_title(title)
    if path:
        save_figure(ax.figure, path, bbox_inches='tight', dpi=120)
    return ax


def plot_confusion(matrix, names, path=None, title=None, what=None):
    """A confusion matrix a person can read: colours normalised by row (the share of each true
    class), every count written in its cell, the axes labelled with the class names.

    Parameters
    ----------
    matrix : (K, K) array of int
        Counts; row = true class, column = predicted class.
    names : sequence of str
        The K class names.
    path : str, optional
        Save the figure there (format from its extension).

    Returns
    -------
    matplotlib.figure.Figure, or the path written when ``path`` is given (the figure closed)
    """
    plt = _pyplot()
    counts = np.asarray(matrix)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    k = len(names)
    fig, ax = plt.subplots(figsize=(2.5 + 0.75 * k, 2 + 0.7 * k))
    image = ax.imshow(shares, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='share of the true class')
    ax.set_xticks(range(k), labels=names, rotation=45, ha='right')
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    if title:
        ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(counts[i, j])), ha='center', va='center', fontsize=8,
                    color='white' if shares[i, j] > 0.5 else 'black')
    fig.tight_layout()
    if not path:
        return fig
    try:
        return save_figure(fig, path, what, dpi=120)
    finally:
        plt.close(fig)
