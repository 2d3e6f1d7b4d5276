"""Fitting a cascade on the calibration images: every stage set, confidence kind and threshold
combination is scored from the cache, and the one that meets a target is chosen.

Stages, thresholds, the confidence kind and the per-resolution temperatures are all fitted on a
calibration part of the data to meet a `targets.Target`: at most `max_drop` points below native,
or at most `flops_budget` x the native FLOPs. The search only reads the cache: for each stage
set and confidence kind, every combination of per-stage shared thresholds is scored at once
from a histogram of the images over confidence bins and its prefix sums; per-class thresholds
are fitted by `per_class.price_sweep`.
"""

import dataclasses
import functools
import itertools

import numpy as np

from reswise_tf.selection import confidence as conf_lib
from reswise_tf.selection import per_class
from reswise_tf.selection.cascade_config import CascadeConfig
from reswise_tf.selection.targets import Target, check_target
from reswise_tf.utils.checks import check_positive_int
from reswise_tf.utils.units import flops_drop_pct

# Upper bound on the threshold combinations scored per stage set and confidence kind.
_GRID_CELLS = 2**16
# How thresholds may be set: one per stage shared by all images, or one per predicted class.
THRESHOLD_KINDS = ("shared", "per_class")


@dataclasses.dataclass
class CascadeFit:
    """The cascade chosen on the calibration part, with what it scored there.

    Attributes:
      config: the chosen `CascadeConfig`.
      target: the target in words, e.g. "max_drop=0.5".
      calibration: {"num_examples", "accuracy", "drop", "mean_macs", "flops_drop_pct", "metric"}.
      front: [(config, accuracy %, mean MACs)] on the calibration part: the cascades no other
        searched one beats in both accuracy and cost, cheapest first.
    """

    config: CascadeConfig
    target: str
    calibration: dict
    front: list


def stage_sets(cache, stages=None, max_stages=3):
    """The candidate stage sets: `stages` alone, else every subset of the resolutions below
    native with at most `max_stages - 1` members, each followed by native."""
    if stages is not None:
        stages = sorted(stages)
        cache.check_resolutions(stages, "stages")
        if stages[-1] != cache.native or len(set(stages)) != len(stages):
            raise ValueError(
                f"`stages` should be distinct cached resolutions ending at the native one "
                f"({cache.native}). Received stages={stages}"
            )
        return [tuple(stages)]
    check_positive_int(max_stages, "max_stages")
    lower = sorted(r for r in cache.resolutions if r < cache.native)
    return [
        (*subset, cache.native)
        for size in range(min(max_stages, len(lower) + 1))
        for subset in itertools.combinations(lower, size)
    ]


@dataclasses.dataclass
class CascadeSearch:
    """Every searched cascade scored on the calibration images (see `search_cascades`).

    Attributes:
      blocks: one per stage set and confidence kind: (accuracy % (G,), mean MACs (G,),
        `make(i) -> CascadeConfig`) over the G threshold combinations of the block.
      native_accuracy: native top-`metric_k` accuracy on the same images, percent.
      native_macs: MACs of the native resolution.
      num_examples: calibration images.
      metric_k: the k of the accuracy.
    """

    blocks: list
    native_accuracy: float
    native_macs: float
    num_examples: int
    metric_k: int
    _front: list | None = dataclasses.field(default=None, repr=False)


def search_cascades(
    cache,
    rows,
    *,
    stages=None,
    max_stages=3,
    confidences=conf_lib.CONFIDENCES,
    metric_k=1,
    thresholds=THRESHOLD_KINDS,
    progress=None,
):
    """Scores every stage set, confidence kind and threshold combination on the images `rows`
    (only those are read). Temperatures are fitted per resolution on the same images.
    `progress(done, total)` is called after each stage set.

    `thresholds` names the kinds of thresholds searched (`THRESHOLD_KINDS`): "shared" scores
    every combination of one threshold per stage; "per_class" the per-class thresholds of
    `per_class.price_sweep` at each price."""
    for c in confidences:
        conf_lib.check_confidence(c)
    thresholds = check_threshold_kinds(thresholds)
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        raise ValueError("The calibration part is empty")
    sets = stage_sets(cache, stages, max_stages)
    temps = {}
    if any(conf_lib.is_calibrated(c) for c in confidences):
        for r in sorted({r for s in sets for r in s[:-1]}):
            t = cache.tables[r]
            temps[r] = conf_lib.fit_temperature(t.top_ids[rows], t.top_probs[rows], t.labels[rows])
    blocks = []
    for done, stage_set in enumerate(sets, start=1):
        for c in confidences if len(stage_set) > 1 else confidences[:1]:
            probe = CascadeConfig(stage_set, (0.0,) * (len(stage_set) - 1), c,
                                  tuple(temps.get(r, 1.0) for r in stage_set), cache.kept_classes)
            if "shared" in thresholds or len(stage_set) == 1:
                blocks.append(_shared_block(cache, rows, probe, metric_k))
            if "per_class" in thresholds and len(stage_set) > 1:
                blocks.append(_per_class_block(cache, rows, probe, metric_k))
        if progress is not None:
            progress(done, len(sets))
    return CascadeSearch(
        blocks=blocks,
        native_accuracy=100.0 * float(np.mean(cache.correct(cache.native, metric_k)[rows])),
        native_macs=cache.macs[cache.native],
        num_examples=len(rows),
        metric_k=metric_k,
    )


