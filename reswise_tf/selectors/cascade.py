"""The `cascade` selector: a cheap resolution first, a larger one only when it is unsure.

A cascade is an ordered subset of the sweep's resolutions, cheapest first, ending at native.
Each image runs through stage 1; its prediction is accepted when the confidence clears the
stage's threshold, else the image goes on to the next stage; the last stage accepts everything.
The MACs of every pass that ran are counted. Confidence is one of `confidence.CONFIDENCES`.
A stage's threshold is either shared by all images or chosen per predicted class (a
low-resolution pass is confidently wrong on some classes and reliable on others; see
`per_class`).

Stages, thresholds, the confidence kind and the per-resolution temperatures are all fitted on a
calibration part of the data (`fit_cascade`) to meet a target: at most `max_drop` points below
native, or at most `flops_budget` x the native FLOPs. The search only reads the cache: for each
stage set and confidence kind, every combination of per-stage thresholds is scored at once from
a histogram of the images over confidence bins and its prefix sums. The cascade is then measured
on the disjoint evaluation part (`run`).
"""

import dataclasses
import functools
import itertools

import numpy as np

from reswise_tf.selectors import confidence as conf_lib
from reswise_tf.selectors import per_class
from reswise_tf.selectors.common import Selection, summarize

# Upper bound on the threshold combinations scored per stage set and confidence kind.
_GRID_CELLS = 2**16
# How thresholds may be set: one per stage shared by all images, or one per predicted class.
THRESHOLD_KINDS = ("shared", "per_class")


@dataclasses.dataclass(frozen=True)
class CascadeConfig:
    """A fitted cascade.

    Attributes:
      stages: resolutions (pixels), cheapest first; the last one accepts every image.
      thresholds: one per stage but the last: accept when confidence >= threshold
        (-inf accepts all, inf none). Either a number, shared by all images, or a sequence
        with one threshold per class id, applied by the class the stage predicts (its top-1;
        a class beyond the sequence is never accepted at that stage).
      confidence: one of `confidence.CONFIDENCES`.
      temperatures: one per stage (1.0 = none); used by the calibrated kinds.
      kept_classes: classes the probabilities are renormalised over for the calibrated kinds
        (the K of the cache it was fitted on; None = all given).
    """

    stages: tuple
    thresholds: tuple
    confidence: str = "max_prob"
    temperatures: tuple = ()
    kept_classes: int | None = None

    def __post_init__(self):
        stages = tuple(int(r) for r in self.stages)
        if not stages or any(r < 1 for r in stages) or list(stages) != sorted(set(stages)):
            raise ValueError(
                "`stages` should be distinct positive resolutions, cheapest first. "
                f"Received stages={list(self.stages)}"
            )
        thresholds = tuple(_stage_threshold(t) for t in self.thresholds)
        if len(thresholds) != len(stages) - 1 or any(
            t is None or np.any(np.isnan(t)) for t in thresholds
        ):
            raise ValueError(
                f"`thresholds` should be {len(stages) - 1} entries (one per stage but the last), "
                "each a number or a non-empty list with one number per class. "
                f"Received thresholds={list(self.thresholds)}"
            )
        temperatures = tuple(float(t) for t in self.temperatures) or (1.0,) * len(stages)
        if len(temperatures) != len(stages) or not all(0 < t < np.inf for t in temperatures):
            raise ValueError(
                f"`temperatures` should be {len(stages)} positive numbers (one per stage). "
                f"Received temperatures={list(self.temperatures)}"
            )
        conf_lib.check_confidence(self.confidence)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "temperatures", temperatures)

    def stage_confidence(self, top_probs, stage):
        """Confidence (n,) of the predictions of stage `stage` (0-based) from sorted top probs."""
        top_probs = np.asarray(top_probs)
        if self.kept_classes is not None and conf_lib.is_calibrated(self.confidence):
            top_probs = top_probs[:, : self.kept_classes]
        return conf_lib.confidence(top_probs, self.confidence, self.temperatures[stage])

    @property
    def per_class(self):
        """Whether any stage has per-class thresholds."""
        return any(isinstance(t, tuple) for t in self.thresholds)

    def stage_thresholds(self, top_ids, stage):
        """Threshold (n,) of each image at stage `stage` (0-based, not the last), by the class
        that stage predicts (`top_ids[:, 0]`) when its thresholds are per class."""
        t = self.thresholds[stage]
        if not isinstance(t, tuple):
            return np.full(len(top_ids), t)
        return per_class.lookup(t, np.asarray(top_ids)[:, 0])

    def accept(self, top_probs, stage, top_ids=None):
        """Boolean (n,): whether stage `stage` keeps these predictions (`top_ids`, the class ids
        in the order of `top_probs`, are needed when the stage's thresholds are per class)."""
        if stage == len(self.stages) - 1:
            return np.ones(len(top_probs), bool)
        if isinstance(self.thresholds[stage], tuple):
            if top_ids is None:
                raise ValueError(
                    f"Stage {stage} has per-class thresholds: `accept` needs `top_ids`"
                )
            t = self.stage_thresholds(top_ids, stage)
        else:
            t = self.thresholds[stage]
        return self.stage_confidence(top_probs, stage) >= t

    def describe(self):
        text = ">".join(map(str, self.stages))
        if len(self.stages) > 1:
            text += f" {self.confidence} t=" + ",".join(_describe_threshold(t) for t in self.thresholds)
            if conf_lib.is_calibrated(self.confidence):
                text += " T=" + ",".join(f"{t:.3g}" for t in self.temperatures[:-1])
        return text

    def to_dict(self):
        return dataclasses.asdict(self) | {
            "stages": list(self.stages),
            "thresholds": [list(t) if isinstance(t, tuple) else t for t in self.thresholds],
            "temperatures": list(self.temperatures),
        }

    @classmethod
    def from_dict(cls, d):
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def _stage_threshold(t):
    """A float, or a tuple of floats for per-class thresholds; None when malformed."""
    if isinstance(t, (str, bytes)):
        return None
    if np.ndim(t) == 0:
        try:
            return float(t)
        except (TypeError, ValueError):
            return None
    try:
        values = tuple(float(x) for x in t)
    except (TypeError, ValueError):
        return None
    return values if values and np.ndim(t) == 1 else None


