"""try_gpu's probe with the device query faked, the fatbinary reader, and doctor's report."""
import json
import shutil
import struct
import warnings

import mxnet as mx
import pytest

from gluon_classics import doctor
from gluon_classics.cli import main
from gluon_classics import devices
from gluon_classics.utils import cuda
from helpers import elf

# what libmxnet.so of mxnet-cu112 1.9.1 carries (python gluon_classics/utils/cuda.py on it)
CU112_TARGETS = frozenset({'sm_50', 'sm_60', 'sm_70', 'sm_80', 'sm_86'})
A100 = dict(name='NVIDIA A100-SXM4-40GB', capability=(8, 0), memory=40 << 30)
RTX4090 = dict(name='NVIDIA GeForce RTX 4090', capability=(8, 9), memory=24 << 30)
H100 = dict(name='NVIDIA H100 80GB HBM3', capability=(9, 0), memory=80 << 30)


@pytest.fixture
def fake_gpus(monkeypatch):
    """Make ``devices`` see a CUDA build with the given GPUs; returns the tiny-op call log."""
    calls = []

    def install(gpus, targets=CU112_TARGETS, op_error=None):
        monkeypatch.setattr(devices, '_cuda_build', lambda: True)
        monkeypatch.setattr(mx.context, 'num_gpus', lambda: len(gpus))
        monkeypatch.setattr(devices, '_gpus', lambda: {
            i: dict(g, index=i) for i, g in enumerate(gpus)})
        monkeypatch.setattr(devices, '_kernel_targets', lambda: targets)

        def run(i):
            calls.append(i)
            if op_error:
                raise mx.base.MXNetError(op_error)
        monkeypatch.setattr(devices, '_run_tiny_op', run)
        return calls
    monkeypatch.setattr(devices, '_VERDICTS', {})
    monkeypatch.setattr(devices, '_WARNED', set())
    return install


