"""The benchmarks' shared pieces (benchmarks/): one data reader for every peer, the d2l
peer's loader being d2l's own, the LeNet benchmark's last line (no timing), and the one
entry point."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.bench_lenet import last_line
from benchmarks.common import read_fashion_mnist
from benchmarks.d2l_peer import book_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_pytorch_side_reads_the_data_without_loading_mxnet(fashion_mnist_dir):
    # Two OpenMP runtimes in one process: the PyTorch peers must never import MXNet.
    code = ('import sys\nfrom benchmarks import common, gemm, torch_peer\n'
            f'(x, y), (tx, ty) = common.read_fashion_mnist({fashion_mnist_dir!r}, 700)\n'
            'print(x.shape, x.dtype, y.dtype, tx.shape, "mxnet" in sys.modules)')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ['(700,', '1,', '28,', '28)', 'uint8', 'int32',
                                  '(10000,', '1,', '28,', '28)', 'False']


def test_num_examples_are_array_loaders_subset_for_every_peer(fashion_mnist_dir):
    from gluon_classics import load_data_fashion_mnist, mx
    (x, y), _ = read_fashion_mnist(fashion_mnist_dir, 300)
    train_iter, _ = load_data_fashion_mnist(100, root=fashion_mnist_dir, ctx=mx.cpu())
    ours = train_iter.subset(300, seed=0)

    def examples(images, labels):  # the same examples, in any order
        return sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels))
    assert examples(ours.images, ours.labels) == examples(x, y)
    assert examples(x, y) != examples(*[a[:300] for a in read_fashion_mnist(
        fashion_mnist_dir)[0]])  # not simply the first 300


def test_a_missing_data_folder_is_one_line_naming_the_option(tmp_path):
    with pytest.raises(SystemExit, match=r'train-images-idx3-ubyte\[\.gz\] not found in .*'
                                         r'--data-dir'):
        read_fashion_mnist(str(tmp_path))


def test_the_d2l_peer_runs_d2ls_own_loader_over_the_local_files(fashion_mnist_dir):
    from d2l import mxnet as d2l
    from mxnet import gluon
    original = gluon.data.vision.FashionMNIST
    with book_data(fashion_mnist_dir, workers=0, num_examples=300) as load:
        assert load is d2l.load_data_fashion_mnist  # d2l 1.0.3's code, not a copy
        train_iter, test_iter = load(64, resize=32)
        assert d2l.get_dataloader_workers() == 0
    assert gluon.data.vision.FashionMNIST is original  # put back on leaving
    assert d2l.get_dataloader_workers() == 4
    X, y = next(iter(train_iter))
    assert X.shape == (64, 1, 32, 32) and X.dtype == np.float32 and y.dtype == np.int32
    assert 0 <= X.min().asscalar() and X.max().asscalar() <= 1  # ToTensor's scaling
    assert len(train_iter._dataset) == 300 and len(test_iter._dataset) == 10000


def test_lenet_last_line_keeps_its_format():
    line = last_line({'ours': 300.0, 'd2l': 100.0, 'ours-mxnet-ops': 200.0})
    assert line == ('speedup_vs_d2l=3.00 speedup_vs_torch=n/a speedup_vs_torch_compile=n/a '
                    'onednn_vs_plain=n/a kernel_vs_mxnet_ops=1.50')
    assert last_line({'d2l': 1.0}).count('=n/a') == 5


def test_bench_lenet_still_ends_with_its_ratio_line(fashion_mnist_dir):
    run = subprocess.run([sys.executable, '-m', 'benchmarks.bench_lenet', '--peers', 'ours',
                          '--epochs', '1', '--num-examples', '512',
                          '--data-dir', fashion_mnist_dir],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert re.fullmatch(r'speedup_vs_d2l=n/a speedup_vs_torch=n/a speedup_vs_torch_compile=n/a '
                        r'onednn_vs_plain=n/a kernel_vs_mxnet_ops=n/a', lines[-1]), lines[-5:]
    assert any(line.startswith('gluon_classics train_ch5') for line in lines)


def test_the_entry_point_names_its_modes_and_refuses_others():
    def run(*argv):
        return subprocess.run([sys.executable, '-m', 'benchmarks', *argv], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
    helped, unknown = run('--help'), run('profile-lenet')
    assert helped.returncode == 0 and 'article-chart' in helped.stdout
    assert unknown.returncode == 2 and unknown.stderr.splitlines()[-1] == (
        "python -m benchmarks: unknown mode 'profile-lenet': choose from lenet, alexnet, chart, "
        "article-chart")
    assert run('chart', '--help').stdout.startswith('usage: python -m benchmarks chart')
