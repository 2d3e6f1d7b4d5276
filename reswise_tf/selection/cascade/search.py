"""Fitting a cascade on the calibration images: every stage set, decision rule, confidence kind
and threshold combination is scored from the cache, and the one that meets a target is chosen.

Stages, thresholds, the confidence kind (or a learned gate) and the per-stage temperatures are
all fitted on a calibration part of the data to meet a `targets.Target`: at most `max_drop`
points below the reference stage, or at most `flops_budget` x its FLOPs. The search only reads
the cache: for each stage set and confidence kind, every combination of per-stage shared
thresholds is scored at once from histograms of the images' metric statistics over confidence
bins and their prefix sums (any metric that is a function of sums over images: top-1, mIoU);
per-class thresholds are fitted by `per_class.price_sweep`.

The stage sets of one sweep are its resolutions below native, each set ending at native (as
the thesis's sizes). Those of several models are every set of up to `max_stages` stages of
increasing cost among the fixed points on the calibration part's accuracy/MACs Pareto front
(17 such points give 833 sets), each deciding on its own prediction or on the committee so far.
"""

import dataclasses
import functools
import itertools

import numpy as np

from reswise_tf.selection.cascade import confidence as conf_lib
from reswise_tf.selection.cascade import gate as gate_lib
from reswise_tf.selection.cascade import per_class
from reswise_tf.selection.cascade.config import DECISIONS, CascadeConfig
from reswise_tf.selection.committee import natives
from reswise_tf.selection.metrics import TOP1, TopK
from reswise_tf.selection.pool import Committee, StagePool
from reswise_tf.selection.targets import COMMITTEE, Target, check_target
from reswise_tf.utils.checks import check_positive_int
from reswise_tf.utils.units import flops_drop_pct

# Upper bound on the threshold combinations scored per stage set and confidence kind.
_GRID_CELLS = 2**16
# How thresholds may be set: one per stage shared by all images, or one per predicted class.
THRESHOLD_KINDS = ("shared", "per_class")
GATE_FOLDS = 2  # the learned gate's cross-fitting


@dataclasses.dataclass
class CascadeFit:
    """The cascade chosen on the calibration part, with what it scored there.

    Attributes:
      config: the chosen `CascadeConfig`.
      target: the target in words, e.g. "max_drop=0.5".
      calibration: {"num_examples", "accuracy", "drop", "mean_macs", "flops_drop_pct", "metric"}
        ("accuracy": the metric's value, e.g. top-1 or mIoU).
      front: [(config, accuracy %, mean MACs)] on the calibration part: the cascades no other
        searched one beats in both accuracy and cost, cheapest first.
    """

    config: CascadeConfig
    target: str
    calibration: dict
    front: list


def stage_sets(pool, stages=None, max_stages=3, rows=None, metric=None, candidates=None):
    """The candidate stage sets, each cheapest first: `stages` alone; else, for one sweep, every
    subset of the resolutions below native with at most `max_stages - 1` members, each followed
    by native; for several models, every set of at most `max_stages` of the `pareto_stages`
    (among `candidates`, default all) on `rows` (all images when None)."""
    pool = StagePool.of(pool)
    if stages is not None:
        pool.check_stages(stages, "stages")
        stages = sorted(stages, key=lambda k: (pool.macs[k], str(k)))
        if len(set(stages)) != len(stages) or (pool.single and stages[-1] != pool.reference):
            raise ValueError(
                f"`stages` should be distinct cached resolutions ending at the native one "
                f"({pool.describe(pool.reference)}). Received stages={stages}"
            )
        return [tuple(stages)]
    check_positive_int(max_stages, "max_stages")
    if pool.single:
        lower = sorted(r for r in pool.stages if r < pool.reference)
        return [(*subset, pool.reference) for size in range(min(max_stages, len(lower) + 1))
                for subset in itertools.combinations(lower, size)]
    front = pareto_stages(pool, np.arange(len(pool)) if rows is None else rows, metric or TopK(1), candidates)
    return [subset for size in range(1, max_stages + 1) for subset in itertools.combinations(front, size)]


def pareto_stages(pool, rows, metric, candidates=None):
    """The stages (of `candidates`, default all) no other beats in both `metric` and MACs on
    `rows`, cheapest first."""
    candidates = pool.stages if candidates is None else candidates
    value = {k: float(metric.value(metric.stats(pool, k, rows).sum(axis=0))) for k in candidates}
    ordered = sorted(candidates, key=lambda k: (pool.macs[k], -value[k], str(k)))
    front, best = [], -np.inf
    for k in ordered:
        if value[k] > best:
            front.append(k)
            best = value[k]
    return front