def _no_warnings(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        return fn(*args)


def test_usable_gpu_is_probed_once(fake_gpus):
    calls = fake_gpus([A100])
    assert _no_warnings(devices.try_gpu) == mx.gpu(0)
    assert _no_warnings(devices.try_all_gpus) == [mx.gpu(0)]
    assert devices.parse_ctx('gpu:0') == mx.gpu(0)
    assert calls == [0]  # one tiny operator per device per process


def test_newer_minor_of_a_built_architecture_is_usable(fake_gpus):
    calls = fake_gpus([RTX4090])  # sm_89 runs the sm_86 cubins
    assert _no_warnings(devices.try_gpu) == mx.gpu(0) and calls == [0]


def test_architecture_without_kernels_falls_back_with_one_warning(fake_gpus):
    calls = fake_gpus([H100])
    with pytest.warns(UserWarning) as record:
        assert devices.try_gpu() == mx.cpu()
    message = str(record[0].message)
    assert len(record) == 1 and '\n' not in message
    assert 'GPU 0 (NVIDIA H100 80GB HBM3, compute capability 9.0)' in message
    assert 'no kernels for sm_90' in message and 'no PTX' in message and 'using the CPU' in message
    assert calls == []  # no kernel launched on a GPU that cannot run it
    assert _no_warnings(devices.try_gpu) == mx.cpu()  # warned once per process
    assert _no_warnings(devices.try_all_gpus) == [mx.cpu()]


def test_explicit_unusable_gpu_is_an_error(fake_gpus):
    fake_gpus([H100])
    with pytest.raises(devices.DeviceError,
                       match=r"GPU 0 \(NVIDIA H100.*compute capability 9\.0\) is not usable by "
                             r"MXNet: this MXNet build has no kernels for sm_90"):
        devices.parse_ctx('gpu:0')


def test_cli_ctx_on_unusable_gpu_is_one_line(fake_gpus, capsys):
    fake_gpus([H100])
    with pytest.raises(SystemExit) as exit_:
        main(['train', 'lenet', '--ctx', 'gpu:0'])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count('\n') == 1
    assert err.startswith('gluon-classics: error: ') and 'sm_90' in err and '--ctx cpu' in err


def test_ptx_lets_newer_architectures_run(fake_gpus):
    calls = fake_gpus([H100], targets=CU112_TARGETS | {'compute_86'})
    assert _no_warnings(devices.try_gpu) == mx.gpu(0) and calls == [0]


def test_failing_tiny_op_falls_back_with_its_first_line(fake_gpus):
    fake_gpus([A100], op_error='[12:00:00] src/x.cu:1: CUDA: out of memory\nStack trace:\n  ...')
    with pytest.warns(UserWarning, match=r'GPU 0 \(NVIDIA A100.*\) is not usable by MXNet: '
                                         r'CUDA: out of memory; using the CPU$'):
        assert devices.try_gpu() == mx.cpu()


def test_mixed_gpus_keep_the_usable_ones(fake_gpus):
    fake_gpus([A100, H100])
    with pytest.warns(UserWarning, match=r'GPU 1 \(NVIDIA H100.*leaving it out') as record:
        assert devices.try_all_gpus() == [mx.gpu(0)]
    assert len(record) == 1 and 'GPU 0' not in str(record[0].message)
    with pytest.raises(devices.DeviceError, match='GPU 1'):
        devices.parse_ctx('gpu:0,1')


def test_cuda_build_without_gpus_is_silent(fake_gpus):
    calls = fake_gpus([])
    assert _no_warnings(devices.try_gpu) == mx.cpu()
    assert _no_warnings(devices.try_all_gpus) == [mx.cpu()]
    with pytest.raises(devices.DeviceError, match='asks for GPU 0 but 0 GPU'):
        devices.parse_ctx('gpu:0')
    assert calls == []


def test_cpu_build_asks_nothing(monkeypatch):
    """The CPU build neither counts GPUs (MXNet raises there) nor probes: silent CPU."""
    monkeypatch.setattr(devices, '_cuda_build', lambda: False)

    def forbidden(*args):
        raise AssertionError('GPU query on the CPU build')
    for name in ('_gpus', '_kernel_targets', '_run_tiny_op'):
        monkeypatch.setattr(devices, name, forbidden)
    monkeypatch.setattr(mx.context, 'num_gpus', forbidden)
    assert _no_warnings(devices.try_gpu) == mx.cpu()
    assert _no_warnings(devices.try_all_gpus) == [mx.cpu()]


@pytest.mark.parametrize('targets,capability,runs', [
    ({'sm_86'}, (8, 9), True), ({'sm_86'}, (8, 0), False), ({'sm_80'}, (8, 6), True),
    (CU112_TARGETS, (9, 0), False), (CU112_TARGETS, (7, 5), True), ({'sm_70'}, (6, 1), False),
    ({'compute_70'}, (9, 0), True), ({'compute_90'}, (8, 6), False), (CU112_TARGETS, (5, 2), True),
])
def test_runs_on(targets, capability, runs):
    assert cuda.runs_on(targets, capability) is runs


def _fatbin(images):
    """One fatbinary container holding ``(kind, arch, payload)`` images (kind 1 PTX, 2 cubin)."""
    entries = b''.join(struct.pack('<HHIQIIHHI', kind, 0x101, 64, len(payload), 0, 0, 0, 0,
                                   arch).ljust(64, b'\0') + payload
                       for kind, arch, payload in images)
    return struct.pack('<IHHQ', 0xBA55ED50, 1, 16, len(entries)) + entries


def test_kernel_images_and_needed_libraries(tmp_path):
    fatbin = (_fatbin([(2, 50, b'x' * 24), (2, 86, b'y' * 40)]) + b'\0' * 8  # padding
              + _fatbin([(2, 80, b'z' * 8), (1, 80, b'.version 7.2' + b'\0' * 4)]))
    dynstr = b'\0libcudart.so.11.0\0libc.so.6\0'
    dynamic = struct.pack('<qQqQqQqQ', 1, 1, 1, 19, 5, 0, 0, 0)  # NEEDED, NEEDED, STRTAB, NULL
    lib = elf(tmp_path / 'libfake.so', {'.nv_fatbin': fatbin, '.dynstr': dynstr,
                                         '.dynamic': dynamic})
    fatbins, images = cuda.kernel_images(lib)
    assert fatbins == 2 and images == {'sm_50': 1, 'sm_86': 1, 'sm_80': 1, 'compute_80': 1}
    assert cuda.needed_libraries(lib) == ['libcudart.so.11.0', 'libc.so.6']


def test_installed_mxnet_kernel_images_match_its_build():
    """The CPU build (CI's) has no fatbinaries and needs no CUDA runtime; a CUDA build both."""
    library, cuda_build = mx.base._LIB._name, mx.runtime.Features().is_enabled('CUDA')
    fatbins, images = cuda.kernel_images(library)
    assert (fatbins > 0) is cuda_build and bool(images) is cuda_build
    assert 'libopenblas.so.0' in cuda.needed_libraries(library)
    assert any(n.startswith('libcudart') for n in cuda.needed_libraries(library)) is cuda_build
    assert devices._cuda_build() is cuda_build


def _fake_wheel(root, package, filename, source):
    folder = root / 'nvidia' / package / 'lib'
    folder.mkdir(parents=True)
    shutil.copy(source, folder / filename)
    return str(folder / filename)


def test_preload_loads_needed_libraries_from_the_wheels(tmp_path, monkeypatch):
    # libgfortran.so.3, which the CPU libmxnet.so needs, stands in for a CUDA library
    source = mx.base._LIB._name.replace('libmxnet.so', 'libgfortran.so.3')
    path = _fake_wheel(tmp_path, 'fortran', 'libgfortran.so.3', source)
    _fake_wheel(tmp_path, 'unneeded', 'libunneeded.so.1', source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert set(cuda.nvidia_wheel_libraries()) == {'libgfortran.so.3', 'libunneeded.so.1'}
    assert cuda.preload(mx.base._LIB._name) == [path]
    with open('/proc/self/maps') as f:
        assert path in f.read()


def test_doctor_report_on_this_machine(fashion_mnist_dir):
    facts = doctor.report(fashion_mnist_dir)
    cuda_build = mx.runtime.Features().is_enabled('CUDA')
    assert facts['mxnet']['version'] == mx.__version__
    assert facts['mxnet']['features']['CUDA'] is cuda_build
    assert bool(facts['mxnet']['kernels']) is cuda_build
    assert facts['fashion_mnist']['folder'] == fashion_mnist_dir
    assert all(facts['fashion_mnist']['files'].values())
    lines = doctor.format_report(facts)
    assert f'mxnet: {mx.__version__} ({mx.base._LIB._name})' in lines
    features = mx.runtime.Features()
    assert ('mxnet features: ' + ', '.join(
        f"{k} {'yes' if features.is_enabled(k) else 'no'}" for k in doctor.FEATURES)) in lines
    with open('/proc/cpuinfo') as f:
        flags = next(line for line in f if line.startswith('flags')).split()
    isa, = [line for line in lines if line.startswith('cpu ISA: ')]
    assert f"AVX-512F {'yes' if 'avx512f' in flags else 'no'}" in isa
    assert f"AVX512_BF16 {'yes' if 'avx512_bf16' in flags else 'no'}" in isa
    assert not any('Fashion-MNIST' in hint for hint in facts['hints'])
    from gluon_classics.accel import build, kernels
    assert f"own CPU kernels (LeNet's conv blocks): {kernels.describe()}" in lines


def test_doctor_says_when_there_is_no_compiler(monkeypatch, fashion_mnist_dir):
    from gluon_classics.accel import build, kernels
    monkeypatch.setattr(kernels, '_state', {})  # as in a process that has not loaded them
    monkeypatch.setenv('CXX', 'no-such-compiler')
    facts = doctor.report(fashion_mnist_dir)
    # CXX is set: the status names what was tried (issue 35, 10)
    assert facts['cpu_kernels'] == ("off: no C++ compiler: CXX='no-such-compiler' is not found "
                                    "(install it, or unset CXX to use g++)")
    assert any(hint.startswith('no C++ compiler: ') and hint.endswith('install it or unset CXX '
                                                                       'for our kernels')
               for hint in facts['hints'])


def test_doctor_hints_when_the_kernel_cache_is_unusable(monkeypatch, fashion_mnist_dir, tmp_path):
    from gluon_classics.accel import kernels
    monkeypatch.setattr(kernels, '_state', {})
    (tmp_path / 'file').write_text('not a folder')
    monkeypatch.setenv('GLUON_CLASSICS_CACHE', str(tmp_path / 'file'))
    facts = doctor.report(fashion_mnist_dir)
    assert facts['cpu_kernels'].startswith(f'off: the cache folder {tmp_path / "file"} is not '
                                           f'a folder'), facts['cpu_kernels']
    assert [h for h in facts['hints'] if h.startswith('our LeNet kernels are off: the cache '
                                                      'folder')], facts['hints']


def test_doctor_hints(tmp_path, monkeypatch, fake_gpus):
    fake_gpus([H100])
    monkeypatch.setattr(doctor.mx.runtime, 'Features', lambda: _Features(CUDA=True))
    monkeypatch.setattr(cuda, 'kernel_images', lambda path: (198, dict.fromkeys(CU112_TARGETS)))
    monkeypatch.setattr(cuda, 'gpus', lambda: [dict(H100, index=0)])
    monkeypatch.setattr(doctor.kernels, 'describe', lambda: 'on (test)')  # its own hint: below
    facts = doctor.report(str(tmp_path))
    gpu, = facts['gpus']
    assert gpu['capability'] == '9.0' and gpu['memory_gib'] == 80.0 and not gpu['usable']
    assert 'no kernels for sm_90' in gpu['reason']
    lines = doctor.format_report(facts)
    assert 'mxnet GPU kernels: sm_50, sm_60, sm_70, sm_80, sm_86 (no PTX)' in lines
    assert any(line.startswith('gpu 0: NVIDIA H100 80GB HBM3, compute capability 9.0, 80.0 GiB, '
                               'not usable: this MXNet build has no kernels') for line in lines)
    hints = [line for line in lines if line.startswith('hint: ')]
    assert len(hints) == 2 and 'GPU 0 is not usable by this MXNet' in hints[0]
    assert 'train-images-idx3-ubyte' in hints[1] and str(tmp_path) in hints[1]


class _Features:
    def __init__(self, **enabled):
        self.enabled = enabled

    def is_enabled(self, name):
        return self.enabled.get(name, False)


def test_doctor_cli_text_and_json(capsys, fashion_mnist_dir):
    assert main(['doctor', '--data-dir', fashion_mnist_dir]) == 0
    text = capsys.readouterr().out
    assert f'mxnet: {mx.__version__}' in text and 'cpu ISA: AVX2' in text
    assert main(['doctor', '--json', '--data-dir', fashion_mnist_dir]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts['mxnet']['version'] == mx.__version__
    assert set(facts['mxnet']['features']) == set(doctor.FEATURES)
    assert facts['fashion_mnist']['folder'] == fashion_mnist_dir