def _shared_block(cache, rows, probe, metric_k):
    """Every combination of one threshold per stage of `probe`'s stage set, scored at once."""
    stage_set, n = probe.stages, len(rows)
    confs = [probe.stage_confidence(cache.top_probs(r)[rows], j) for j, r in enumerate(stage_set[:-1])]
    cands = [_threshold_candidates(x, len(stage_set) - 1) for x in confs]
    oks = [cache.correct(r, metric_k)[rows] for r in stage_set]
    correct, cost = _score_grid(confs, cands, oks, [cache.macs[r] for r in stage_set])
    make = functools.partial(_config_at, stage_set, probe.confidence, probe.temperatures, cands, cache.kept_classes)
    return 100.0 * correct.ravel() / n, cost.ravel() / n, make


def _per_class_block(cache, rows, probe, metric_k):
    """The per-class thresholds of `per_class.price_sweep` at each price."""
    swept = per_class.price_sweep(cache, rows, probe.stages, probe, metric_k=metric_k)
    configs = [dataclasses.replace(probe, thresholds=t) for t, _, _ in swept]
    correct = np.array([x[1] for x in swept])
    cost = np.array([x[2] for x in swept])
    return 100.0 * correct / len(rows), cost / len(rows), configs.__getitem__


def check_threshold_kinds(kinds):
    """`kinds` as a tuple of `THRESHOLD_KINDS`, else ValueError naming the valid ones."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    if not kinds or any(k not in THRESHOLD_KINDS for k in kinds):
        raise ValueError(
            f"`thresholds` should be among {', '.join(THRESHOLD_KINDS)}. Received thresholds={list(kinds)}"
        )
    return kinds


def _config_at(stage_set, kind, temperatures, cands, kept_classes, i):
    """The config of flat grid index `i`; stages after one that accepts all are dropped."""
    q = np.unravel_index(i, tuple(len(t) + 1 for t in cands)) if cands else ()
    thresholds = [float(t[k]) if k < len(t) else np.inf for t, k in zip(cands, q)]
    m = len(stage_set)
    if -np.inf in thresholds:
        m = thresholds.index(-np.inf) + 1
    return CascadeConfig(stage_set[:m], thresholds[: m - 1], kind, temperatures[:m], kept_classes)


def choose_cascade(search, target):
    """The searched cascade that meets `target` (a `targets.Target`), as a `CascadeFit`.

    With `max_drop`: the cheapest cascade at most `max_drop` points below native. With
    `flops_budget`: the most accurate one with mean FLOPs at most `flops_budget` x native.
    Ties go to the more accurate, then the cheaper, then the one with fewer stages.
    """
    if not isinstance(target, Target) or target.pending:
        raise ValueError(f"`target` should be a Target with a value. Received target={target!r}")
    kind, value = target.kind, target.value
    best = None
    for acc, cost, make in search.blocks:
        if kind == "max_drop":
            ok = np.flatnonzero(search.native_accuracy - acc <= value + 1e-9)
            order = np.lexsort((-acc[ok], cost[ok]))  # cheapest, then most accurate
        else:
            ok = np.flatnonzero(cost <= value * search.native_macs * (1 + 1e-12))
            order = np.lexsort((cost[ok], -acc[ok]))  # most accurate, then cheapest
        if len(ok):
            i = ok[order[0]]
            score = (cost[i], -acc[i]) if kind == "max_drop" else (-acc[i], cost[i])
            if best is None or score < best[0]:
                best = (score, float(acc[i]), float(cost[i]), make, i)
    if best is None:
        cheapest = min(float(cost.min()) for _, cost, _ in search.blocks) / search.native_macs
        raise ValueError(
            f"No cascade meets flops_budget={value}: the cheapest one costs {cheapest:.3f} of native"
        )
    _, acc, cost, make, i = best
    return CascadeFit(
        config=make(i),
        target=target.describe(),
        calibration={
            "num_examples": search.num_examples,
            "metric": f"top{search.metric_k}",
            "accuracy": acc,
            "drop": search.native_accuracy - acc,
            "mean_macs": cost,
            "flops_drop_pct": flops_drop_pct(cost, search.native_macs),
        },
        front=pareto_front(search),
    )


def pareto_front(search):
    """[(config, accuracy %, mean MACs)] not beaten in both by another searched cascade,
    cheapest first (computed once per search)."""
    if search._front is not None:
        return search._front
    costs, accs, where = [], [], []
    for b, (acc, cost, _) in enumerate(search.blocks):
        keep = _front(acc, cost)
        costs.append(cost[keep])
        accs.append(acc[keep])
        where += [(b, i) for i in keep]
    cost, acc = np.concatenate(costs), np.concatenate(accs)
    front = []
    for j in _front(acc, cost):
        b, i = where[j]
        front.append((search.blocks[b][2](i), float(acc[j]), float(cost[j])))
    search._front = front
    return front


def _front(acc, cost):
    order = np.lexsort((-acc, cost))
    best_before = np.maximum.accumulate(np.r_[-np.inf, acc[order][:-1]])
    return order[acc[order] > best_before]


def fit_cascade(
    cache,
    rows,
    *,
    max_drop=None,
    flops_budget=None,
    stages=None,
    max_stages=3,
    confidences=conf_lib.CONFIDENCES,
    metric_k=1,
    thresholds=THRESHOLD_KINDS,
):
    """Chooses stages, thresholds (shared or per class), confidence kind and temperatures on
    the images `rows` to meet one target (`max_drop` points of top-`metric_k` accuracy, or
    `flops_budget` x native FLOPs); see `search_cascades` and `choose_cascade`. Only `rows`
    are read."""
    target = check_target(max_drop, flops_budget)
    search = search_cascades(
        cache,
        rows,
        stages=stages,
        max_stages=max_stages,
        confidences=confidences,
        metric_k=metric_k,
        thresholds=thresholds,
    )
    return choose_cascade(search, target)


def _threshold_candidates(conf, num_stages):
    """-inf (accept all) and midpoints between distinct sorted values (never equal to one),
    thinned to about evenly spaced quantiles so the whole grid stays under `_GRID_CELLS`."""
    per_stage = max(2, int(_GRID_CELLS ** (1.0 / num_stages)) - 1)
    values = np.unique(conf)
    mids = (values[:-1] + values[1:]) / 2
    if len(mids) > per_stage - 1:
        below = np.searchsorted(np.sort(conf), mids)
        targets = np.linspace(0, len(conf), per_stage - 1)
        mids = mids[np.unique(np.clip(np.searchsorted(below, targets), 0, len(mids) - 1))]
    return np.concatenate([[-np.inf], mids])


def _score_grid(confs, cands, oks, macs):
    """Correct images and total MACs of every threshold combination, as arrays indexed by
    (q_1, ..., q_{m-1}), q_j = index into `cands[j]` (len(cands[j]) = reject all).

    An image with bins b_j (largest q with cands[j][q] <= conf) exits at the first stage j with
    b_j >= q_j. Sums over images with b_1 < q_1, ..., b_j < q_j are prefix sums of the
    histogram of images over bins.
    """
    m = len(oks)
    if m == 1:
        return np.array(float(np.sum(oks[0]))), np.array(macs[0] * len(oks[0]))
    bins = [np.searchsorted(t, x, side="right") - 1 for t, x in zip(cands, confs)]
    shape = tuple(len(t) for t in cands)
    flat = np.ravel_multi_index(bins, shape)

    def hist(weights):
        return np.bincount(flat, weights=weights, minlength=int(np.prod(shape))).reshape(shape)

    def prefix(h, j):  # sum over b_1 < q_1 .. b_j < q_j, indexed by q_1..q_j, padded to full rank
        if j == 0:
            return np.full((1,) * (m - 1), h.sum())
        a = h.sum(axis=tuple(range(j, m - 1))) if j < m - 1 else h
        for d in range(j):
            a = np.cumsum(a, axis=d)
        a = np.pad(a, [(1, 0)] * j)
        return a.reshape(a.shape + (1,) * (m - 1 - j))

    counts = hist(None)
    correct = np.zeros(tuple(s + 1 for s in shape))
    cost = np.full(correct.shape, macs[0] * len(flat), np.float64)
    for j in range(m):
        h = hist(oks[j].astype(np.float64))
        if j < m - 1:
            # Reached stage j (any b_j) minus those with b_j < q_j: exit at stage j.
            correct = correct + (prefix(h, j) - prefix(h, j + 1))
        else:
            correct = correct + prefix(h, m - 1)
        if j > 0:
            cost = cost + macs[j] * prefix(counts, j)
    return correct, cost
