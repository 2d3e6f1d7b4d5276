"""The stages a selector chooses among: a model at a resolution, each with its cached per-image
predictions and its MACs, over one set of images.

One sweep gives the stages of one model (keyed by resolution, as its cache is); several sweeps
of different models over the same images give every (model, resolution) of all of them, keyed
`"<sweep name>@<resolution>"`. Drops are measured against the `reference` stage: the native
resolution of one sweep, else the most accurate stage (or the one the caller names).

A committee of stages (`Committee`) is a stage too: the average of its members' probabilities,
as a cascade that decides on "the committee so far" sees it. The cache keeps each image's top
classes only (10 by default): the average is exact when every class is kept (up to 10 classes),
and for more classes a class outside a member's kept ones counts as probability 0 there.
"""

import dataclasses

import numpy as np

from reswise_tf.evaluation.predictions import PredictionTable, SweepCache
from reswise_tf.utils.checks import check_positive_int


@dataclasses.dataclass(frozen=True)
class Committee:
    """The average of the probabilities of `members` (stage keys, in the order they ran)."""

    members: tuple

    def __str__(self):
        return "+".join(map(str, self.members))


class StagePool:
    """Stages over the same images (see the module docstring).

    Args:
      tables: {key: PredictionTable}, each with `meta["macs"]`, all of the same images in the
        same order (index and labels).
      reference: the key drops are measured against.
    """

    def __init__(self, tables, reference):
        self.tables = dict(tables)
        first = next(iter(self.tables.values()))
        self.index, self.labels = first.index, first.labels
        for key, t in self.tables.items():
            if not (np.array_equal(t.index, first.index) and np.array_equal(t.labels, first.labels)):
                raise ValueError(f"Stage {key} does not describe the same images (index and labels, in the same "
                                 "order) as the others")
        self.macs = {key: float(t.meta["macs"]) for key, t in self.tables.items()}
        self.stages = self.order(self.tables)
        if reference not in self.tables:
            raise ValueError(f"`reference` should be one of the stages: {', '.join(map(str, self.stages))}. "
                             f"Received reference={reference!r}")
        self.reference = reference
        self.kept_classes = min(t.kept_classes for t in self.tables.values())
        self._committees, self._correct = {}, {}

    @classmethod
    def of(cls, cache):
        """The pool of one sweep: a `SweepCache` (or its {resolution: table}), keyed by resolution,
        its native resolution the reference; a pool is returned as it is."""
        if isinstance(cache, StagePool):
            return cache
        cache = cache if isinstance(cache, SweepCache) else SweepCache(cache)
        return cls(cache.tables, cache.native)

    @classmethod
    def from_sweeps(cls, sweeps, reference=None):
        """The pool of several sweeps of the same images: {name: SweepCache}, keys
        `"name@resolution"` (one sweep: its resolutions). `reference` (a key; of one sweep its
        resolution, or `name@resolution`) defaults to one sweep's native resolution, else the
        stage with the best top-1 accuracy (a segmentation: mIoU), the cheaper on a tie."""
        if len(sweeps) == 1:
            (name, cache), = sweeps.items()
            pool = cls.of(cache)
            if reference is None:
                return pool
            key = str(reference).removeprefix(f"{name}@")
            return cls(pool.tables, int(key) if key.isdigit() else reference)
        tables = {f"{name}@{r}": t for name, cache in sweeps.items() for r, t in cache.tables.items()}
        if reference is None:
            reference = max(tables, key=lambda k: (_quality(tables[k]), -float(tables[k].meta["macs"])))
        return cls(tables, reference)

    def order(self, keys):
        """`keys` most expensive first: the resolutions of one sweep from the largest, the
        stages of several models by their MACs (then by name)."""
        if all(isinstance(k, (int, np.integer)) for k in keys):
            return tuple(sorted(keys, reverse=True))
        return tuple(sorted(keys, key=lambda k: (-self.macs[k], str(k))))

    @property
    def task(self):
        """"segmentation" when the stages' tables are segmentation tables, else "classification"."""
        return "segmentation" if hasattr(next(iter(self.tables.values())), "intersection") else "classification"

    @property
    def single(self):
        """Whether the stages are the resolutions of one model (keys are resolutions)."""
        return all(isinstance(k, (int, np.integer)) for k in self.tables)

    def __len__(self):
        return len(self.labels)

    def describe(self, key):
        """How `key` is written: `28` or `mobilenetv2_32@28`; a committee joins its members."""
        if isinstance(key, Committee):
            return "+".join(self.describe(k) for k in key.members)
        return str(key)

    def effective_topk(self, topk):
        """`topk`, lowered to the classes kept in the cache (a 2-class model's top-5 is top-2)."""
        check_positive_int(topk, "topk")
        return min(topk, self.kept_classes)

    def check_stages(self, keys, arg):
        """Raises ValueError naming `arg` unless every key is a stage of the pool."""
        missing = [k for k in keys if k not in self.tables]
        if missing or not len(keys):
            raise ValueError(f"`{arg}` should be cached {'resolutions' if self.single else 'stages'}: "
                             f"{', '.join(map(self.describe, self.stages))}. Received {arg}={list(keys)}")

    def cost(self, key):
        """MACs of one pass of `key`; a committee pays every member."""
        if isinstance(key, Committee):
            return sum(self.macs[k] for k in key.members)
        return self.macs[key]

    def table(self, key):
        """The `PredictionTable` of a stage, or of a committee (memoised)."""
        if not isinstance(key, Committee):
            return self.tables[key]
        if len(key.members) == 1:
            return self.tables[key.members[0]]
        if key not in self._committees:
            self._committees[key] = average_tables([self.tables[k] for k in key.members], self.kept_classes)
        return self._committees[key]

    def correct(self, key, k=1):
        """Boolean (N,): whether the label is in the top-`k` of `key`'s prediction (memoised)."""
        if (key, k) not in self._correct:
            self._correct[(key, k)] = self.table(key).correct(k)
        return self._correct[(key, k)]

    def top_probs(self, key):
        return self.table(key).top_probs

    def accuracy(self, key, k=1, rows=None):
        """Top-`k` accuracy (%) of `key` on `rows` (default: every image)."""
        ok = self.correct(key, k)
        return 100.0 * float(np.mean(ok if rows is None else ok[rows]))


