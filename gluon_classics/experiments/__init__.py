"""The LeNet chapter's exercises as experiments: ablations and feature maps."""
from .ablation import VARIANT_LR, VARIANTS, ablate, lenet_options, results_table
from .features import activation_stats, feature_maps, write_feature_report

__all__ = ['ablate', 'VARIANTS', 'VARIANT_LR', 'lenet_options', 'results_table',
           'feature_maps', 'activation_stats', 'write_feature_report']
