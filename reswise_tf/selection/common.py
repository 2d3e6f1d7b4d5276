"""What every selector shares: the `Part` of the stage pool it reports on, the per-image
`Selection` it makes, the `SelectionResult` row that is summarised into, and the
calibration/evaluation split.

A selector picks, for every image, the stage (a model at a resolution, or a committee of
stages) whose cached prediction is used, and counts the MACs spent on the image (a cascade pays
for every pass that ran). The quality of a set of images is a metric object (`metrics`). Units:
`macs` are multiply-accumulates per image, FLOPs = 2 x MACs, accuracies are percent, drops are
percentage points lost against the reference stage on the same images (positive = worse),
`flops_drop_pct` is the percent of the reference's FLOPs saved.
"""

import dataclasses

import numpy as np

from reswise_tf.selection.metrics import TOP1, TopK, column_metrics
from reswise_tf.selection.pool import StagePool
from reswise_tf.utils.checks import check_fraction
from reswise_tf.utils.units import FLOPS_PER_MAC, flops_drop_pct


@dataclasses.dataclass(frozen=True)
class Part:
    """The images a selector reports on, and what it may fit on.

    Attributes:
      pool: the `StagePool` (a `SweepCache`, or its tables, is taken as the pool of one sweep).
      rows: int (n,) rows of the pool's images to report on.
      name: "all" or "evaluation" (the `part` column).
      topk: the k of the second accuracy column (already lowered to the kept classes).
      calibration: int rows a selector may be fitted on (disjoint from `rows`), or None.
      progress: `fn(done, total)` a long selector reports its progress to, or None.
    """

    pool: StagePool
    rows: np.ndarray
    name: str = "all"
    topk: int = 5
    calibration: np.ndarray | None = None
    progress: object = None

    def __post_init__(self):
        object.__setattr__(self, "pool", StagePool.of(self.pool))

    @classmethod
    def all_images(cls, pool, topk=5):
        """Every image of `pool`, no calibration part."""
        pool = StagePool.of(pool)
        return cls(pool, np.arange(len(pool)), "all", pool.effective_topk(topk))

    @property
    def metrics(self):
        """The metrics of the report's columns: top-1 and top-k accuracy (a segmentation: mIoU
        and pixel accuracy)."""
        return column_metrics(self.pool, self.topk)

    def summarize(self, selections, *, selector, setting, deployable=True):
        """The `SelectionResult` of `selections` (one, or several random trials) on this part."""
        return summarize(self.pool, selections, selector=selector, setting=setting, part=self.name,
                         metrics=self.metrics, deployable=deployable)


@dataclasses.dataclass
class Selection:
    """Per-image outcome of a selector on some rows of the pool.

    Attributes:
      rows: int (n,) rows of the pool (images) the selection covers.
      chosen: (n,) the stage key whose cached prediction is used for each image (a resolution,
        a `"model@resolution"` name, or a `Committee`).
      macs: float (n,) MACs spent on each image (every pass that ran).
    """

    rows: np.ndarray
    chosen: np.ndarray
    macs: np.ndarray

    def groups(self):
        """(key, positions) for each distinct chosen key."""
        keys = list(dict.fromkeys(self.chosen.tolist()))
        return [(key, np.flatnonzero(self.chosen == key) if not _is_object(self.chosen)
                 else np.array([i for i, c in enumerate(self.chosen) if c == key], np.int64)) for key in keys]

    def per_image(self, pool, metric):
        """float (n,): each image's own score under `metric` (e.g. 1 if correct); `pool` a
        `StagePool` or one sweep's cache."""
        pool = StagePool.of(pool)
        out = np.zeros(len(self.rows))
        for key, at in self.groups():
            out[at] = metric.per_image(pool, key, self.rows[at])
        return out

    def correct(self, pool, k=1):
        """Boolean (n,): whether each image's chosen prediction has the label in its top-`k`."""
        return self.per_image(pool, TopK(k)) > 0

    def sums(self, pool, metric):
        """`metric`'s statistics summed over the images."""
        pool = StagePool.of(pool)
        total = 0.0
        for key, at in self.groups():
            total = total + metric.stats(pool, key, self.rows[at]).sum(axis=0)
        return total