def _describe_threshold(t):
    if not isinstance(t, tuple):
        return f"{t:.4g}"
    finite = np.asarray(t)[np.isfinite(t)]
    median = f"median {np.median(finite):.3g}, " if len(finite) else ""
    never = int(np.sum(np.isposinf(t)))
    return f"per-class[{median}{len(t) - never}/{len(t)} classes accepted]"


def cascade_select(cache, config, rows):
    """Runs `config` over the cached predictions of `rows`: the reference semantics."""
    cache.check_resolutions(config.stages, "stages")
    rows = np.asarray(rows, np.int64)
    chosen = np.zeros(len(rows), np.int64)
    macs = np.zeros(len(rows), np.float64)
    pending = np.ones(len(rows), bool)
    for j, r in enumerate(config.stages):
        macs[pending] += cache.macs[r]
        table = cache.tables[r]
        accept = pending & config.accept(table.top_probs[rows], j, table.top_ids[rows])
        chosen[accept] = r
        pending &= ~accept
    return Selection(rows=rows, chosen=chosen, macs=macs)


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


def check_target(max_drop=None, flops_budget=None):
    """Exactly one target; returns ("max_drop" | "flops_budget", value)."""
    if (max_drop is None) == (flops_budget is None):
        raise ValueError(
            "Give exactly one cascade target: max_drop (points) or flops_budget (fraction of "
            f"native FLOPs). Received max_drop={max_drop!r}, flops_budget={flops_budget!r}"
        )
    if max_drop is not None:
        if not isinstance(max_drop, (int, float)) or not 0 <= max_drop < np.inf:
            raise ValueError(
                f"`max_drop` should be a number of accuracy points >= 0. Received max_drop={max_drop!r}"
            )
        return "max_drop", float(max_drop)
    if not isinstance(flops_budget, (int, float)) or not 0 < flops_budget <= 1:
        raise ValueError(
            "`flops_budget` should be a fraction of the native FLOPs in (0, 1]. "
            f"Received flops_budget={flops_budget!r}"
        )
    return "flops_budget", float(flops_budget)


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
    if isinstance(max_stages, bool) or not isinstance(max_stages, int) or max_stages < 1:
        raise ValueError(
            f"`max_stages` should be a positive integer. Received max_stages={max_stages!r}"
        )
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
):
    """Scores every stage set, confidence kind and threshold combination on the images `rows`
    (only those are read). Temperatures are fitted per resolution on the same images.

    `thresholds` names the kinds of thresholds searched (`THRESHOLD_KINDS`): "shared" scores
    every combination of one threshold per stage; "per_class" the per-class thresholds of
    `per_class.price_sweep` at each price."""
    for c in confidences:
        conf_lib.check_confidence(c)
    thresholds = check_threshold_kinds(thresholds)
    rows = np.asarray(rows, np.int64)
    n = len(rows)
    if n == 0:
        raise ValueError("The calibration part is empty")
    sets = stage_sets(cache, stages, max_stages)
    temps = {}
    if any(conf_lib.is_calibrated(c) for c in confidences):
        for r in sorted({r for s in sets for r in s[:-1]}):
            t = cache.tables[r]
            temps[r] = conf_lib.fit_temperature(t.top_ids[rows], t.top_probs[rows], t.labels[rows])
    blocks = []
    for stage_set in sets:
        for c in confidences if len(stage_set) > 1 else confidences[:1]:
            temperatures = tuple(temps.get(r, 1.0) for r in stage_set)
            probe = CascadeConfig(stage_set, (0.0,) * (len(stage_set) - 1), c, temperatures)
            confs = [
                probe.stage_confidence(cache.top_probs(r)[rows], j)
                for j, r in enumerate(stage_set[:-1])
            ]
            if "shared" in thresholds or len(stage_set) == 1:
                cands = [_threshold_candidates(x, len(stage_set) - 1) for x in confs]
                oks = [cache.correct(r, metric_k)[rows] for r in stage_set]
                correct, cost = _score_grid(confs, cands, oks, [cache.macs[r] for r in stage_set])
                make = functools.partial(
                    _config_at, stage_set, c, temperatures, cands, cache.num_classes_kept
                )
                blocks.append((100.0 * correct.ravel() / n, cost.ravel() / n, make))
            if "per_class" in thresholds and len(stage_set) > 1:
                swept = per_class.price_sweep(cache, rows, stage_set, probe, metric_k=metric_k)
                configs = [
                    CascadeConfig(stage_set, t, c, temperatures, cache.num_classes_kept)
                    for t, _, _ in swept
                ]
                correct = np.array([x[1] for x in swept])
                cost = np.array([x[2] for x in swept])
                blocks.append((100.0 * correct / n, cost / n, configs.__getitem__))
    return CascadeSearch(
        blocks=blocks,
        native_accuracy=100.0 * float(np.mean(cache.correct(cache.native, metric_k)[rows])),
        native_macs=cache.macs[cache.native],
        num_examples=n,
        metric_k=metric_k,
    )


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


