"""The d2l 2nd edition's ``train_ch6`` and ``evaluate_accuracy_gpu``, on ``train_ch5``'s loop.

The current MXNet book (d2l 1.0, numpy mode) trains LeNet with
``train_ch6(net, train_iter, test_iter, num_epochs, lr, device)``: Xavier
re-initialization, plain SGD, a live plot, and two printed lines at the end::

    loss 0.469, train acc 0.823, test acc 0.779
    NNNN.N examples/sec on cpu(0)

These are the same functions in signature, behaviour and printout, running on
the fast path of :func:`~gluon_classics.train_ch5`, in numpy mode or not.
"""
import sys

from mxnet import gluon, init

from ..devices import try_gpu
from .loop import evaluate_accuracy, train_ch5

__all__ = ['train_ch6', 'evaluate_accuracy_gpu']


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """Fraction of examples in ``data_iter`` that ``net`` classifies correctly (d2l 2nd edition).

    Parameters
    ----------
    net : Block
    data_iter : iterable of (X, y)
    device : Context or list of Context, optional
        Default: where the net's parameters are, as in the book.
    """
    return evaluate_accuracy(data_iter, net, device)


def _in_notebook():
    ipython = sys.modules.get('IPython')
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, 'kernel', None) is not None  # a Jupyter kernel, not a terminal


class _LivePlot:
    """The book's Animator: the curves redrawn in the notebook after every epoch."""

    def __init__(self):
        from IPython import display
        from ..utils.plots import _pyplot, plot_history
        self._display, self._draw = display, plot_history
        self._plt = _pyplot()
        self.fig, self.ax = self._plt.subplots(figsize=(3.5, 2.5))
        self.history = []

    def __call__(self, record, trainer):
        self.history.append(record)
        self._draw(self.history, ax=self.ax)
        self._display.display(self.fig)
        self._display.clear_output(wait=True)

    def close(self):
        """Show the final curves (below the printed lines, as in the book) and free them."""
        self._display.display(self.fig)
        self._plt.close(self.fig)


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None):
    """Train ``net`` as the d2l 2nd edition's ``train_ch6`` does.

    Re-initializes the parameters (Xavier) on ``device``, trains with plain
    SGD at ``lr`` and softmax cross-entropy, shows a live plot of train loss,
    train and test accuracy in a notebook, and prints the book's two lines.

    Parameters
    ----------
    net : Block
        A network; ``nn.Sequential`` of hybridizable layers (the book's LeNet)
        and HybridBlocks train as one compiled graph.
    train_iter, test_iter : iterable of (X, y)
        Legacy or, in numpy mode, ``mx.np`` batches; labels of any dtype.
    num_epochs : int
    lr : float
    device : Context, optional
        Default :func:`~gluon_classics.try_gpu`, as in the book.

    Returns
    -------
    None
        As the book's; :func:`~gluon_classics.train_ch5` returns the history.
    """
    device = device or try_gpu()
    net.initialize(force_reinit=True, ctx=device, init=init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
    live = _LivePlot() if _in_notebook() else None
    history = train_ch5(net, train_iter, test_iter, getattr(train_iter, 'batch_size', None),
                        trainer, device, num_epochs, callbacks=[live] if live else (),
                        progress=False, log=lambda *args, **kwargs: None)
    last = history[-1]
    print(f'loss {last["loss"]:.3f}, train acc {last["train_acc"]:.3f}, '
          f'test acc {last["test_acc"]:.3f}')
    # the book's figure: all training examples over the time spent in the batch loops
    # (epochs are the same size, so this is the harmonic mean of the epochs' rates)
    rate = len(history) / sum(1 / r['examples_per_sec'] for r in history)
    print(f'{rate:.1f} examples/sec on {device}')
    if live is not None:
        live.close()
