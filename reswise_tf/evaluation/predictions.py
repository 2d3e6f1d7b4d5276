"""The per-image prediction cache: one `PredictionTable` per resolution of a sweep, and the
`SweepCache` that holds the tables of one sweep together.

Everything downstream (accuracy tables, per-image resolution selectors, figures) reads these
tables; no model is run again. Files are written atomically, so an interrupted sweep leaves
either a complete table or none.
"""

import dataclasses
import json

import numpy as np

from reswise_tf.utils.checks import check_positive_int
from reswise_tf.utils.files import atomic_save_npz


@dataclasses.dataclass
class PredictionTable:
    """Predictions of one model at one resolution, one row per image, sorted by `index`.

    Attributes:
      resolution: input size in pixels.
      index: int64 (N,), position of each image in the evaluated dataset.
      labels: int64 (N,), true class ids.
      top_ids: int32 (N, K), class ids by decreasing probability (K: the kept classes).
      top_probs: float32 (N, K), their softmax probabilities.
      meta: JSON-serialisable facts (MACs, seconds of forward time, native resolution).
    """

    resolution: int
    index: np.ndarray
    labels: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.labels)

    @property
    def kept_classes(self):
        """Classes kept per image (the K of `top_ids`)."""
        return self.top_ids.shape[1]

    def correct(self, k=1):
        """Boolean (N,): whether the label is among the top-`k` predictions."""
        if k > self.kept_classes:
            raise ValueError(
                f"`k` should be at most {self.kept_classes} (classes kept in the cache). Received k={k}"
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


class SweepCache:
    """The prediction tables of one sweep, checked to describe the same images in the same order.

    Args:
      tables: {resolution: PredictionTable}, as `load_tables` returns.

    Attributes:
      resolutions: all resolutions, highest first.
      native: the native resolution (`meta['native_resolution']`, else the largest).
      labels: int64 (N,) true classes; `index`: int64 (N,) dataset positions.
      macs: {resolution: MACs per image}.
      kept_classes: classes kept per image in the cache.
    """

    def __init__(self, tables):
        if not tables:
            raise ValueError("No prediction tables: the sweep cache is empty")
        self.tables = dict(tables)
        self.resolutions = tuple(sorted(self.tables, reverse=True))
        first = self.tables[self.resolutions[0]]
        self.index, self.labels = first.index, first.labels
        for r, t in self.tables.items():
            if len(t) != len(first) or not (
                np.array_equal(t.index, first.index) and np.array_equal(t.labels, first.labels)
            ):
                raise ValueError(
                    f"The table at resolution {r} does not describe the same images (index and "
                    f"labels, in the same order) as the table at {self.resolutions[0]}: the tables "
                    "are not from one sweep"
                )
            if "macs" not in t.meta:
                raise ValueError(f"The table at resolution {r} has no meta['macs']")
        self.macs = {r: float(t.meta["macs"]) for r, t in self.tables.items()}
        self.native = self._native()
        self.kept_classes = first.kept_classes
        self._correct = {}

    def _native(self):
        natives = {t.meta.get("native_resolution") for t in self.tables.values()} - {None}
        if len(natives) > 1:
            raise ValueError(f"The tables disagree on the native resolution: {sorted(natives)}")
        native = natives.pop() if natives else self.resolutions[0]
        if native not in self.tables:
            raise ValueError(
                f"The native resolution {native} is not among the cached ones: {list(self.resolutions)}"
            )
        return native

    def __len__(self):
        return len(self.labels)

    def effective_topk(self, topk):
        """The k of every top-k column: `topk`, lowered to the classes kept in the cache when
        fewer are kept (a 2-class model's "top-5" is its top-2, and its column says so)."""
        check_positive_int(topk, "topk")
        return min(topk, self.kept_classes)

    def correct(self, resolution, k=1):
        """Boolean (N,): whether the label is in the top-`k` at `resolution` (memoised)."""
        key = (resolution, k)
        if key not in self._correct:
            self._correct[key] = self.tables[resolution].correct(k)
        return self._correct[key]

    def top_probs(self, resolution):
        return self.tables[resolution].top_probs

    def check_resolutions(self, resolutions, arg):
        """Raises ValueError naming `arg` unless every resolution is cached."""
        missing = [r for r in resolutions if r not in self.tables]
        if missing or not resolutions:
            raise ValueError(
                f"`{arg}` should be cached resolutions of this sweep: "
                f"{', '.join(map(str, self.resolutions))}. Received {arg}={list(resolutions)}"
            )
