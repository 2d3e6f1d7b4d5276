"""What every selector shares: the `Part` of the sweep cache it reports on, the per-image
`Selection` it makes, the `SelectionResult` row that is summarised into, and the
calibration/evaluation split.

A selector picks, for every image, the resolution whose cached prediction is used and counts the
MACs spent on the image (a cascade pays for every pass that ran). Units: `macs` are
multiply-accumulates per image, FLOPs = 2 x MACs, accuracies are percent, drops are percentage
points lost against the native resolution on the same images (positive = worse than native),
`flops_drop_pct` is the percent of the native FLOPs saved.
"""

import dataclasses

import numpy as np

from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.utils.checks import check_fraction
from reswise_tf.utils.units import flops_drop_pct


@dataclasses.dataclass(frozen=True)
class Part:
    """The images a selector reports on, and what it may fit on.

    Attributes:
      cache: the `SweepCache` of the sweep.
      rows: int (n,) rows of the cache to report on.
      name: "all" or "evaluation" (the `part` column).
      topk: the k of the second accuracy column (already lowered to the kept classes).
      calibration: int rows a selector may be fitted on (disjoint from `rows`), or None.
      progress: `fn(done, total)` a long selector reports its progress to, or None.
    """

    cache: SweepCache
    rows: np.ndarray
    name: str = "all"
    topk: int = 5
    calibration: np.ndarray | None = None
    progress: object = None

    @classmethod
    def all_images(cls, cache, topk=5):
        """Every image of `cache`, no calibration part."""
        return cls(cache, np.arange(len(cache)), "all", cache.effective_topk(topk))

    def summarize(self, selections, *, selector, setting, deployable=True):
        """The `SelectionResult` of `selections` (one, or several random trials) on this part."""
        return summarize(self.cache, selections, selector=selector, setting=setting, part=self.name,
                         topk=self.topk, deployable=deployable)


@dataclasses.dataclass
class Selection:
    """Per-image outcome of a selector on some rows of the cache.

    Attributes:
      rows: int (n,) rows of the cache (images) the selection covers.
      chosen: int (n,) resolution whose cached prediction is used for each image.
      macs: float (n,) MACs spent on each image (every pass that ran).
    """

    rows: np.ndarray
    chosen: np.ndarray
    macs: np.ndarray

    def correct(self, cache, k=1):
        """Boolean (n,): whether each image's chosen prediction has the label in its top-`k`."""
        out = np.zeros(len(self.rows), bool)
        for r in np.unique(self.chosen):
            sel = self.chosen == r
            out[sel] = cache.correct(int(r), k)[self.rows[sel]]
        return out


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """One row of `selection.csv`: a selector at one setting, measured on one part of the data.

    Accuracies in percent; drops in points against native on the same images (positive = loss);
    `flops_drop_pct` in percent of native FLOPs saved. For the random selector the values are
    means over trials and `stats` holds the std, max and min over trials of the three drops
    (deterministic selectors: one trial, std 0, max = min = the value). `extra` carries
    selector-specific objects (the cascade's fit) and is not written to the CSV.
    """

    selector: str
    setting: str
    part: str
    num_examples: int
    topk: int
    top1: float
    topk_acc: float
    top1_drop: float
    topk_drop: float
    mean_macs: float
    flops_drop_pct: float
    deployable: bool = True
    trials: int = 1
    stats: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def as_row(self):
        k = self.topk
        row = {
            "selector": self.selector,
            "setting": self.setting,
            "part": self.part,
            "num_examples": self.num_examples,
            "top1": round(self.top1, 4),
            f"top{k}": round(self.topk_acc, 4),
            "top1_drop": round(self.top1_drop, 4),
            f"top{k}_drop": round(self.topk_drop, 4),
            "mean_macs": round(self.mean_macs, 1),
            "mean_flops": round(2 * self.mean_macs, 1),
            "flops_drop_pct": round(self.flops_drop_pct, 4),
            "deployable": self.deployable,
            "trials": self.trials,
        }
        for name in ("top1_drop", f"top{k}_drop", "flops_drop_pct"):
            for stat in ("std", "max", "min"):
                row[f"{name}_{stat}"] = round(self.stats.get(f"{name}_{stat}", 0.0), 4)
        return row


