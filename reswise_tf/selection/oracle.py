"""The `oracle` selector: per image, the cheapest stage whose prediction is correct.

It reads the labels, so it is an upper bound on what any per-image selector can reach at its
cost, not something that can be deployed. Images that no stage gets right (top-1) take the
cheapest stage with the label in its top-k, else the reference one; so it is the best top-1 and
top-k accuracy at the lowest cost among selectors that run one pass per image.

`cascade_bound` is the same idea for cascades at a FLOPs budget: the best a cascade could do
if it knew which images to send on. Every image pays the first stage; the budget leaves room for
some images to pay later passes too, and the bound spends it on images that the first stage gets
wrong and a later one gets right, cheapest first. Taken over every stage set a cascade search
considers, no confidence measure or threshold can do better at that budget: when the bound
misses a target, no cascade fitting will meet it.
"""

import dataclasses

import numpy as np

from reswise_tf.selection.cascade.search import resolve_stage, stage_sets
from reswise_tf.selection.common import Selection, key_array
from reswise_tf.selection.metrics import METRIC_NAMES, MeanIoU, TopK, metric_named
from reswise_tf.selection.pool import StagePool
from reswise_tf.selection.targets import check_targets
from reswise_tf.utils.checks import check_choice, check_positive_int

SETTING = "smallest correct resolution (reads the labels)"
SETTING_STAGES = "cheapest correct stage (reads the labels)"
SETTING_SEGMENTATION = "cheapest resolution with the image's best IoU (reads the labels)"
BOUND = "cascade_bound"


@dataclasses.dataclass(frozen=True)
class Options:
    """Attributes: targets: the `Target`s; at each flops budget among them the perfect-decision
    cascade bound is reported too (None: as the cascade's); max_stages and metric: the stage
    sets and accuracy of that bound, as for the cascade."""

    targets: tuple | None = None
    max_stages: int = 3
    metric: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "targets", check_targets(self.targets))
        check_positive_int(self.max_stages, "max_stages")
        check_choice(self.metric, ("auto", *METRIC_NAMES), "metric")

    def check_pool(self, pool, topk):
        """Raises ValueError unless `metric` is one of `pool`'s task."""
        metric_named(self.metric, pool, topk)


def oracle_select(pool, rows, *, topk=5):
    """The oracle's choice for each image of `rows`, paying one pass of that stage (a
    segmentation: the cheapest stage with the image's best IoU, `best_score_select`)."""
    pool = StagePool.of(pool)
    rows = np.asarray(rows, np.int64)
    if pool.task == "segmentation":
        return best_score_select(pool, rows, MeanIoU())
    index = {k: i for i, k in enumerate(pool.stages)}
    chosen = np.full(len(rows), index[pool.reference], np.int64)
    decided = np.zeros(len(rows), bool)
    for k in (1, topk):
        for key in pool.order(pool.stages)[::-1]:  # cheapest first
            hit = ~decided & pool.correct(key, k)[rows]
            chosen[hit] = index[key]
            decided |= hit
    keys = key_array(pool.stages)[chosen]
    macs = np.array([pool.macs[pool.stages[i]] for i in chosen], np.float64)
    return Selection(rows=rows, chosen=keys, macs=macs)


def best_score_select(pool, rows, metric):
    """Per image of `rows`, the cheapest stage whose own score under `metric` (e.g. its IoU) is
    the best of every stage's, paying one pass of it."""
    ordered = pool.order(pool.stages)[::-1]  # cheapest first
    scores = np.stack([metric.per_image(pool, key, rows) for key in ordered], axis=1)
    scores = np.nan_to_num(scores, nan=-1.0)
    first_best = np.argmax(scores >= scores.max(axis=1, keepdims=True) - 1e-12, axis=1)
    keys = key_array(ordered)[first_best]
    return Selection(rows=rows, chosen=keys, macs=np.array([pool.macs[ordered[i]] for i in first_best], np.float64))


def run(part, options):
    """The oracle's row, then (classification) the cascade bound at every flops budget of
    `options.targets`."""
    pool = part.pool
    selection = oracle_select(pool, part.rows, topk=part.topk)
    setting = (SETTING_SEGMENTATION if pool.task == "segmentation" else SETTING if pool.single else SETTING_STAGES)
    results = [part.summarize(selection, selector="oracle", setting=setting, deployable=False)]
    if pool.task == "segmentation":
        return results  # the bound counts correct images; a segmentation has none
    metric = metric_named(options.metric, pool, part.topk)
    for target in options.targets or ():
        if target.kind == "flops_budget":
            results += cascade_bound(part, target, metric_k=metric.k, max_stages=options.max_stages)
    return results


def cascade_bound_select(pool, rows, stage_set, macs_budget, *, k=1):
    """Perfect decisions for the cascade `stage_set` (cheapest first) at mean MACs <= `macs_budget`.

    Returns a `Selection`, or None when the first stage alone is over the budget. Every image
    pays the first stage. An image the first stage gets wrong (top-`k`) but a later stage gets
    right can be sent on to that stage, paying every pass up to it; the images are sent on
    cheapest first, as many as the budget allows (each adds one correct image, so this
    maximises the number correct). Ties go to the earlier row.
    """
    pool = StagePool.of(pool)
    rows = np.asarray(rows, np.int64)
    n = len(rows)
    cost = np.cumsum([pool.macs[r] for r in stage_set])  # exit at stage j pays passes 0..j
    if cost[0] > macs_budget * (1 + 1e-12):
        return None
    ok = np.stack([pool.correct(r, k)[rows] for r in stage_set], axis=1)
    first_right = np.argmax(ok, axis=1)
    candidates = np.flatnonzero(ok.any(axis=1) & ~ok[:, 0])
    extra = cost[first_right[candidates]] - cost[0]
    order = np.argsort(extra, kind="stable")
    fits = np.cumsum(extra[order]) <= (macs_budget - cost[0]) * n * (1 + 1e-12)
    go_on = candidates[order[fits]]
    exit_stage = np.zeros(n, np.int64)
    exit_stage[go_on] = first_right[go_on]
    return Selection(rows=rows, chosen=key_array(stage_set)[exit_stage], macs=cost[exit_stage].astype(np.float64))


def cascade_bound(part, target, *, metric_k=1, max_stages=3):
    """The best `cascade_bound_select` over the stage sets a cascade search considers (up to
    `max_stages` stages ending at native) at the flops budget `target`, as a one-row list
    (empty when no stage set fits the budget)."""
    pool, rows = part.pool, part.rows
    best = None
    sets = stage_sets(pool, max_stages=max_stages, rows=part.calibration, metric=TopK(metric_k))
    budget = target.value * pool.cost(pool.reference if target.against is None else resolve_stage(pool, target.against))
    for stage_set in sets:
        selection = cascade_bound_select(pool, rows, stage_set, budget, k=metric_k)
        if selection is None:
            continue
        score = (int(selection.correct(pool, metric_k).sum()), -float(selection.macs.sum()))
        if best is None or score > best[0]:
            best = (score, stage_set, selection)
    if best is None:
        return []
    _, stage_set, selection = best
    setting = f"{'>'.join(map(pool.describe, stage_set))} with perfect decisions at {target.describe()} (reads the labels)"
    return [part.summarize(selection, selector=BOUND, setting=setting, deployable=False)]
