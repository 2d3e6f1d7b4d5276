"""The `oracle` selector: per image, the smallest resolution whose prediction is correct.

It reads the labels, so it is an upper bound on what any per-image selector can reach at its
cost, not something that can be deployed. Images that no resolution gets right (top-1) take
the smallest resolution with the label in its top-k, else the native one; so it is the best
top-1 and top-k accuracy at the lowest cost among selectors that run one pass per image.

`cascade_bound` is the same idea for cascades at a FLOPs budget: the best a cascade could do
if it knew which images to send on. Every image pays the first stage; the budget leaves room for
some images to pay later passes too, and the bound spends it on images that the first stage gets
wrong and a later one gets right, cheapest first. Taken over every stage set a cascade search
considers, no confidence measure or threshold can do better at that budget: when the bound
misses a target, no cascade fitting will meet it.
"""

import numpy as np

from reswise_tf.selectors.cascade import stage_sets
from reswise_tf.selectors.common import Selection, summarize

SETTING = "smallest correct resolution (reads the labels)"
BOUND = "cascade_bound"


def oracle_select(cache, rows, *, topk=5):
    """The oracle's choice for each image of `rows`, paying one pass at that resolution."""
    rows = np.asarray(rows, np.int64)
    chosen = np.full(len(rows), cache.native, np.int64)
    decided = np.zeros(len(rows), bool)
    for k in (1, topk):
        for r in sorted(cache.resolutions):  # smallest first
            hit = ~decided & cache.correct(r, k)[rows]
            chosen[hit] = r
            decided |= hit
    macs = np.array([cache.macs[int(r)] for r in chosen], np.float64)
    return Selection(rows=rows, chosen=chosen, macs=macs)


def run(cache, rows, *, part, topk=5):
    selection = oracle_select(cache, rows, topk=topk)
    return [
        summarize(
            cache,
            selection,
            selector="oracle",
            setting=SETTING,
            part=part,
            topk=topk,
            deployable=False,
        )
    ]


def cascade_bound_select(cache, rows, stage_set, macs_budget, *, k=1):
    """Perfect decisions for the cascade `stage_set` (cheapest first) at mean MACs <= `macs_budget`.

    Returns a `Selection`, or None when the first stage alone is over the budget. Every image
    pays the first stage. An image the first stage gets wrong (top-`k`) but a later stage gets
    right can be sent on to that stage, paying every pass up to it; the images are sent on
    cheapest first, as many as the budget allows (each adds one correct image, so this
    maximises the number correct). Ties go to the earlier row.
    """
    rows = np.asarray(rows, np.int64)
    stage_set = tuple(int(r) for r in stage_set)
    n = len(rows)
    cost = np.cumsum([cache.macs[r] for r in stage_set])  # exit at stage j pays passes 0..j
    if cost[0] > macs_budget * (1 + 1e-12):
        return None
    ok = np.stack([cache.correct(r, k)[rows] for r in stage_set], axis=1)
    first_right = np.argmax(ok, axis=1)
    candidates = np.flatnonzero(ok.any(axis=1) & ~ok[:, 0])
    extra = cost[first_right[candidates]] - cost[0]
    order = np.argsort(extra, kind="stable")
    fits = np.cumsum(extra[order]) <= (macs_budget - cost[0]) * n * (1 + 1e-12)
    go_on = candidates[order[fits]]
    exit_stage = np.zeros(n, np.int64)
    exit_stage[go_on] = first_right[go_on]
    return Selection(
        rows=rows,
        chosen=np.asarray(stage_set, np.int64)[exit_stage],
        macs=cost[exit_stage].astype(np.float64),
    )


def cascade_bound(cache, rows, *, part, flops_budget, topk=5, metric_k=1, max_stages=3):
    """The best `cascade_bound_select` over the stage sets a cascade search considers (up to
    `max_stages` stages ending at native) at `flops_budget` x native FLOPs, as a one-row list
    (empty when no stage set fits the budget)."""
    best = None
    for stage_set in stage_sets(cache, max_stages=max_stages):
        selection = cascade_bound_select(
            cache, rows, stage_set, flops_budget * cache.macs[cache.native], k=metric_k
        )
        if selection is None:
            continue
        score = (int(selection.correct(cache, metric_k).sum()), -float(selection.macs.sum()))
        if best is None or score > best[0]:
            best = (score, stage_set, selection)
    if best is None:
        return []
    _, stage_set, selection = best
    return [
        summarize(
            cache,
            selection,
            selector=BOUND,
            setting=(
                f"{'>'.join(map(str, stage_set))} with perfect decisions at "
                f"flops_budget={flops_budget:.4g} (reads the labels)"
            ),
            part=part,
            topk=topk,
            deployable=False,
        )
    ]
