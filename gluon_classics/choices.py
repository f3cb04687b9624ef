"""A run's named choices, as data without MXNet: optimizers, schedules, compute types and
the fast path's modes.

The command line builds its options and their help from these (and from the model
registry, :data:`~gluon_classics.model_zoo.MODELS`), so ``gluon-classics train --help``
answers without importing MXNet; the library's modules export them where they are used
(``training.OPTIMIZERS``, ``accel.MODES``, ``accel.DTYPES``...).
"""

__all__ = ['OPTIMIZERS', 'SCHEDULES', 'DTYPES', 'ACCEL_MODES', 'ACCEL_ENV', 'EXPORT_FORMATS']

# name -> (what it is, gluon 'sgd' arguments besides the learning rate, its schedule
# unless the recipe or the caller names one).
OPTIMIZERS = {
    'sgd': ("the chapters' plain SGD", {}, 'none'),
    'momentum': ('momentum 0.9, weight decay 5e-4', dict(momentum=0.9, wd=5e-4), 'plateau'),
}

# The learning rate by epoch: name -> what it is.
SCHEDULES = {
    'none': 'constant',
    'plateau': 'lr / 10 when test accuracy stops improving',
    'cosine': 'cosine decay from lr towards 0 over the epochs',
}

# dtype -> what it means for training (gluon_classics.accel.bfloat16 says where it runs)
DTYPES = {
    'float32': 'the function as written (default)',
    'bfloat16': 'conv/dense/activation/pooling in bfloat16 on CPUs with bf16 instructions: '
                'faster for AlexNet on AMD Zen 4 and on Intel Xeon with AMX, slower on Intel '
                'Xeon without AMX and for LeNet (doctor says which); not the same numbers',
}

# The fast path's modes (gluon_classics.accel) and the variable that picks one.
ACCEL_MODES = {
    'on': "the rewritten graph, LeNet's conv blocks on our operators (default)",
    'graph': "the rewritten graph on MXNet's operators only",
    'off': 'the plain graph: net(X) and the loss, as written',
}
ACCEL_ENV = 'GLUON_CLASSICS_ACCEL'

# What `gluon-classics export` writes (gluon_classics.export): format -> what it is.
EXPORT_FORMATS = {
    'onnx': "ONNX, checked by ONNX Runtime (the 'export' extra: onnx, onnxruntime)",
    'mxnet': "MXNet's symbol + params (net.export), reloaded and checked",
}