@dataclasses.dataclass
class CascadeSearch:
    """Every searched cascade scored on the calibration images (see `search_cascades`).

    Attributes:
      blocks: one per stage set, decision rule and confidence kind: (metric value % (G,), mean
        MACs (G,), `make(i) -> CascadeConfig`) over the G threshold combinations of the block.
      native_accuracy: the reference stage's metric value on the same images, percent.
      native_macs: MACs of the reference stage.
      num_examples: calibration images.
      metric: the metric object (e.g. `TopK(1)`).
    """

    blocks: list
    native_accuracy: float
    native_macs: float
    num_examples: int
    metric: object
    pool: object = None
    rows: np.ndarray | None = None
    _front: list | None = dataclasses.field(default=None, repr=False)


def search_cascades(
    pool,
    rows,
    *,
    stages=None,
    max_stages=3,
    confidences=conf_lib.CONFIDENCES,
    metric=TOP1,
    thresholds=THRESHOLD_KINDS,
    decisions=("own",),
    candidates=None,
    per_class_kinds=None,
    progress=None,
):
    """Scores every stage set (of `candidates` where given: see `stage_sets`), decision rule (`decisions`: "own", "committee"), confidence kind
    (`confidences`, "learned" included) and threshold combination on the images `rows` (only
    those are read). Temperatures are fitted per decided table on the same images.
    `progress(done, total)` is called after each stage set.

    `thresholds` names the kinds of thresholds searched (`THRESHOLD_KINDS`): "shared" scores
    every combination of one threshold per stage; "per_class" the per-class thresholds of
    `per_class.price_sweep` at each price (additive metrics such as top-1 only); with
    `per_class_kinds`, only for those confidence kinds and for sets of two stages."""
    pool = StagePool.of(pool)
    for c in confidences:
        conf_lib.check_confidence(c, learned=True)
    for d in decisions:
        if d not in DECISIONS:
            raise ValueError(f"Unknown decide {d!r}. Available: {', '.join(DECISIONS)}")
    thresholds = check_threshold_kinds(thresholds)
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        raise ValueError("The calibration part is empty")
    sets = stage_sets(pool, stages, max_stages, rows, metric, candidates)
    blocks, memo = [], {}
    for done, stage_set in enumerate(sets, start=1):
        for decide in decisions if len(stage_set) > 1 else decisions[:1]:
            for c in confidences if len(stage_set) > 1 else confidences[:1]:
                limited = per_class_kinds is not None and (c not in per_class_kinds or len(stage_set) > 2)
                kinds = ("shared",) if limited else thresholds
                blocks += _blocks(pool, rows, stage_set, decide, c, metric, kinds, memo)
        if progress is not None:
            progress(done, len(sets))
    return CascadeSearch(
        blocks=blocks,
        native_accuracy=float(metric.value(metric.stats(pool, pool.reference, rows).sum(axis=0))),
        native_macs=pool.macs[pool.reference],
        num_examples=len(rows),
        metric=metric,
        pool=pool,
        rows=rows,
    )


def target_reference(search, target):
    """(metric value %, MACs) of what `target` is measured against on the search's images: its
    own reference (a stage, or the committee of every model's native), else the pool's."""
    if target.against is None:
        return search.native_accuracy, search.native_macs
    key = resolve_stage(search.pool, target.against)
    metric = search.metric
    return float(metric.value(metric.stats(search.pool, key, search.rows).sum(axis=0))), search.pool.cost(key)


def resolve_stage(pool, name):
    """The key named `name`: a stage (`28`, `model@28`), or `committee` (every model's native)."""
    if name == COMMITTEE:
        members = natives(pool)
        if len(members) < 2:
            raise ValueError("A target @committee needs the sweeps of several models")
        return Committee(tuple(members))
    for key in pool.stages:
        if pool.describe(key) == str(name):
            return key
    raise ValueError(f"Unknown reference {name!r} of a target. Available: committee, "
                     f"{', '.join(map(pool.describe, pool.stages))}")