def _is_object(array):
    return np.asarray(array).dtype == object


def key_array(keys):
    """An (n,) array of stage keys: int64 for resolutions, object for names and committees."""
    keys = list(keys)
    if all(isinstance(k, (int, np.integer)) for k in keys):
        return np.asarray(keys, np.int64)
    out = np.empty(len(keys), object)
    out[:] = keys
    return out


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """One row of `selection.csv`: a selector at one setting, measured on one part of the data.

    `scores` holds (metric name, value %, drop in points against the reference on the same
    images, positive = loss) per column metric, e.g. ("top1", 91.2, 0.4), ("top5", ...);
    `flops_drop_pct` is the percent of the reference's FLOPs saved. For the random selector the
    values are means over trials and `stats` holds the std, max and min over trials of the drops
    (deterministic selectors: one trial, std 0, max = min = the value). `extra` carries
    selector-specific objects (the cascade's fit) and is not written to the CSV.
    """

    selector: str
    setting: str
    part: str
    num_examples: int
    scores: tuple
    mean_macs: float
    flops_drop_pct: float
    deployable: bool = True
    trials: int = 1
    stats: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def topk(self):
        """The k of the second accuracy column."""
        return int(self.scores[1][0][3:])

    @property
    def top1(self):
        return self.scores[0][1]

    @property
    def topk_acc(self):
        return self.scores[1][1]

    @property
    def top1_drop(self):
        return self.scores[0][2]

    @property
    def topk_drop(self):
        return self.scores[1][2]

    def as_row(self):
        row = {"selector": self.selector, "setting": self.setting, "part": self.part,
               "num_examples": self.num_examples}
        row.update({name: round(value, 4) for name, value, _ in self.scores})
        row.update({f"{name}_drop": round(drop, 4) for name, _, drop in self.scores})
        row.update({
            "mean_macs": round(self.mean_macs, 1),
            "mean_flops": round(FLOPS_PER_MAC * self.mean_macs, 1),
            "flops_drop_pct": round(self.flops_drop_pct, 4),
            "deployable": self.deployable,
            "trials": self.trials,
        })
        for name in [f"{n}_drop" for n, _, _ in self.scores] + ["flops_drop_pct"]:
            for stat in ("std", "max", "min"):
                row[f"{name}_{stat}"] = round(self.stats.get(f"{name}_{stat}", 0.0), 4)
        return row


def measure(pool, selection, metrics):
    """([value % per metric], [drop per metric], mean MACs, FLOPs drop %) of a selection,
    against the pool's reference stage on the same images."""
    values = [float(metric.value(selection.sums(pool, metric))) for metric in metrics]
    reference = [float(metric.value(metric.stats(pool, pool.reference, selection.rows).sum(axis=0)))
                 for metric in metrics]
    mean_macs = float(np.mean(selection.macs))
    return values, [r - v for r, v in zip(reference, values)], mean_macs, flops_drop_pct(mean_macs,
                                                                                         pool.macs[pool.reference])


def summarize(pool, selections, *, selector, setting, part, metrics=(TOP1, TopK(5)), deployable=True):  # noqa: B008
    """A `SelectionResult` from one selection, or from several trials of a random one."""
    if isinstance(selections, Selection):
        selections = [selections]
    measured = [measure(pool, s, metrics) for s in selections]
    values = np.array([m[0] for m in measured])  # (trials, metrics)
    drops = np.array([m[1] for m in measured])
    macs = np.array([m[2] for m in measured])
    flops = np.array([m[3] for m in measured])
    stats = {}
    for name, v in [*((f"{m.name}_drop", drops[:, i]) for i, m in enumerate(metrics)), ("flops_drop_pct", flops)]:
        stats[f"{name}_std"] = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        stats[f"{name}_max"] = float(v.max())
        stats[f"{name}_min"] = float(v.min())
    return SelectionResult(
        selector=selector,
        setting=setting,
        part=part,
        num_examples=len(selections[0].rows),
        scores=tuple((m.name, float(values[:, i].mean()), float(drops[:, i].mean())) for i, m in enumerate(metrics)),
        mean_macs=float(macs.mean()),
        flops_drop_pct=float(flops.mean()),
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

    def describe(self):
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
