"""The files a run writes: checked and claimed before the data is read, written at the end.

A bad path fails in a second, not after hours of training; another run
writing the same file is refused; and a file that still cannot be written
after training names the checkpoint that holds the weights.
"""
import json

from ..utils.outputs import (OutputError, atomic_write, check_output, claim_output,
                             figure_format, write_text)
from ..utils.plots import plot_history

__all__ = ['RunOutputs']


class RunOutputs:
    """``save``, ``metrics``, ``plot`` and the checkpoint of one run, in one process.

    In a parameter-server job rank 0 writes them for all, except a ``save``
    path with ``{rank}`` in it, which every worker writes for itself.
    """

    def __init__(self, outputs, checkpoint, parallel):
        self.parallel = parallel
        self.paths = dict(outputs)
        template = self.paths.get('save')
        self.save = template and template.replace('{rank}', str(parallel.rank))
        self.own_save = bool(template) and self.save != template  # {rank}: every worker its own
        self.checkpoint = checkpoint
        if parallel.is_chief:
            self._claim()
        elif self.own_save:
            check_output(self.save, '[[save]]')

    def _claim(self):
        """Every file, checked and held until this process ends; one file for one output."""
        seen = {}
        paths = dict(self.paths, save=self.save, checkpoint=self.checkpoint)
        for key, path in paths.items():
            if not path:
                continue
            real = claim_output(path, f'[[{key}]]')
            if key == 'plot':
                figure_format(path, '[[plot]]')
            if real in seen:
                raise OutputError(f'[[{key}]] {path} is also the [[{seen[real]}]] path: give '
                                  f'each output its own file')
            seen[real] = key

    def write(self, net, history):
        """The trained run's files; one that fails names where the weights are instead."""
        try:
            if self.save and (self.parallel.is_chief or self.own_save):
                atomic_write(self.save, net.save_parameters, '[[save]]')
            if self.parallel.is_chief:
                self.write_metrics(history)
                if self.paths.get('plot'):
                    plot_history(history, path=self.paths['plot'])
        except OutputError as err:
            if not self.checkpoint:
                raise
            raise OutputError(f'{err.raw()}; the weights of epoch {len(history)} are in the '
                              f'checkpoint {self.checkpoint} (evaluate and predict take it as '
                              f'[[params]]; unzip -p {self.checkpoint} net.params > PATH '
                              f'extracts them)') from None

    def write_metrics(self, history):
        """The per-epoch history as JSON (also of an interrupted run's finished epochs)."""
        if self.paths.get('metrics') and history and self.parallel.is_chief:
            write_text(self.paths['metrics'], json.dumps(history, indent=1), '[[metrics]]')