def _blocks(pool, rows, stage_set, decide, kind, metric, thresholds, memo):
    """The blocks of one stage set, decision rule and confidence kind (`memo` keeps what
    several stage sets share: temperatures and gates of a decided table)."""
    probe = CascadeConfig(stage_set, (0.0,) * (len(stage_set) - 1), conf_lib.CONFIDENCES[0], (),
                          pool.kept_classes, decide)
    keys = [probe.decision_key(j) for j in range(len(stage_set))]
    if kind == conf_lib.LEARNED:
        confs, gates = _learned(pool, rows, probe, keys, metric, memo)
        probe = dataclasses.replace(probe, confidence=kind, gates=gates)
    else:
        temps = tuple(_temperature(pool, k, rows, memo) if conf_lib.is_calibrated(kind) else 1.0 for k in keys)
        probe = dataclasses.replace(probe, confidence=kind, temperatures=temps)
        confs = [probe.stage_confidence(pool.top_probs(k)[rows], j) for j, k in enumerate(keys[:-1])]
    out = []
    if "shared" in thresholds or len(stage_set) == 1:
        out.append(_shared_block(pool, rows, probe, keys, confs, metric))
    if "per_class" in thresholds and len(stage_set) > 1 and isinstance(metric, TopK):
        out.append(_per_class_block(pool, rows, probe, confs, metric))
    return out


def _temperature(pool, key, rows, memo):
    if ("T", key) not in memo:
        t = pool.table(key)
        memo[("T", key)] = conf_lib.fit_temperature(t.top_ids[rows], t.top_probs[rows], t.labels[rows])
    return memo[("T", key)]


def _learned(pool, rows, probe, keys, metric, memo):
    """(out-of-fold gate confidences on `rows` per stage but the last, gates fitted on all of
    them): the thresholds are searched on confidences the gate did not see the labels of."""
    if "folds" not in memo:
        memo["folds"] = per_class.fold_of(pool.labels[rows], GATE_FOLDS, seed=0)
        memo["classes"] = 1 + int(max(pool.labels.max(), *(pool.tables[k].top_ids[:, 0].max() for k in pool.stages)))
    confs, gates = [], []
    for j, key in enumerate(keys[:-1]):
        before = probe.stages[j - 1] if j else None
        if ("gate", key, before) not in memo:
            table = pool.table(key)
            previous = pool.tables[before].top_ids[rows, 0] if j else None
            args = (table.top_ids[rows], table.top_probs[rows], previous, metric.per_image(pool, key, rows),
                    memo["classes"])
            memo[("gate", key, before)] = (gate_lib.cross_fitted(*args, memo["folds"]), gate_lib.fit_gate(*args))
        conf, gate = memo[("gate", key, before)]
        confs.append(conf)
        gates.append(gate)
    return confs, tuple(gates)


def _shared_block(pool, rows, probe, keys, confs, metric):
    """Every combination of one threshold per stage of `probe`'s stage set, scored at once."""
    stage_set, n = probe.stages, len(rows)
    cands = [_threshold_candidates(x, len(stage_set) - 1) for x in confs]
    stats = [metric.stats(pool, k, rows) for k in keys]
    sums, cost = _score_grid(confs, cands, stats, [pool.macs[r] for r in stage_set])
    make = functools.partial(_config_at, probe, cands)
    return metric.value(sums).ravel(), cost.ravel() / n, make


def _per_class_block(pool, rows, probe, confs, metric):
    """The per-class thresholds of `per_class.price_sweep` at each price."""
    swept = per_class.price_sweep(pool, rows, probe.stages, probe, metric=metric, confs=confs)
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


def _config_at(probe, cands, i):
    """The config of flat grid index `i`; stages after one that accepts all are dropped."""
    q = np.unravel_index(i, tuple(len(t) + 1 for t in cands)) if cands else ()
    thresholds = [float(t[k]) if k < len(t) else np.inf for t, k in zip(cands, q)]
    m = len(probe.stages)
    if -np.inf in thresholds:
        m = thresholds.index(-np.inf) + 1
    return dataclasses.replace(probe, stages=probe.stages[:m], thresholds=tuple(thresholds[: m - 1]),
                               temperatures=probe.temperatures[:m], gates=probe.gates[: m - 1],
                               decide=probe.decide if m > 1 else "own")


