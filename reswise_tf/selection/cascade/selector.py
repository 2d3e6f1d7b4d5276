"""The `cascade` selector: a cheap stage first, a costlier one only when it is unsure.

The cascade (`config`) is fitted on the calibration part of the images to meet each target
(`search`) and measured on the disjoint part the selection reports on. With several models, the
cascade over all their stages is reported, then each model's own (its resolutions only). With
`confidence="auto"` the learned gate competes with the confidence kinds on the calibration
part; where it wins, the best cascade without it is reported too, so that both are on the table.
"""

import dataclasses
import warnings

import numpy as np

from reswise_tf.selection.cascade import confidence as conf_lib
from reswise_tf.selection.cascade.config import DECISIONS, cascade_select
from reswise_tf.selection.cascade.search import THRESHOLD_KINDS, check_threshold_kinds, choose_cascade, search_cascades
from reswise_tf.selection.metrics import METRIC_NAMES, metric_named
from reswise_tf.selection.targets import DEFAULT_MAX_DROP, Target, check_targets
from reswise_tf.utils.checks import check_choice, check_positive_int

WITHOUT_GATE = "without the learned gate"
# Several models give hundreds of stage sets: per-class thresholds are fitted there on the top
# probability of two-stage cascades only (the learned gate reads the predicted class already),
# which keeps the search in seconds.
PER_CLASS_KINDS = ("max_prob",)


@dataclasses.dataclass(frozen=True)
class Options:
    """How the cascade is searched and what it must meet.

    Attributes:
      targets: `Target`s, one cascade fitted per target (None: max_drop 0.5, plus the random
        selector's FLOPs when that selector runs too).
      stages: fixed stages (thresholds still fitted), or None (searched).
      max_stages: most stages searched (one sweep: native included).
      confidence: one of `confidence.CONFIDENCES`, "learned", or "auto" (search all).
      thresholds: "shared", "per_class", or "auto" (search both).
      metric: what a `max_drop` is measured in: "top1", "top5" (the table's top-k), "miou",
        "pixel_acc", or "auto" (top-1; a segmentation: mIoU).
      decide: "own", "committee", or "auto" (one sweep: own; several models: both).
    """

    targets: tuple | None = None
    stages: tuple | None = None
    max_stages: int = 3
    confidence: str = "auto"
    thresholds: str = "auto"
    metric: str = "auto"
    decide: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "targets", check_targets(self.targets))
        check_positive_int(self.max_stages, "max_stages")
        check_choice(self.confidence, ("auto", *conf_lib.CONFIDENCES, conf_lib.LEARNED), "confidence")
        check_choice(self.thresholds, ("auto", *THRESHOLD_KINDS), "thresholds")
        check_choice(self.decide, ("auto", *DECISIONS), "decide")
        check_choice(self.metric, ("auto", *METRIC_NAMES), "metric")

    def check_pool(self, pool, topk):
        """Raises ValueError, naming the option, for a choice `pool` cannot take: a metric of the
        other task; on a segmentation (one confidence per image, its mean top probability; no
        class to fit per-class thresholds on, no probabilities to average) anything but
        max_prob, shared thresholds and each stage deciding on its own."""
        metric_named(self.metric, pool, topk)
        if pool.task != "segmentation":
            return
        for name, value, allowed in (("confidence", self.confidence, ("auto", "max_prob")),
                                     ("thresholds", self.thresholds, ("auto", "shared")),
                                     ("decide", self.decide, ("auto", "own"))):
            if value not in allowed:
                raise ValueError(f"`{name}` should be {' or '.join(allowed)} for a segmentation cache (one "
                                 f"confidence per image: its mean top probability). Received {name}={value!r}")

    def confidences(self, pool):
        """The confidence kinds searched: all ("auto"; a segmentation has one, its mean pixel
        confidence: "max_prob"), or the one asked for."""
        if self.confidence != "auto":
            return (self.confidence,)
        return ("max_prob",) if pool.task == "segmentation" else (*conf_lib.CONFIDENCES, conf_lib.LEARNED)

    def threshold_kinds(self, pool):
        if self.thresholds == "auto":
            return check_threshold_kinds("shared" if pool.task == "segmentation" else THRESHOLD_KINDS)
        return check_threshold_kinds(self.thresholds)

    def decisions(self, pool):
        if self.decide != "auto":
            return (self.decide,)
        return ("own",) if pool.single or pool.task == "segmentation" else DECISIONS


def run(part, options):
    """Fits one cascade per target on `part.calibration` and measures each on `part.rows`.
    Each result's `extra["fit"]` is its `CascadeFit`."""
    if part.calibration is None or np.intersect1d(part.rows, part.calibration).size:
        raise ValueError(
            "The cascade is fitted on a calibration part disjoint from the images it reports on; "
            "the calibration and evaluation parts share images (or there is no calibration part)"
        )
    targets = options.targets or (Target.max_drop(DEFAULT_MAX_DROP),)
    pool = part.pool
    groups = [None] if pool.single or options.stages else [None, *models(pool).values()]
    results = []
    for candidates in groups:  # every stage, then (several models) each model's own
        search = search_cascades(pool, part.calibration, stages=options.stages, max_stages=options.max_stages,
                                 confidences=options.confidences(pool),
                                 metric=metric_named(options.metric, pool, part.topk),
                                 thresholds=options.threshold_kinds(pool), decisions=options.decisions(pool),
                                 candidates=candidates, per_class_kinds=None if pool.single else PER_CLASS_KINDS,
                                 progress=part.progress if candidates is None else None)
        plain = dataclasses.replace(search, blocks=[b for b in search.blocks if _kind(b) != conf_lib.LEARNED])
        for target in targets:
            fit = _chosen(search, target, candidates)
            if fit is None:
                continue
            results.append(_measured(part, fit, alternative=candidates is not None))
            if candidates is None and fit.config.confidence == conf_lib.LEARNED and plain.blocks:
                results.append(_measured(part, choose_cascade(plain, target), WITHOUT_GATE))
    return results


def models(pool):
    """{model: its stages} of a pool of several sweeps (keys `model@resolution`)."""
    out = {}
    for key in pool.stages:
        out.setdefault(str(key).rpartition("@")[0], []).append(key)
    return out


def _chosen(search, target, candidates):
    """The fit for `target`; None (with a warning, for the cascade over every stage) where no
    searched cascade meets it (a budget below the cheapest stage, a gain none reaches)."""
    try:
        return choose_cascade(search, target)
    except ValueError as e:
        if candidates is None:
            warnings.warn(str(e), stacklevel=4)
        return None


def _kind(block):
    return block[2](0).confidence


def _measured(part, fit, note="", alternative=False):
    selection = cascade_select(part.pool, fit.config, part.rows)
    setting = f"{fit.config.describe(part.pool.describe)} ({fit.target} on calibration{', ' + note if note else ''})"
    extra = {"fit": fit, **({"alternative": True} if note or alternative else {})}
    return dataclasses.replace(part.summarize(selection, selector="cascade", setting=setting), extra=extra)


def curve(part, fit, *, max_points=40):
    """The calibration Pareto front of `fit`, measured on `part.rows` (thinned to `max_points`)."""
    front = fit.front
    if len(front) > max_points:
        keep = np.unique(np.linspace(0, len(front) - 1, max_points).round().astype(int))
        front = [front[i] for i in keep]
    return [
        part.summarize(cascade_select(part.pool, config, part.rows), selector="cascade_curve",
                       setting=config.describe(part.pool.describe))
        for config, _, _ in front
    ]
