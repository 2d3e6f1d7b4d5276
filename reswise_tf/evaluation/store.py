"""Where a sweep keeps its prediction cache: a directory (resumable, the command-line tools) or
memory (nothing written, for notebooks). Both have the same small interface, so the sweep does
not know which one it writes to.

A directory holds `predictions/res_<R>.npz` (one table per resolution), `predictions/sweep.json`
(the fingerprint: what model, data and settings produced the tables; a sweep of anything else
is refused, never mixed in) and, while a pass is under way, `predictions/partial.npz` (its
progress, so an interrupted pass goes on where it stopped). A variant (e.g. BatchNorm
re-estimated) keeps its own cache in a sub-folder: `child(name)`.
"""

import json
import os

import numpy as np

from reswise_tf.evaluation.predictions import PredictionTable
from reswise_tf.models.registry import ALIASES
from reswise_tf.utils.files import atomic_save_npz, atomic_write_text

# The layout of a cache directory, written here only.
PREDICTIONS = "predictions"
_FINGERPRINT = "sweep.json"
_PARTIAL = "partial.npz"


def cache_file(output_dir, name):
    """The path of the cache file `name` of the sweep in `output_dir`."""
    return os.path.join(output_dir, PREDICTIONS, name)


def table_path(output_dir, resolution):
    return cache_file(output_dir, f"res_{resolution}.npz")


def load_tables(output_dir):
    """Loads every cached table in `output_dir`, keyed by resolution."""
    folder = os.path.join(output_dir, PREDICTIONS)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No prediction cache in {folder!r}: run experiments.reduce first")
    tables = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("res_") and name.endswith(".npz"):
            table = PredictionTable.load(os.path.join(folder, name))
            tables[table.resolution] = table
    return tables


def read_fingerprint(output_dir):
    """The fingerprint (what model, data and settings) of the sweep in `output_dir`, or None."""
    path = cache_file(output_dir, _FINGERPRINT)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
# Names a fingerprint key had before, and settings it did not record yet (their value then):
# old caches are compared as today's fingerprint would describe them.
_RENAMED_KEYS = {"cache_k": "kept_classes"}
_CONFIG_DEFAULTS = {"precision": "float32"}


class SweepMismatchError(ValueError):
    """`output_dir` holds a sweep of another model, dataset or configuration."""


class DirectoryStore:
    """The cache in `path` (see the module docstring)."""

    def __init__(self, path):
        self.path = path

    def child(self, name):
        return DirectoryStore(os.path.join(self.path, name))

    def _file(self, name):
        return cache_file(self.path, name)

    def check_fingerprint(self, fingerprint):
        """Raises `SweepMismatchError` if the folder holds a sweep with another fingerprint."""
        if not os.path.exists(self._file(_FINGERPRINT)):
            return
        with open(self._file(_FINGERPRINT)) as f:
            previous = _renamed(json.load(f))
        if isinstance(previous.get("config"), dict):
            config = {**_CONFIG_DEFAULTS, **previous["config"]}
            if "native_resolution" in config:  # kept in the config by caches of earlier 0.1 versions
                previous.setdefault("native_resolution", config.pop("native_resolution"))
            previous["config"] = config
        if previous != json.loads(json.dumps(fingerprint)):
            raise SweepMismatchError(
                f"`output_dir` {self.path!r} holds predictions of another sweep "
                f"({json.dumps(previous, sort_keys=True)}); this one is "
                f"{json.dumps(fingerprint, sort_keys=True)}. Use another --output_dir or delete it."
            )

    def record_fingerprint(self, fingerprint):
        if not os.path.exists(self._file(_FINGERPRINT)):
            atomic_write_text(self._file(_FINGERPRINT), json.dumps(fingerprint, indent=2, sort_keys=True))

    def has(self, resolution):
        return os.path.exists(table_path(self.path, resolution))

    def save_table(self, table):
        table.save(table_path(self.path, table.resolution))

    def load_table(self, resolution):
        return PredictionTable.load(table_path(self.path, resolution))

    def save_partial(self, arrays):
        atomic_save_npz(self._file(_PARTIAL), arrays)

    def load_partial(self):
        """The arrays of an interrupted pass, or None."""
        if not os.path.exists(self._file(_PARTIAL)):
            return None
        with np.load(self._file(_PARTIAL)) as saved:
            return {k: saved[k] for k in saved.files}

    def clear_partial(self):
        if os.path.exists(self._file(_PARTIAL)):
            os.remove(self._file(_PARTIAL))


class MemoryStore:
    """The cache in memory: nothing is read from or written to disk."""

    def __init__(self):
        self.tables = {}
        self.fingerprint = None

    def child(self, name):
        del name
        return MemoryStore()

    def check_fingerprint(self, fingerprint):
        del fingerprint

    def record_fingerprint(self, fingerprint):
        self.fingerprint = fingerprint

    def has(self, resolution):
        return resolution in self.tables

    def save_table(self, table):
        self.tables[table.resolution] = table

    def load_table(self, resolution):
        return self.tables[resolution]

    def save_partial(self, arrays):
        del arrays

    def load_partial(self):
        return None

    def clear_partial(self):
        pass


def _renamed(fingerprint):
    """An earlier fingerprint in today's names (keys renamed, architecture aliases resolved)."""
    if isinstance(fingerprint, dict):
        return {_RENAMED_KEYS.get(k, k): ALIASES.get(v, v) if k == "arch" and isinstance(v, str) else _renamed(v)
                for k, v in fingerprint.items()}
    return fingerprint
