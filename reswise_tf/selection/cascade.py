"""The `cascade` selector: a cheap resolution first, a larger one only when it is unsure.

The cascade (`cascade_config`) is fitted on the calibration part of the images to meet each
target (`cascade_search`) and measured on the disjoint part the selection reports on.
"""

import dataclasses

import numpy as np

from reswise_tf.selection import confidence as conf_lib
from reswise_tf.selection.cascade_config import CascadeConfig, cascade_select
from reswise_tf.selection.cascade_search import (
    THRESHOLD_KINDS,
    CascadeFit,
    check_threshold_kinds,
    choose_cascade,
    fit_cascade,
    search_cascades,
    stage_sets,
)
from reswise_tf.selection.targets import Target, check_targets, metric_k
from reswise_tf.utils.checks import check_choice, check_positive_int

__all__ = ["CascadeConfig", "CascadeFit", "Options", "cascade_select", "curve", "fit_cascade", "run", "stage_sets"]

@dataclasses.dataclass(frozen=True)
class Options:
    """How the cascade is searched and what it must meet.

    Attributes:
      targets: `Target`s, one cascade fitted per target (None: max_drop 0.5, plus the random
        selector's FLOPs when that selector runs too).
      stages: fixed stages ending at native (thresholds still fitted), or None (searched).
      max_stages: most stages searched, native included.
      confidence: one of `confidence.CONFIDENCES`, or "auto" (search all).
      thresholds: "shared", "per_class", or "auto" (search both).
      metric: the accuracy a `max_drop` is measured in: "top1" or "top5" (the table's top-k).
    """

    targets: tuple | None = None
    stages: tuple | None = None
    max_stages: int = 3
    confidence: str = "auto"
    thresholds: str = "auto"
    metric: str = "top1"

    def __post_init__(self):
        object.__setattr__(self, "targets", check_targets(self.targets))
        check_positive_int(self.max_stages, "max_stages")
        check_choice(self.confidence, ("auto", *conf_lib.CONFIDENCES), "confidence")
        check_choice(self.thresholds, ("auto", *THRESHOLD_KINDS), "thresholds")
        metric_k(self.metric, 1)

    @property
    def confidences(self):
        return conf_lib.CONFIDENCES if self.confidence == "auto" else (self.confidence,)

    @property
    def threshold_kinds(self):
        return check_threshold_kinds(THRESHOLD_KINDS if self.thresholds == "auto" else self.thresholds)


def run(part, options):
    """Fits one cascade per target on `part.calibration` and measures each on `part.rows`.
    Each result's `extra["fit"]` is its `CascadeFit`."""
    if part.calibration is None or np.intersect1d(part.rows, part.calibration).size:
        raise ValueError(
            "The cascade is fitted on a calibration part disjoint from the images it reports on; "
            "the calibration and evaluation parts share images (or there is no calibration part)"
        )
    targets = options.targets or (Target.max_drop(0.5),)
    search = search_cascades(part.cache, part.calibration, stages=options.stages, max_stages=options.max_stages,
                             confidences=options.confidences, metric_k=metric_k(options.metric, part.topk),
                             thresholds=options.threshold_kinds, progress=part.progress)
    results = []
    for target in targets:
        fit = choose_cascade(search, target)
        selection = cascade_select(part.cache, fit.config, part.rows)
        result = part.summarize(selection, selector="cascade",
                                setting=f"{fit.config.describe()} ({fit.target} on calibration)")
        results.append(dataclasses.replace(result, extra={"fit": fit}))
    return results


def curve(part, fit, *, max_points=40):
    """The calibration Pareto front of `fit`, measured on `part.rows` (thinned to `max_points`)."""
    front = fit.front
    if len(front) > max_points:
        keep = np.unique(np.linspace(0, len(front) - 1, max_points).round().astype(int))
        front = [front[i] for i in keep]
    return [
        part.summarize(cascade_select(part.cache, config, part.rows), selector="cascade_curve",
                       setting=config.describe())
        for config, _, _ in front
    ]
