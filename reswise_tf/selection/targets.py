"""What a fitted selector aims at: at most `max_drop` accuracy points below the reference stage
(native, for one sweep), or at most `flops_budget` x its FLOPs. A budget may come from another
selector (the random selector's mean FLOPs); where it came from is a field, shown wherever the
target is named. A target may be measured against a reference of its own (`against`): another
stage, or `committee`, the committee of every model's native (e.g. "within 0.1 points of the
committee", "at most 0.33 of the committee's FLOPs"); written `0.1@committee`. A negative
`max_drop` asks for a gain; a budget above 1 allows more than the reference's FLOPs."""

import dataclasses
import math

KINDS = ("max_drop", "flops_budget")
RANDOM = "random"  # a flops budget given as 'random': the random selector's expected mean FLOPs
COMMITTEE = "committee"  # a target's reference: the committee of every model's native stage
DEFAULT_MAX_DROP = 0.5  # points: the cascade's target when none is given


@dataclasses.dataclass(frozen=True)
class Target:
    """One target.

    Attributes:
      kind: "max_drop" (points of accuracy below native) or "flops_budget" (fraction of the
        native FLOPs).
      value: the number; None for a budget still to be matched to `source`.
      source: where a budget came from (e.g. "random", the random selector's FLOPs), or None.
      against: the stage key (or `COMMITTEE`) the target is measured against; None: the
        pool's reference.
    """

    kind: str
    value: float | None
    source: str | None = None
    against: object = None

    def __post_init__(self):
        number = isinstance(self.value, (int, float)) and not isinstance(self.value, bool)
        if self.kind == "max_drop":
            if not (number and -100 <= self.value < math.inf):
                raise ValueError(
                    "`max_drop` should be a number of accuracy points (negative: a gain), optionally @REFERENCE. "
                    f"Received max_drop={self.value!r}"
                )
        elif self.kind == "flops_budget":
            pending = self.value is None and self.source is not None
            if not (pending or (number and 0 < self.value < math.inf)):
                raise ValueError(
                    "`flops_budget` should be a fraction > 0 of the reference's FLOPs (optionally @REFERENCE) "
                    f"or 'random'. Received flops_budget={self.value!r}"
                )
        else:
            raise ValueError(f"Unknown target {self.kind!r}. Available: {', '.join(KINDS)}")
        if self.value is not None:
            object.__setattr__(self, "value", float(self.value))

    @classmethod
    def max_drop(cls, points):
        """A drop from a number or a string `POINTS[@REFERENCE]`."""
        value, against = _parse(points, "max_drop")
        return cls("max_drop", value, against=against)

    @classmethod
    def flops_budget(cls, value):
        """A budget from a fraction, a string `FRACTION[@REFERENCE]`, or 'random' (matched later)."""
        if value == RANDOM:
            return cls("flops_budget", None, RANDOM)
        value, against = _parse(value, "flops_budget")
        return cls("flops_budget", value, against=against)

    @property
    def pending(self):
        return self.value is None

    def matched(self, fraction):
        """This budget with its value set from its source (`fraction` of native FLOPs)."""
        return dataclasses.replace(self, value=fraction) if self.pending else self

    def describe(self):
        """E.g. "max_drop=0.5", "flops_budget=0.6123, random's FLOPs", "max_drop=0.1@committee"."""
        if self.pending:
            return f"{self.kind}={self.source}"
        text = f"{self.kind}={self.value:.4g}" + (f"@{self.against}" if self.against is not None else "")
        return f"{text}, {self.source}'s FLOPs" if self.source else text


def _parse(value, kind):
    """(number, reference or None) of `value`: a number, or a string `NUMBER[@REFERENCE]`."""
    if not isinstance(value, str):
        return value, None
    number, _, against = value.partition("@")
    try:
        return float(number), (against or None)
    except ValueError:
        raise ValueError(f"`{kind}` should be a number, optionally @REFERENCE (a stage or 'committee'). "
                         f"Received {kind}={value!r}") from None


def check_targets(targets):
    """`targets` as a tuple of `Target`s (None stays None: the caller's default)."""
    if targets is None:
        return None
    targets = tuple(targets)
    if not all(isinstance(t, Target) for t in targets):
        raise ValueError(f"`targets` should be Targets. Received targets={targets!r}")
    return targets


def check_target(max_drop=None, flops_budget=None):
    """Exactly one of the two as a `Target`."""
    if (max_drop is None) == (flops_budget is None):
        raise ValueError(
            "Give exactly one cascade target: max_drop (points) or flops_budget (fraction of "
            f"native FLOPs). Received max_drop={max_drop!r}, flops_budget={flops_budget!r}"
        )
    return Target.max_drop(max_drop) if max_drop is not None else Target.flops_budget(flops_budget)
