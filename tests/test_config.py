"""Each setting of a run is resolved once, where it starts (``training/config.py``): the
dtype check, the fast path's mode and the device list, counted over whole runs."""
import dataclasses
import sys
from collections import Counter

import mxnet as mx
import pytest
from mxnet import gluon, init

from gluon_classics import fit, lenet, train_ch5
from gluon_classics.accel import bfloat16
from gluon_classics.training import config
from gluon_classics import devices

# Each resolution by its code object: counted wherever it is called from, under any name.
RESOLVERS = {'check_dtype': bfloat16.check_dtype.__code__,
             'accel mode': config.resolve_accel.__code__,
             'device list': devices.resolve_ctx.__code__,
             'ctx_list': devices.ctx_list.__code__}


def _count_resolutions(run):
    codes = {code: name for name, code in RESOLVERS.items()}
    counts = Counter()

    def profile(frame, event, arg):
        if event == 'call' and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1
    sys.setprofile(profile)
    try:
        result = run()
    finally:
        sys.setprofile(None)
    return counts, result


def test_fit_resolves_each_setting_once(fashion_mnist_dir):
    counts, (_, history) = _count_resolutions(lambda: fit(
        'lenet', epochs=2, num_examples=512, data_dir=fashion_mnist_dir, seed=0,
        progress=False, log=lambda *a: None))
    assert len(history) == 2
    assert counts == {'check_dtype': 1, 'accel mode': 1, 'device list': 1}  # ctx=None: try_gpu


def test_train_ch5_resolves_each_setting_once():
    net = lenet()
    net.initialize(init.Xavier())
    X, y = mx.nd.random.uniform(shape=(32, 1, 28, 28)), mx.nd.arange(32) % 10
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    counts, history = _count_resolutions(lambda: train_ch5(
        net, [(X, y)] * 2, [(X, y)], 32, trainer, mx.cpu(), 3, progress=False,
        log=lambda *a: None))
    assert len(history) == 3
    assert counts == {name: 1 for name in RESOLVERS}  # the given ctx, as a list once


def test_the_run_config_is_frozen_and_checked(monkeypatch):
    net = lenet()
    cfg = config.run_config(net, mx.cpu(), seed=3, batch_size=256)
    assert (cfg.ctxs, cfg.dtype, cfg.accel, cfg.seed) == ((mx.cpu(),), 'float32', 'on', 3)
    assert cfg.worker_batch_size == cfg.batch_size == 256 and cfg.parallel.num_workers == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.accel = 'off'
    monkeypatch.setenv('GLUON_CLASSICS_ACCEL', 'graph')
    assert config.run_config(net, mx.cpu()).accel == 'graph'
    assert config.run_config(net, mx.cpu(), accel='off').accel == 'off'  # the argument wins
    with pytest.raises(ValueError, match="^unknown dtype 'float16': choose one of"):
        config.run_config(net, mx.cpu(), dtype='float16')