def choose_cascade(search, *, max_drop=None, flops_budget=None):
    """The searched cascade that meets one target, as a `CascadeFit`.

    With `max_drop`: the cheapest cascade at most `max_drop` points below native. With
    `flops_budget`: the most accurate one with mean FLOPs at most `flops_budget` x native.
    Ties go to the more accurate, then the cheaper, then the one with fewer stages.
    """
    kind, value = check_target(max_drop, flops_budget)
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
        target=f"{kind}={value:.4g}",
        calibration={
            "num_examples": search.num_examples,
            "metric": f"top{search.metric_k}",
            "accuracy": acc,
            "drop": search.native_accuracy - acc,
            "mean_macs": cost,
            "flops_drop_pct": 100.0 * (1.0 - cost / search.native_macs),
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
    check_target(max_drop, flops_budget)
    search = search_cascades(
        cache,
        rows,
        stages=stages,
        max_stages=max_stages,
        confidences=confidences,
        metric_k=metric_k,
        thresholds=thresholds,
    )
    return choose_cascade(search, max_drop=max_drop, flops_budget=flops_budget)


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


def run(
    cache,
    rows,
    *,
    part,
    topk=5,
    calibration_rows,
    targets=({"max_drop": 0.5},),
    stages=None,
    max_stages=3,
    confidence="auto",
    metric_k=1,
    thresholds=THRESHOLD_KINDS,
):
    """Fits one cascade per target (`{"max_drop": points}` or `{"flops_budget": fraction}`) on
    `calibration_rows` and measures each on the disjoint `rows`. Each result's `extra["fit"]`
    is its `CascadeFit`."""
    rows, calibration_rows = np.asarray(rows), np.asarray(calibration_rows)
    if np.intersect1d(rows, calibration_rows).size:
        raise ValueError(
            "The calibration and evaluation parts share images: fit the cascade on a disjoint part"
        )
    if confidence == "auto":
        confidences = conf_lib.CONFIDENCES
    elif confidence in conf_lib.CONFIDENCES:
        confidences = (confidence,)
    else:
        raise ValueError(
            f"Unknown confidence {confidence!r}. Available: auto, {', '.join(conf_lib.CONFIDENCES)}"
        )
    for target in targets:
        check_target(**target)
    search = search_cascades(
        cache,
        calibration_rows,
        stages=stages,
        max_stages=max_stages,
        confidences=confidences,
        metric_k=metric_k,
        thresholds=thresholds,
    )
    results = []
    for target in targets:
        fit = choose_cascade(search, **target)
        result = summarize(
            cache,
            cascade_select(cache, fit.config, rows),
            selector="cascade",
            setting=f"{fit.config.describe()} ({fit.target} on calibration)",
            part=part,
            topk=topk,
        )
        results.append(dataclasses.replace(result, extra={"fit": fit}))
    return results


def curve(cache, fit, rows, *, part, topk=5, max_points=40):
    """The calibration Pareto front of `fit`, measured on `rows` (thinned to `max_points`)."""
    front = fit.front
    if len(front) > max_points:
        keep = np.unique(np.linspace(0, len(front) - 1, max_points).round().astype(int))
        front = [front[i] for i in keep]
    return [
        summarize(
            cache,
            cascade_select(cache, config, rows),
            selector="cascade_curve",
            setting=config.describe(),
            part=part,
            topk=topk,
        )
        for config, _, _ in front
    ]
