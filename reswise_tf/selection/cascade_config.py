"""A cascade of resolutions and its decision rule, as data: `CascadeConfig`, and
`cascade_select`, which runs one over the cached predictions (the reference semantics that the
deployable `CascadeClassifier` reproduces).

A cascade is an ordered subset of the sweep's resolutions, cheapest first, ending at native.
Each image runs through stage 1; its prediction is accepted when the confidence clears the
stage's threshold, else the image goes on to the next stage; the last stage accepts everything.
The MACs of every pass that ran are counted. Confidence is one of `confidence.CONFIDENCES`. A
stage's threshold is either shared by all images or chosen per predicted class (see
`per_class`).
"""

import dataclasses

import numpy as np

from reswise_tf.selection import confidence as conf_lib
from reswise_tf.selection import per_class
from reswise_tf.selection.common import Selection


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
