"""train --tensorboard and TensorBoardLogger: the event file, read back here record by record
(a TFRecord reader over tensorboardX's own Event proto), holds the history's values."""
import json
import math
import struct
from types import SimpleNamespace

import mxnet as mx
import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from gluon_classics.training import fit
from gluon_classics.training.tensorboard import LR_TAG, SCALARS, TensorBoardLogger
from helpers import run_cli


def _scalars(folder):
    """{tag: {step: value}} from the one event file in ``folder``."""
    path, = folder.glob('events.out.tfevents.*')
    data, pos, scalars = path.read_bytes(), 0, {}
    while pos < len(data):  # a record: length (u64), its crc (u32), the bytes, their crc (u32)
        length, = struct.unpack('<Q', data[pos:pos + 8])
        event = Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def _matches(scalars, history, rates):
    assert set(scalars) == set(SCALARS.values()) | {LR_TAG}
    for key, tag in SCALARS.items():
        assert scalars[tag] == {r['epoch']: np.float32(r[key]) for r in history}, tag
    assert scalars[LR_TAG] == {e + 1: np.float32(rate) for e, rate in enumerate(rates)}


def test_fit_with_the_logger_writes_the_history_and_the_epochs_rate(tmp_path,
                                                                    fashion_mnist_dir):
    """Cosine schedule: the rate changes each epoch; the logged one is the one trained at."""
    with TensorBoardLogger(str(tmp_path / 'tb')) as logger:
        _, history = fit('lenet', epochs=3, num_examples=1500, seed=0, lr=0.05,
                         optimizer='momentum', schedule='cosine', ctx=mx.cpu(),
                         model_kwargs={'activation': 'relu'}, data_dir=fashion_mnist_dir,
                         callbacks=[logger], progress=False, log=lambda *a: None)
    assert len(history) == 3
    _matches(_scalars(tmp_path / 'tb'), history,
             [0.05 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)])




def test_cli_train_tensorboard_holds_the_metrics(tmp_path, capsys, fashion_mnist_dir,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(capsys, 'train', 'lenet', '--epochs', '2', '--num-examples', '1500',
                           '--seed', '0', '--metrics', 'm.json', '--tensorboard', 'runs/tb',
                           '--data-dir', fashion_mnist_dir)
    assert status == 0, err
    history = json.loads((tmp_path / 'm.json').read_text())
    _matches(_scalars(tmp_path / 'runs' / 'tb'), history, [0.9, 0.9])  # the chapter's SGD


def test_cli_refuses_a_file_as_tensorboard_folder_before_reading(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    status, _, err = run_cli(capsys, 'train', 'lenet', '--tensorboard', tmp_path / 'file',
                           '--data-dir', tmp_path / 'nowhere')
    assert status == 2
    assert err == f'gluon-classics: error: cannot write into --tensorboard {tmp_path / "file"}: ' \
                  f'it is not a folder; give a folder path\n'


@pytest.mark.parametrize('rank,files', [(1, 0), (0, 1)])
def test_only_rank_0_of_a_job_writes(tmp_path, rank, files):
    record = {'epoch': 1, 'loss': 0.5, 'train_acc': 0.8, 'test_acc': 0.7,
              'examples_per_sec': 1000.0, 'seconds': 1.0}
    trainer = SimpleNamespace(_kvstore=SimpleNamespace(rank=rank), learning_rate=0.1)
    with TensorBoardLogger(str(tmp_path)) as logger:
        assert logger(record, trainer) is False  # never stops training
    assert len(list(tmp_path.glob('events.out.tfevents.*'))) == files
