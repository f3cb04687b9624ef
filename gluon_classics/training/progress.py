"""Progress within an epoch: a tqdm bar on a terminal, a line a minute without one."""
import sys
import time

import mxnet as mx

__all__ = ['progress_bar', 'Heartbeat', 'HEARTBEAT_SECONDS']

# Without a terminal (a log file, a batch job) there is no tqdm bar: a line on
# stderr at most this often instead, so that a long AlexNet epoch is not silent.
HEARTBEAT_SECONDS = 60
ESTIMATE_BATCHES = 3  # timed after the first batch, which also builds the graph


def progress_bar(progress, total, epoch):
    """A tqdm bar on a terminal, a heartbeat on stderr otherwise, None when turned off."""
    if progress is False:
        return None
    if progress is None and not sys.stderr.isatty():
        return Heartbeat(total, epoch)
    try:  # tqdm is an optional dependency (the 'progress' extra)
        from tqdm import tqdm
    except ImportError:
        return Heartbeat(total, epoch)
    return tqdm(total=total, desc=f'epoch {epoch}', leave=False, unit='batch')


class Heartbeat:
    """Progress without a terminal: an estimate of the epoch's time, then a line a minute."""

    def __init__(self, total, epoch, stream=None):
        self.total, self.epoch, self.done, self.loss = total, epoch, 0, None
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.timed = None

    def _say(self, text):
        print(f'epoch {self.epoch}: {text}', file=self.stream, flush=True)

    def set_postfix(self, loss=None, **_):
        self.loss = loss

    def update(self, n=1):
        self.done += n
        if self.total and self.done in (1, 1 + ESTIMATE_BATCHES):
            self._estimate()
        now = time.monotonic()
        if now - self.last >= HEARTBEAT_SECONDS:
            self.last = now
            total = f'/{self.total} ({100 * self.done / self.total:.0f}%)' if self.total else ''
            loss = f', loss {self.loss}' if self.loss is not None else ''
            self._say(f'batch {self.done}{total}{loss}, {_duration(now - self.start)} so far')

    def _estimate(self):
        mx.nd.waitall()  # the engine runs ahead of Python: time finished batches
        now = time.monotonic()
        if self.done == 1:
            self.timed = now
            return
        per_batch = (now - self.timed) / ESTIMATE_BATCHES
        estimate = per_batch * self.total
        if estimate > HEARTBEAT_SECONDS:
            self._say(f'{per_batch:.2f} s a batch: about {_duration(estimate)} for {self.total} '
                      f'batches (a progress line every {_duration(HEARTBEAT_SECONDS)})')

    def close(self):
        pass


def _duration(seconds):
    if seconds < 120:
        return f'{seconds:.0f} s'
    return f'{seconds / 60:.0f} min' if seconds < 7200 else f'{seconds / 3600:.1f} h'
