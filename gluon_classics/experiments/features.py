"""What a trained LeNet computes: conv feature maps and activation statistics.

The chapter's last exercises: look at the first and second conv layers'
feature maps, and compare the activations for different inputs (real
images of each class against random noise). Layers are run one at a time in
forward order (:func:`~gluon_classics.model_zoo.leaves`), so every
intermediate output can be read.
"""
import json
import os

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from ..data import ArrayLoader
from ..model_zoo import leaves
from ..model_zoo.summary import _layer_names  # the names layer_shapes prints
from ..utils.outputs import check_output_dir, save_figure, write_text
from ..utils.plots import _pyplot

__all__ = ['feature_maps', 'activation_stats', 'write_feature_report', 'SATURATION',
           'REPORT_FILES']

REPORT_FILES = ('activations.md', 'activations.json', 'activations.png')

# Per activation: (which outputs count as saturated, i.e. with a near-zero
# gradient, and how the report words it).
SATURATION = {
    'sigmoid': (lambda a: (a > 0.99) | (a < 0.01), 'x > 0.99 or x < 0.01'),
    'tanh': (lambda a: np.abs(a) > 0.99, '|x| > 0.99'),
    'relu': (lambda a: a == 0, 'x = 0'),
}


def _activation(layer):
    if isinstance(layer, nn.Activation):
        return layer._act_type
    act = getattr(layer, 'act', None)
    return act._act_type if act is not None else None


def _outputs(net, X):
    """``(name, layer, output)`` for every layer of ``net``, in forward order."""
    layers = leaves(net)
    for name, layer in zip(_layer_names(layers), layers):
        X = layer(X)
        yield name, layer, X


def feature_maps(net, X):
    """Outputs of the conv layers of ``net`` for the batch ``X``.

    Parameters
    ----------
    net : Block
        A chain of layers, like :class:`~gluon_classics.model_zoo.LeNet`.
    X : NDArray
        ``(N, C, H, W)`` input batch on the net's context.

    Returns
    -------
    list of (str, NDArray)
        ``[('conv0', (N, 6, 28, 28) maps), ('conv1', ...)]``, after each
        layer's activation, named as :func:`~gluon_classics.layer_shapes` names them.
    """
    return [(name, out) for name, layer, out in _outputs(net, X)
            if isinstance(layer, nn.Conv2D)]


def activation_stats(net, X):
    """Per example, the statistics of every activated layer's output.

    Parameters
    ----------
    net : Block
    X : NDArray
        ``(N, C, H, W)`` input batch.

    Returns
    -------
    list of dict
        One per layer with an activation (the output layer has none):
        ``layer``, ``activation``, ``saturation`` (the criterion, e.g.
        ``'x = 0'`` for ReLU, None for activations without one) and numpy
        arrays of length N: ``mean``, ``std`` and ``saturated`` (fraction of
        the layer's units meeting the criterion; NaN without one).
    """
    stats = []
    for name, layer, out in _outputs(net, X):
        act = _activation(layer)
        if act is None:
            continue
        a = out.asnumpy().reshape(out.shape[0], -1)
        test, words = SATURATION.get(act, (None, None))
        stats.append({'layer': name, 'activation': act, 'saturation': words,
                      'mean': a.mean(axis=1), 'std': a.std(axis=1),
                      'saturated': test(a).mean(axis=1) if test else np.full(len(a), np.nan)})
    return stats


def _class_examples(images, labels, num_classes):
    """Index of the first test example of each class present."""
    return [int(np.flatnonzero(labels == c)[0]) for c in range(num_classes)
            if (labels == c).any()]


def _save(fig, path):
    save_figure(fig, path, dpi=100, bbox_inches='tight')


def _scaled(a):
    """Each map in ``a`` (..., H, W) stretched to [0, 1] over its own range."""
    lo = a.min(axis=(-2, -1), keepdims=True)
    span = a.max(axis=(-2, -1), keepdims=True) - lo
    return (a - lo) / np.where(span > 0, span, 1)


