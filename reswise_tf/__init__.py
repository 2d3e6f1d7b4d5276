"""reswise: how much compute a trained CNN saves, and how much accuracy it loses, at lower input
resolutions, and which resolution each image should get. No retraining."""

from reswise_tf import selectors
from reswise_tf.architectures import ARCHITECTURES, ArchSpec, get_arch
from reswise_tf.batchnorm import bn_statistics, recalibrate_bn
from reswise_tf.cascade_classifier import CascadeClassifier, CascadeOutput
from reswise_tf.flops import count_flops, count_macs
from reswise_tf.predictions import PredictionTable, load_tables
from reswise_tf.rescale import RescaleError, rescale
from reswise_tf.sweep import SweepConfig, sweep

__all__ = [
    "ARCHITECTURES",
    "ArchSpec",
    "CascadeClassifier",
    "CascadeOutput",
    "PredictionTable",
    "RescaleError",
    "SweepConfig",
    "bn_statistics",
    "count_flops",
    "count_macs",
    "get_arch",
    "load_tables",
    "recalibrate_bn",
    "rescale",
    "selectors",
    "sweep",
]