def choose_cascade(search, target):
    """The searched cascade that meets `target` (a `targets.Target`), as a `CascadeFit`.

    With `max_drop`: the cheapest cascade at most `max_drop` points below native. With
    `flops_budget`: the most accurate one with mean FLOPs at most `flops_budget` x native.
    Ties go to the more accurate, then the cheaper, then the one with fewer stages.
    """
    if not isinstance(target, Target) or target.pending:
        raise ValueError(f"`target` should be a Target with a value. Received target={target!r}")
    kind, value = target.kind, target.value
    reference_accuracy, reference_macs = target_reference(search, target)
    best = None
    for acc, cost, make in search.blocks:
        if kind == "max_drop":
            ok = np.flatnonzero(reference_accuracy - acc <= value + 1e-9)
            order = np.lexsort((-acc[ok], cost[ok]))  # cheapest, then most accurate
        else:
            ok = np.flatnonzero(cost <= value * reference_macs * (1 + 1e-12))
            order = np.lexsort((cost[ok], -acc[ok]))  # most accurate, then cheapest
        if len(ok):
            i = ok[order[0]]
            score = (cost[i], -acc[i]) if kind == "max_drop" else (-acc[i], cost[i])
            if best is None or score < best[0]:
                best = (score, float(acc[i]), float(cost[i]), make, i)
    if best is None:
        if kind == "max_drop":
            raise ValueError(f"No cascade meets {target.describe()}: the most accurate one is "
                             f"{reference_accuracy - max(float(a.max()) for a, _, _ in search.blocks):.2f} points below")
        cheapest = min(float(cost.min()) for _, cost, _ in search.blocks) / reference_macs
        raise ValueError(
            f"No cascade meets {target.describe()}: the cheapest one costs {cheapest:.3f} of the reference"
        )
    _, acc, cost, make, i = best
    return CascadeFit(
        config=make(i),
        target=target.describe(),
        calibration={
            "num_examples": search.num_examples,
            "metric": search.metric.name,
            "accuracy": acc,
            "drop": reference_accuracy - acc,
            "mean_macs": cost,
            "flops_drop_pct": flops_drop_pct(cost, reference_macs),
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
    pool,
    rows,
    *,
    max_drop=None,
    flops_budget=None,
    stages=None,
    max_stages=3,
    confidences=conf_lib.CONFIDENCES,
    metric=TOP1,
    thresholds=THRESHOLD_KINDS,
    decisions=("own",),
):
    """Chooses stages, the decision rule, thresholds (shared or per class), confidence kind and
    temperatures on the images `rows` to meet one target (`max_drop` points of `metric`, or
    `flops_budget` x the reference's FLOPs); see `search_cascades` and `choose_cascade`. Only
    `rows` are read."""
    target = check_target(max_drop, flops_budget)
    search = search_cascades(pool, rows, stages=stages, max_stages=max_stages, confidences=confidences,
                             metric=metric, thresholds=thresholds, decisions=decisions)
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


def _score_grid(confs, cands, stats, macs):
    """Summed metric statistics and total MACs of every threshold combination, as arrays indexed
    by (q_1, ..., q_{m-1}) (statistics: a last axis of the metric's d statistics), q_j = index
    into `cands[j]` (len(cands[j]) = reject all). `stats`: (n, d) per stage; a boolean (n,)
    array counts as the statistic of correct images alone.

    An image with bins b_j (largest q with cands[j][q] <= conf) exits at the first stage j with
    b_j >= q_j. Sums over images with b_1 < q_1, ..., b_j < q_j are prefix sums of the
    histogram of images over bins.
    """
    stats = [np.asarray(x, np.float64).reshape(len(x), -1) for x in stats]
    d, m = stats[0].shape[1], len(stats)
    if m == 1:
        return stats[0].sum(axis=0).reshape(d) if d > 1 else np.array(stats[0].sum()), np.array(macs[0] * len(stats[0]))
    bins = [np.searchsorted(t, x, side="right") - 1 for t, x in zip(cands, confs)]
    shape = tuple(len(t) for t in cands)
    flat = np.ravel_multi_index(bins, shape)

    def hist(weights):
        return np.bincount(flat, weights=weights, minlength=int(np.prod(shape))).reshape(shape)

    def prefix(h, j):  # sum over b_1 < q_1 .. b_j < q_j, indexed by q_1..q_j, padded to full rank
        if j == 0:
            return np.full((1,) * (m - 1), h.sum())
        a = h.sum(axis=tuple(range(j, m - 1))) if j < m - 1 else h
        for axis in range(j):
            a = np.cumsum(a, axis=axis)
        a = np.pad(a, [(1, 0)] * j)
        return a.reshape(a.shape + (1,) * (m - 1 - j))

    counts = hist(None)
    sums = np.zeros(tuple(s + 1 for s in shape) + (d,))
    cost = np.full(sums.shape[:-1], macs[0] * len(flat), np.float64)
    for j in range(m):
        for c in range(d):
            h = hist(stats[j][:, c])
            if j < m - 1:  # reached stage j (any b_j) minus those with b_j < q_j: exit at stage j
                sums[..., c] += prefix(h, j) - prefix(h, j + 1)
            else:
                sums[..., c] += prefix(h, m - 1)
        if j > 0:
            cost = cost + macs[j] * prefix(counts, j)
    return (sums if d > 1 else sums[..., 0]), cost
