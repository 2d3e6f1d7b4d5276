"""A cascade of stages and its decision rule, as data: `CascadeConfig`, and `cascade_select`,
which runs one over the cached predictions (the reference semantics that the deployable
`deploy.CascadeClassifier` reproduces).

A cascade is an ordered list of stages (resolutions of one model, or models at resolutions),
cheapest first. Each image runs through stage 1; its prediction is accepted when the confidence
clears the stage's threshold, else the image goes on to the next stage; the last stage accepts
everything. A stage decides on its own prediction (`decide="own"`) or on the committee so far,
the average of the probabilities of every stage that ran (`decide="committee"`). The MACs of
every pass that ran are counted. Confidence is one of `confidence.CONFIDENCES`, or `learned`: a
small gate per stage (`gate.Gate`) fitted on the calibration images. A stage's threshold is
either shared by all images or chosen per predicted class (see `per_class`).
"""

import dataclasses

import numpy as np

from reswise_tf.selection.cascade import confidence as conf_lib
from reswise_tf.selection.cascade import per_class
from reswise_tf.selection.cascade.gate import Gate
from reswise_tf.selection.common import Selection, key_array
from reswise_tf.selection.pool import Committee, StagePool

DECISIONS = ("own", "committee")


@dataclasses.dataclass(frozen=True)
class CascadeConfig:
    """A fitted cascade.

    Attributes:
      stages: stage keys, cheapest first (resolutions of one sweep, or `"model@resolution"`
        names of a pool of sweeps); the last one accepts every image.
      thresholds: one per stage but the last: accept when confidence >= threshold
        (-inf accepts all, inf none). Either a number, shared by all images, or a sequence
        with one threshold per class id, applied by the class the stage predicts (its top-1;
        a class beyond the sequence is never accepted at that stage).
      confidence: one of `confidence.CONFIDENCES`, or "learned" (the stages' `gates`).
      temperatures: one per stage (1.0 = none); used by the calibrated kinds.
      kept_classes: classes the probabilities are renormalised over for the calibrated kinds
        (the K of the cache it was fitted on; None = all given).
      decide: "own" (each stage's own prediction) or "committee" (the mean of the
        probabilities of the stages so far).
      gates: with confidence "learned", one `gate.Gate` per stage but the last.
    """

    stages: tuple
    thresholds: tuple
    confidence: str = "max_prob"
    temperatures: tuple = ()
    kept_classes: int | None = None
    decide: str = "own"
    gates: tuple = ()

    def __post_init__(self):
        stages = _stage_keys(self.stages)
        if stages is None:
            raise ValueError(
                "`stages` should be distinct positive resolutions, cheapest first, or distinct stage names. "
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
        conf_lib.check_confidence(self.confidence, learned=True)
        if self.decide not in DECISIONS:
            raise ValueError(f"Unknown decide {self.decide!r}. Available: {', '.join(DECISIONS)}")
        gates = tuple(g if isinstance(g, Gate) else Gate.from_dict(g) for g in self.gates)
        expected = len(stages) - 1 if self.confidence == conf_lib.LEARNED else 0
        if len(gates) != expected:
            raise ValueError(f"`gates` should be {len(stages) - 1} gates (one per stage but the last) exactly when "
                             f"confidence='learned'. Received {len(gates)} gate(s), confidence={self.confidence!r}")
        object.__setattr__(self, "gates", gates)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "temperatures", temperatures)

    def decision_key(self, stage):
        """The key of what stage `stage` (0-based) decides on: its own stage, or the committee
        of the stages so far."""
        if self.decide == "own" or stage == 0:
            return self.stages[stage]
        return Committee(self.stages[: stage + 1])

    def stage_confidence(self, top_probs, stage, top_ids=None, previous_top1=None):
        """Confidence (n,) of the predictions of stage `stage` (0-based) from sorted top probs
        (a learned gate also reads the class ids and the previous stage's own top-1 class)."""
        top_probs = np.asarray(top_probs)
        if self.confidence == conf_lib.LEARNED:
            return self.gates[stage].confidence(top_ids, top_probs, previous_top1)
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

    def accept(self, top_probs, stage, top_ids=None, previous_top1=None):
        """Boolean (n,): whether stage `stage` keeps these predictions (`top_ids`, the class ids
        in the order of `top_probs`, are needed when the stage's thresholds are per class or
        its confidence is learned; a learned gate also reads the previous stage's top-1)."""
        if stage == len(self.stages) - 1:
            return np.ones(len(top_probs), bool)
        needs_ids = isinstance(self.thresholds[stage], tuple) or self.confidence == conf_lib.LEARNED
        if needs_ids and top_ids is None:
            raise ValueError(f"Stage {stage} has per-class thresholds or a learned gate: `accept` needs `top_ids`")
        t = self.stage_thresholds(top_ids, stage) if isinstance(self.thresholds[stage], tuple) else self.thresholds[stage]
        return self.stage_confidence(top_probs, stage, top_ids, previous_top1) >= t

    def describe(self, name=str):
        """E.g. "24>32 max_prob t=0.9"; `name(key)` writes a stage (a pool's `describe`)."""
        text = ">".join(map(name, self.stages))
        if len(self.stages) > 1:
            if self.decide == "committee":
                text += " committee"
            text += f" {self.confidence} t=" + ",".join(_describe_threshold(t) for t in self.thresholds)
            if conf_lib.is_calibrated(self.confidence):
                text += " T=" + ",".join(f"{t:.3g}" for t in self.temperatures[:-1])
        return text

    def to_dict(self):
        out = dataclasses.asdict(self) | {
            "stages": list(self.stages),
            "thresholds": [list(t) if isinstance(t, tuple) else t for t in self.thresholds],
            "temperatures": list(self.temperatures),
            "gates": [g.to_dict() for g in self.gates],
        }
        for name, default in (("decide", "own"), ("gates", [])):  # as before either existed
            if out[name] == default:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, d):
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def _stage_keys(stages):
    """Distinct positive resolutions in increasing order (one sweep), or distinct names; None
    when neither."""
    stages = tuple(stages)
    if not stages:
        return None
    if all(isinstance(r, (int, np.integer)) or (isinstance(r, float) and r.is_integer()) for r in stages):
        stages = tuple(int(r) for r in stages)
        return stages if all(r >= 1 for r in stages) and list(stages) == sorted(set(stages)) else None
    if all(isinstance(r, str) and r for r in stages) and len(set(stages)) == len(stages):
        return stages
    return None


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


def cascade_select(pool, config, rows):
    """Runs `config` over the cached predictions of `rows`: the reference semantics."""
    pool = StagePool.of(pool)
    pool.check_stages(config.stages, "stages")
    rows = np.asarray(rows, np.int64)
    keys = [config.decision_key(j) for j in range(len(config.stages))]
    chosen = key_array(keys)[np.zeros(len(rows), np.int64)] if len(rows) else key_array([])
    macs = np.zeros(len(rows), np.float64)
    pending = np.ones(len(rows), bool)
    previous = None
    for j, stage in enumerate(config.stages):
        macs[pending] += pool.macs[stage]
        table = pool.table(keys[j])
        accept = pending & config.accept(table.top_probs[rows], j, table.top_ids[rows], previous)
        chosen[accept] = keys[j]
        pending &= ~accept
        previous = pool.tables[stage].top_ids[rows, 0]
    return Selection(rows=rows, chosen=chosen, macs=macs)
