"""What every selector shares: the sweep cache as arrays, the per-image `Selection` a selector
returns, the `SelectionResult` row it is summarised into, and the calibration/evaluation split.

A selector picks, for every image, the resolution whose cached prediction is used and counts the
MACs spent on the image (a cascade pays for every pass that ran). Units: `macs` are
multiply-accumulates per image, FLOPs = 2 x MACs, accuracies are percent, drops are percentage
points lost against the native resolution on the same images (positive = worse than native),
`flops_drop_pct` is the percent of the native FLOPs saved.
"""

import dataclasses

import numpy as np


class SweepCache:
    """The prediction tables of one sweep, checked to describe the same images in the same order.

    Args:
      tables: {resolution: PredictionTable}, as `predictions.load_tables` returns.

    Attributes:
      resolutions: all resolutions, highest first.
      native: the native resolution (`meta['native_resolution']`, else the largest).
      labels: int64 (N,) true classes; `index`: int64 (N,) dataset positions.
      macs: {resolution: MACs per image}.
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
        natives = {t.meta.get("native_resolution") for t in self.tables.values()} - {None}
        if len(natives) > 1:
            raise ValueError(f"The tables disagree on the native resolution: {sorted(natives)}")
        self.native = natives.pop() if natives else self.resolutions[0]
        if self.native not in self.tables:
            raise ValueError(
                f"The native resolution {self.native} is not among the cached ones: "
                f"{list(self.resolutions)}"
            )
        self.num_classes_kept = first.top_ids.shape[1]
        self._correct = {}

    def __len__(self):
        return len(self.labels)

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
    flops_drop = 100.0 * (1.0 - mean_macs / cache.macs[native])
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


def effective_topk(cache, topk):
    """`topk`, lowered to the number of classes kept in the cache when fewer are kept."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"`topk` should be a positive integer. Received topk={topk!r}")
    return min(topk, cache.num_classes_kept)


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
    if not isinstance(calibration_fraction, (int, float)) or not 0 < calibration_fraction < 1:
        raise ValueError(
            "`calibration_fraction` should be in (0, 1). "
            f"Received calibration_fraction={calibration_fraction!r}"
        )
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