def average_tables(tables, kept_classes):
    """A `PredictionTable` of the mean of the tables' probabilities (`average_predictions`)."""
    ids, probs = average_predictions([t.top_ids for t in tables], [t.top_probs for t in tables], kept_classes)
    return PredictionTable(resolution=tables[0].resolution, index=tables[0].index, labels=tables[0].labels,
                           top_ids=ids, top_probs=probs,
                           meta={"macs": sum(float(t.meta["macs"]) for t in tables)})


def average_predictions(ids_list, probs_list, kept_classes):
    """(int32 ids, float32 probabilities) (n, kept_classes) of the mean of several predictions
    of the same images, each given as its top class ids and their probabilities (a class outside
    one's kept classes counts 0 there), most probable first. The deployed cascade averages with
    this function too, so that it decides as the cache does."""
    n = len(ids_list[0])
    ids = np.concatenate(ids_list, axis=1).astype(np.int64)
    probs = np.concatenate(probs_list, axis=1).astype(np.float64) / len(ids_list)
    order = np.argsort(ids, axis=1, kind="stable")
    ids, probs = np.take_along_axis(ids, order, 1), np.take_along_axis(probs, order, 1)
    start = np.ones(ids.shape, bool)
    start[:, 1:] = ids[:, 1:] != ids[:, :-1]
    group = (np.cumsum(start, axis=1) - 1).ravel()  # per row: which distinct class each column adds to
    row = np.repeat(np.arange(n), ids.shape[1])
    sums = np.zeros(ids.shape)
    np.add.at(sums, (row, group), probs.ravel())
    distinct = np.full(ids.shape, -1)
    np.maximum.at(distinct, (row, group), np.where(start, ids, -1).ravel())
    sums[distinct < 0] = -1.0  # padding sorts last
    top = np.argsort(-sums, axis=1, kind="stable")[:, :kept_classes]
    return (np.take_along_axis(distinct, top, 1).astype(np.int32),
            np.take_along_axis(sums, top, 1).astype(np.float32))


def _quality(table):
    """What ranks a stage as the default reference: top-1 accuracy, a segmentation's mIoU."""
    return table.miou() if hasattr(table, "miou") else table.accuracy(1)