def measure(cache, selection, *, topk=5):
    """(top1, topk accuracy, top1 drop, topk drop, mean MACs, FLOPs drop %) of a selection."""
    rows = selection.rows
    native = cache.native
    acc = [100.0 * float(np.mean(selection.correct(cache, k))) for k in (1, topk)]
    ref = [100.0 * float(np.mean(cache.correct(native, k)[rows])) for k in (1, topk)]
    mean_macs = float(np.mean(selection.macs))
    flops_drop = flops_drop_pct(mean_macs, cache.macs[native])
    return acc[0], acc[1], ref[0] - acc[0], ref[1] - acc[1], mean_macs, flops_drop


def summarize(cache, selections, *, selector, setting, part, topk=5, deployable=True):
    """A `SelectionResult` from one selection, or from several trials of a random one."""
    if isinstance(selections, Selection):
        selections = [selections]
    values = np.array([measure(cache, s, topk=topk) for s in selections])  # (trials, 6)
    mean = values.mean(axis=0)
    stats = {}
    for col, name in ((2, "top1_drop"), (3, f"top{topk}_drop"), (5, "flops_drop_pct")):
        v = values[:, col]
        stats[f"{name}_std"] = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        stats[f"{name}_max"] = float(v.max())
        stats[f"{name}_min"] = float(v.min())
    return SelectionResult(
        selector=selector,
        setting=setting,
        part=part,
        num_examples=len(selections[0].rows),
        topk=topk,
        top1=float(mean[0]),
        topk_acc=float(mean[1]),
        top1_drop=float(mean[2]),
        topk_drop=float(mean[3]),
        mean_macs=float(mean[4]),
        flops_drop_pct=float(mean[5]),
        deployable=deployable,
        trials=len(selections),
        stats=stats,
    )


@dataclasses.dataclass(frozen=True)
class Split:
    """Disjoint rows of the cache: `calibration` (where selectors are fitted) and `evaluation`
    (where they are measured). Both are sorted int arrays; together they cover every row."""

    calibration: np.ndarray
    evaluation: np.ndarray
    fraction: float
    seed: int
    stratified: bool

    def describe(self, cache=None):
        how = "stratified by label, " if self.stratified else ""
        return (
            f"calibration part: {len(self.calibration)} images, evaluation part: "
            f"{len(self.evaluation)} images ({how}calibration_fraction={self.fraction}, "
            f"split_seed={self.seed})"
        )


def split_rows(num_examples, *, calibration_fraction=0.5, seed=0, labels=None):
    """Splits rows 0..num_examples-1 into disjoint calibration and evaluation parts.

    Deterministic given `seed`. With `labels`, each class is split in the same proportion
    (stratified), so both parts see every class.

    Args:
      num_examples: number of images (rows of the cache).
      calibration_fraction: share of the images in the calibration part, in (0, 1).
      seed: seed of the permutation.
      labels: optional int (num_examples,) class ids to stratify by.
    """
    check_fraction(calibration_fraction, "calibration_fraction", include_high=False)
    if num_examples < 2:
        raise ValueError(
            f"Need at least 2 images to split into calibration and evaluation parts. "
            f"Received num_examples={num_examples}"
        )
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(num_examples)]
    else:
        labels = np.asarray(labels)
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    calibration = []
    for group in groups:
        perm = rng.permutation(group)
        calibration.append(perm[: int(round(calibration_fraction * len(perm)))])
    calibration = np.sort(np.concatenate(calibration)).astype(np.int64)
    evaluation = np.setdiff1d(np.arange(num_examples), calibration).astype(np.int64)
    if not len(calibration) or not len(evaluation):
        raise ValueError(
            f"calibration_fraction={calibration_fraction} leaves one part empty with "
            f"{num_examples} images"
        )
    return Split(calibration, evaluation, float(calibration_fraction), seed, labels is not None)
