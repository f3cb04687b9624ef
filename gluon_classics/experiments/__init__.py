"""The LeNet chapter's exercises as experiments: ablations and feature maps."""
from .. import _backend  # noqa: F401  (MXNet through its checks, first)
from .ablation import (ABLATION_LR, ABLATIONS, RESULT_FILES, ablate, lenet_options,
                       results_table)
from .ablation import VARIANT_LR, VARIANTS  # noqa: F401  (the old names of the two above)
from .features import REPORT_FILES, activation_stats, feature_maps, write_feature_report

__all__ = ['ablate', 'ABLATIONS', 'ABLATION_LR', 'lenet_options', 'results_table', 'RESULT_FILES',
           'feature_maps', 'activation_stats', 'write_feature_report', 'REPORT_FILES']
