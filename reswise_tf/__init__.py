"""reswise: how much compute a trained classifier saves, and how much accuracy it loses, at lower
input resolutions, and which resolution (and which model) each image should get. No retraining.

The package is cut by the stages of the flow, each importing only those below it:

  utils, runtime              helpers: checks, atomic files, formatting, units; tf.distribute
  data, cost                  image sources and preprocessing; FLOPs and latency
  models                      registry, builders, loading, rescale, BatchNorm re-estimation
  evaluation, training        the sweep and its per-image cache; training from scratch
  selection                   per-image selectors over caches (numpy only)
  report, deploy              tables and figures from caches and rows; the deployable cascade
  workflows                   whole runs in one call: evaluate, run_reduce, run_study, select, deploy_cascade

The names below are imported on first use, so that `import reswise_tf.selection` (numpy over
caches) does not start TensorFlow.
"""

import importlib

_EXPORTS = {
    "ARCHITECTURES": "reswise_tf.models",
    "ArchSpec": "reswise_tf.models",
    "CascadeClassifier": "reswise_tf.deploy",
    "CascadeOutput": "reswise_tf.deploy",
    "Evaluation": "reswise_tf.workflows",
    "PredictionTable": "reswise_tf.evaluation",
    "RescaleError": "reswise_tf.models",
    "StagePool": "reswise_tf.selection",
    "SweepCache": "reswise_tf.evaluation",
    "SweepConfig": "reswise_tf.evaluation",
    "bn_statistics": "reswise_tf.models",
    "count_flops": "reswise_tf.cost",
    "count_macs": "reswise_tf.cost",
    "evaluate": "reswise_tf.workflows",
    "get_arch": "reswise_tf.models",
    "load_tables": "reswise_tf.evaluation",
    "recalibrate_bn": "reswise_tf.models",
    "register_arch": "reswise_tf.models",
    "rescale": "reswise_tf.models",
    "run_selection": "reswise_tf.selection",
    "select": "reswise_tf.workflows",
    "deploy_cascade": "reswise_tf.workflows",
    "sweep": "reswise_tf.evaluation",
    "unregister_arch": "reswise_tf.models",
}
_STAGES = ("cost", "data", "deploy", "evaluation", "models", "report", "runtime", "selection", "training", "utils",
           "workflows")

__all__ = sorted([*_EXPORTS, "data", "selection"])


def __getattr__(name):
    if name in _STAGES:
        return importlib.import_module(f"reswise_tf.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reswise_tf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_STAGES])
