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
        """The table written by `save` (a `SegmentationTable` where it holds one)."""
        with np.load(path, allow_pickle=False) as data:
            kind = SegmentationTable if "intersection" in data else PredictionTable
            arrays = {f.name: data[f.name] for f in dataclasses.fields(kind) if f.name not in ("resolution", "meta")}
            return kind(resolution=int(data["resolution"]), meta=json.loads(str(data["meta"])), **arrays)


@dataclasses.dataclass
class SegmentationTable(PredictionTable):
    """A segmentation sweep's table at one resolution: per image, the pixels of each class
    predicted and labelled (intersection) and in either (union), scored at the label's own
    resolution (the predicted logits resized back to it; ignore-label pixels left out), the
    pixels scored and those right, and the mean over its pixels of the top probability (its
    confidence, a cascade's `top_probs[:, 0]`). `labels` and `top_ids` are zeros (a class map
    has no one label): every selector reads the statistics instead. No masks are kept.

    Attributes (besides `PredictionTable`'s):
      intersection, union: int64 (N, C) per-class pixel counts.
      pixel_correct, pixels: int64 (N,) pixels right and pixels scored.
    """

    intersection: np.ndarray = None
    union: np.ndarray = None
    pixel_correct: np.ndarray = None
    pixels: np.ndarray = None

    @property
    def num_classes(self):
        return self.intersection.shape[1]

    def miou(self, rows=None):
        """mIoU (%) over `rows` (default all): per-class intersection over union, each summed
        over the images, averaged over the classes whose union is not empty."""
        rows = slice(None) if rows is None else rows
        return mean_iou(self.intersection[rows].sum(axis=0), self.union[rows].sum(axis=0))

    def pixel_accuracy(self, rows=None):
        """Pixel accuracy (%) over `rows`: right pixels over scored pixels."""
        rows = slice(None) if rows is None else rows
        total = self.pixels[rows].sum()
        return 100.0 * float(self.pixel_correct[rows].sum()) / total if total else float("nan")

    def class_iou(self):
        """Per-class IoU (%) over every image (nan where a class is never predicted or labelled)."""
        i, u = self.intersection.sum(axis=0), self.union.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * i / u


def mean_iou(intersection, union):
    """mIoU (%) of summed per-class counts (..., C): classes with an empty union left out."""
    intersection, union = np.asarray(intersection, np.float64), np.asarray(union, np.float64)
    present = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, intersection / np.maximum(union, 1), 0.0)
    return 100.0 * iou.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


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

