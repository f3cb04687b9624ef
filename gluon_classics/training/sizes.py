"""Whether the data fits the run, checked before the first batch is drawn.

Too few examples for the batch, images too small for the net's layers (MXNet's
symbolic shape inference: nothing is allocated), or a batch too big for the
memory of the machine (an estimate from the layers' output shapes): each is
one line naming the setting, not a shape-inference dump after the data is
read, a 46-line allocation traceback or the kernel's OOM killer.
"""
import math
import os

import mxnet as mx

from ..errors import SettingError
from ..model_zoo import count_parameters, layer_shapes

__all__ = ['check_batch_size', 'check_image_size', 'check_batch_memory', 'training_bytes',
           'free_memory']

# Bytes a float32 value takes, and how many values training keeps per forward value
# (the output for the backward pass, its gradient, an operator's own buffer) and per
# parameter (the weight, its gradient, the optimizer's state and the KVStore's copy).
_FLOAT = 4
_PER_ACTIVATION = 3
_PER_PARAMETER = 4


def check_batch_size(batch_size, num_examples):
    if batch_size > num_examples:
        raise SettingError(f'[[batch_size={batch_size}]] is larger than the {num_examples} '
                           f'training examples: use at most [[batch_size={num_examples}]]')


def _fits(net, image_shape):
    try:
        layer_shapes(net, (1,) + tuple(image_shape))
        return None
    except ValueError as err:
        return str(err).split(': ', 1)[-1]


def _smallest_side(net, channels, side):
    """The smallest square side above ``side`` the net takes (up to its own input size)."""
    low, high = side, max(net.input_shape[-1], side + 1)
    if _fits(net, (channels, high, high)) is not None:
        return None
    while high - low > 1:  # low fails, high fits
        mid = (low + high) // 2
        low, high = (low, mid) if _fits(net, (channels, mid, mid)) is None else (mid, high)
    return high


def check_image_size(net, image_shape, resize):
    """One line naming [[resize]] where ``net`` cannot take ``(C, H, W)`` images."""
    reason = _fits(net, image_shape)
    if reason is None:
        return
    channels, height, width = image_shape
    smallest = _smallest_side(net, channels, min(height, width))
    fix = f'use [[resize={smallest}]] or more' if smallest else 'use a larger [[resize]]'
    made = f'[[resize={resize}]] makes' if resize else 'the data set has'
    raise SettingError(f'{made} {height}x{width} images, too small for this network '
                       f'({reason}): {fix}')


def training_bytes(net, image_shape, batch_size):
    """About how many bytes training ``net`` on a batch of ``(C, H, W)`` images takes."""
    shape = (1,) + tuple(image_shape)
    per_example = math.prod(image_shape) + _PER_ACTIVATION * sum(
        math.prod(s) for _, s in layer_shapes(net, shape))
    return _FLOAT * (batch_size * per_example + _PER_PARAMETER * count_parameters(net, shape))


def free_memory(ctx):
    """Bytes free for ``ctx``: MemAvailable for a CPU (the machine's), the GPU's own free."""
    if ctx.device_type == 'gpu':
        return mx.context.gpu_memory_info(ctx.device_id)[0]
    try:
        with open('/proc/meminfo') as f:
            fields = dict(line.split(':', 1) for line in f)
        return int(fields['MemAvailable'].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def check_batch_memory(net, image_shape, batch_size, resize, ctxs):
    """One line naming [[resize]] and [[batch_size]] where a batch cannot fit in memory."""
    # the batch is split over the contexts; CPU contexts share the machine's memory
    gpus = [c for c in ctxs if c.device_type == 'gpu']
    share = -(-batch_size // len(ctxs)) if gpus else batch_size
    need = training_bytes(net, image_shape, share)
    free = min(free_memory(c) for c in (gpus or ctxs[:1]))
    if need > free:
        where = f'GPU {gpus[0].device_id}' if gpus else 'this machine'
        images = 'x'.join(map(str, image_shape))
        size = f' ([[resize={resize}]])' if resize else ''
        raise SettingError(f'a batch of [[batch_size={batch_size}]] {images} images{size} needs '
                           f'about {_gib(need)} to train, more than the {_gib(free)} free on '
                           f'{where}: lower [[resize]] or [[batch_size]]')


def _gib(n):
    return f'{n / 2**30:.3g} GiB'