def _grid(images, maps, path, title, gap=2):
    """One row per image: the input, then each channel's feature map.

    Drawn as one mosaic in a single axes: a figure with an axes per map
    takes seconds to build, and the maps are small.
    """
    plt = _pyplot()
    n, c, h, w = maps.shape
    # the input is resized to the maps' size only by nearest neighbour, for layout
    ih, iw = images.shape[-2:]
    inputs = images[:, np.arange(h) * ih // h][:, :, np.arange(w) * iw // w]
    tiles = np.concatenate([_scaled(inputs)[:, None], _scaled(maps)], axis=1)  # (n, c+1, h, w)
    mosaic = np.ones((n * (h + gap) - gap, (c + 1) * (w + gap) - gap))
    for i in range(n):
        for k in range(c + 1):
            mosaic[i * (h + gap):i * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = tiles[i, k]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * (c + 1)), max(1.5, 0.5 * n + 0.8)))
    ax.imshow(mosaic, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
    ax.set_xticks([k * (w + gap) + w / 2 - 0.5 for k in range(c + 1)])
    ax.set_xticklabels(['input'] + [str(k) for k in range(c)], fontsize=7)
    ax.set_yticks([])
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    _save(fig, path)
    plt.close(fig)


def _cell(mean, std, saturated):
    cell = f'{mean:.3f} ± {std:.3f}'
    return cell + (f', {100 * saturated:.0f}%' if np.isfinite(saturated) else '')


def _stats_table(labels, stats, real):
    """Markdown: one row per input, then the mean over the ``real`` inputs."""
    layers = [s['layer'] for s in stats]
    criteria = sorted({f'{s["activation"]}: {s["saturation"]}' for s in stats if s['saturation']})
    lines = ['Per layer: mean ± std of the activations, and the fraction of units saturated '
             f'({"; ".join(criteria) or "no criterion for this activation"}).', '',
             '| input | ' + ' | '.join(layers) + ' |', '|---|' + '---:|' * len(layers)]
    for i, label in enumerate(labels):
        cells = [_cell(s['mean'][i], s['std'][i], s['saturated'][i]) for s in stats]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    cells = [_cell(*(np.mean(s[k][real]) for k in ('mean', 'std', 'saturated'))) for s in stats]
    lines.append('| mean of the test images | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _plot_stats(stats, labels, noise, path):
    plt = _pyplot()
    layers = [s['layer'] for s in stats]
    x = np.arange(len(layers))
    real = [i for i in range(len(labels)) if i != noise]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, key in zip(axes, ('mean', 'std', 'saturated')):
        values = np.array([s[key] for s in stats])  # (layers, inputs)
        for i in real:
            ax.plot(x, values[:, i], color='grey', lw=0.8, alpha=0.6)
        ax.plot(x, values[:, real].mean(axis=1), color='black', lw=2, marker='o',
                label='test images (one per class), mean')
        ax.plot(x, values[:, noise], color='tab:red', lw=2, marker='s', label='uniform noise')
        ax.set_xticks(x)
        ax.set_xticklabels(layers)
        ax.set_title('fraction saturated' if key == 'saturated' else f'activation {key}')
        if key == 'saturated' and np.isfinite(values).any():
            ax.set_ylim(0, max(0.05, 1.1 * np.nanmax(values)))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def write_feature_report(net, test_iter, out, num_images=4, seed=0, ctx=None):
    """Write feature-map grids and activation statistics of a trained net to ``out``.

    Files: ``conv0.png``, ``conv1.png``... (the first ``num_images`` test
    images and every channel of each conv layer's output), and
    ``activations.md``, ``activations.json``, ``activations.png`` (the
    statistics of :func:`activation_stats` for the first test image of each
    class and for one image of uniform noise in [0, 1]).

    Parameters
    ----------
    net : Block
        A trained network.
    test_iter : ArrayLoader
        Supplies ``images`` (uint8 NCHW), ``labels``, ``num_classes``,
        ``text_labels`` and ``image_shape`` (after resize).
    out : str
        Output folder, created if needed.
    num_images : int, default 4
    seed : int, default 0
        Seed of the noise image.
    ctx : Context, optional
        Where to run the net; ``test_iter.ctx`` when None.

    Returns
    -------
    dict
        ``files`` written and the ``stats`` as stored in the JSON file.
    """
    if num_images < 1:
        raise ValueError(f'num_images must be at least 1; got {num_images}')
    ctx = ctx or test_iter.ctx
    check_output_dir(out, REPORT_FILES)  # the conv*.png names are known only per net

    def batch(idx):  # the loader's own scaling and resize, for a few examples
        sub = ArrayLoader(test_iter.images[idx], test_iter.labels[idx], len(idx),
                          resize=test_iter.resize, ctx=ctx)
        return next(iter(sub))[0]

    first = list(range(min(num_images, test_iter.num_examples)))
    X = batch(first)
    files = []
    for name, maps in feature_maps(net, X):
        path = os.path.join(out, f'{name}.png')
        # colour inputs are shown as their channel mean: the maps are grey anyway
        _grid(X.asnumpy().mean(axis=1), maps.asnumpy(), path,
              f'{name}: {maps.shape[1]} channels of {maps.shape[2]}x{maps.shape[3]} '
              f'(each map scaled to its own range)')
        files.append(path)

    idx = _class_examples(test_iter.images, test_iter.labels, test_iter.num_classes)
    noise = mx.nd.array(np.random.default_rng(seed).random((1,) + X.shape[1:]), ctx=ctx)
    inputs = mx.nd.concat(batch(idx), noise, dim=0)
    labels = [f'{test_iter.text_labels[test_iter.labels[i]]} (test #{i})' for i in idx] + \
        ['uniform noise']
    stats = activation_stats(net, inputs)
    table = _stats_table(labels, stats, real=np.arange(len(idx)))
    record = {'inputs': labels, 'layers': [
        {'layer': s['layer'], 'activation': s['activation'], 'saturation': s['saturation'],
         **{k: [None if not np.isfinite(v) else float(v) for v in s[k]]
            for k in ('mean', 'std', 'saturated')}} for s in stats]}

    def text(name, content):
        path = os.path.join(out, name)
        write_text(path, content)
        files.append(path)
    text('activations.md', table)
    text('activations.json', json.dumps(record, indent=1) + '\n')
    path = os.path.join(out, 'activations.png')
    _plot_stats(stats, labels, len(labels) - 1, path)
    files.append(path)
    return {'files': files, 'stats': record}
