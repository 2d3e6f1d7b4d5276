"""The evaluation stage: the one-pass multi-resolution sweep and its per-image prediction
cache (in a directory or in memory), distributed over any `tf.distribute` strategy.

The prediction tables (`predictions`) are numpy only; the names that need TensorFlow are
imported on first use, so that reading a cache (the selection stage) does not start it.
"""

import importlib

from reswise_tf.evaluation.predictions import PredictionTable, SweepCache  # noqa: F401 (in __all__)

_EXPORTS = {
    "BN_VARIANT": "variants",
    "FLOAT32_VARIANT": "variants",
    "bn_variant": "variants",
    "float32_variant": "variants",
    "DirectoryStore": "store",
    "MemoryStore": "store",
    "SweepMismatchError": "store",
    "load_tables": "store",
    "read_fingerprint": "store",
    "table_path": "store",
    "SweepConfig": "resolution_sweep",
    "Variant": "resolution_sweep",
    "sweep": "resolution_sweep",
    "sweep_tables": "resolution_sweep",
}

__all__ = sorted([*_EXPORTS, "PredictionTable", "SweepCache"])


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"reswise_tf.evaluation.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reswise_tf.evaluation' has no attribute {name!r}")
