"""reswise: how much compute a trained classifier saves, and how much accuracy it loses, at lower
input resolutions, and which resolution each image should get. No retraining.

The package is cut by the stages of the flow, each importing only those below it:

  utils, runtime              helpers: checks, atomic files, formatting; tf.distribute
  data, cost                  image sources and preprocessing; FLOPs and latency
  models                      registry, builders, loading, rescale, BatchNorm re-estimation
  evaluation, training        the sweep and its per-image cache; training from scratch
  selection                   per-image resolution selectors over the cache, deployable cascade
  report                      tables and figures from caches and rows
  workflows                   whole runs in one call: evaluate, run_reduce, run_study
"""

from reswise_tf import data, selection
from reswise_tf.cost import count_flops, count_macs
from reswise_tf.evaluation import PredictionTable, SweepCache, SweepConfig, load_tables, sweep
from reswise_tf.models import (
    ARCHITECTURES,
    ArchSpec,
    RescaleError,
    bn_statistics,
    get_arch,
    recalibrate_bn,
    register_arch,
    rescale,
    unregister_arch,
)
from reswise_tf.selection import CascadeClassifier, CascadeOutput, run_selection
from reswise_tf.workflows import Evaluation, evaluate

__all__ = [
    "ARCHITECTURES",
    "ArchSpec",
    "CascadeClassifier",
    "CascadeOutput",
    "Evaluation",
    "PredictionTable",
    "RescaleError",
    "SweepCache",
    "SweepConfig",
    "bn_statistics",
    "count_flops",
    "data",
    "count_macs",
    "evaluate",
    "get_arch",
    "load_tables",
    "recalibrate_bn",
    "register_arch",
    "rescale",
    "run_selection",
    "selection",
    "sweep",
    "unregister_arch",
]
