"""The evaluation stage: the one-pass multi-resolution sweep and its per-image prediction
cache (in a directory or in memory), distributed over any `tf.distribute` strategy."""

from reswise_tf.evaluation.predictions import PredictionTable, SweepCache
from reswise_tf.evaluation.resolution_sweep import SweepConfig, Variant, sweep, sweep_tables
from reswise_tf.evaluation.store import (
    DirectoryStore,
    MemoryStore,
    SweepMismatchError,
    load_tables,
    read_fingerprint,
    table_path,
)
from reswise_tf.evaluation.variants import BN_VARIANT, FLOAT32_VARIANT, bn_variant, float32_variant

__all__ = [
    "BN_VARIANT",
    "FLOAT32_VARIANT",
    "DirectoryStore",
    "MemoryStore",
    "PredictionTable",
    "SweepCache",
    "SweepConfig",
    "SweepMismatchError",
    "Variant",
    "bn_variant",
    "float32_variant",
    "load_tables",
    "read_fingerprint",
    "sweep",
    "sweep_tables",
    "table_path",
]
