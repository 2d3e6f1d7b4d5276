"""The per-image prediction cache: one `PredictionTable` per resolution of a sweep.

Everything downstream (accuracy tables, per-image resolution selectors, figures) reads these
tables; no model is run again. Files are written atomically (temporary file, then rename), so an
interrupted sweep leaves either a complete table or none.
"""

import dataclasses
import json
import os
import tempfile

import numpy as np


@dataclasses.dataclass
class PredictionTable:
    """Predictions of one model at one resolution, one row per image, sorted by `index`.

    Attributes:
      resolution: input size in pixels.
      index: int64 (N,), position of each image in the evaluated dataset.
      labels: int64 (N,), true class ids.
      top_ids: int32 (N, K), class ids by decreasing probability.
      top_probs: float32 (N, K), their softmax probabilities.
      meta: JSON-serialisable facts (MACs, seconds of forward time, configuration).
    """

    resolution: int
    index: np.ndarray
    labels: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.labels)

    def correct(self, k=1):
        """Boolean (N,): whether the label is among the top-`k` predictions."""
        if k > self.top_ids.shape[1]:
            raise ValueError(
                f"`k` should be at most {self.top_ids.shape[1]} (classes kept in the cache). "
                f"Received k={k}"
            )
        return np.any(self.top_ids[:, :k] == self.labels[:, None], axis=1)

    def accuracy(self, k=1):
        """Top-`k` accuracy in percent."""
        return 100.0 * float(np.mean(self.correct(k))) if len(self) else float("nan")

    def save(self, path):
        """Writes the table to `path` (.npz) atomically."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        arrays["meta"] = np.array(json.dumps(self.meta))
        arrays["resolution"] = np.array(self.resolution)
        atomic_save_npz(path, arrays)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            return cls(
                resolution=int(data["resolution"]),
                index=data["index"],
                labels=data["labels"],
                top_ids=data["top_ids"],
                top_probs=data["top_probs"],
                meta=json.loads(str(data["meta"])),
            )


def _umask_mode():
    """0o666 less the process umask: the mode `open()` would give a new file (mkstemp's 0o600
    would make results unreadable to other users)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path, write, binary):
    """Writes `path` via `write(file)` on a temporary file in the same folder, then a rename:
    readers see the old file or the whole new one, never a part."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_npz(path, arrays):
    """Saves `arrays` to `path` (.npz) atomically."""
    _atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically."""
    _atomic_write(path, lambda f: f.write(text), binary=False)


def table_path(output_dir, resolution):
    return os.path.join(output_dir, "predictions", f"res_{resolution}.npz")


def load_tables(output_dir):
    """Loads every cached table in `output_dir`, keyed by resolution."""
    folder = os.path.join(output_dir, "predictions")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No prediction cache in {folder!r}: run experiments.reduce first")
    tables = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("res_") and name.endswith(".npz"):
            table = PredictionTable.load(os.path.join(folder, name))
            tables[table.resolution] = table
    return tables
