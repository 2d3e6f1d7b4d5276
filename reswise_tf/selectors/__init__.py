"""Per-image resolution selectors: pure functions over the cached predictions of a sweep.

Each selector is one module with one contract,
`run(cache, rows, *, part, topk=5, **options) -> [SelectionResult]`: it reads the
`SweepCache` (no model is run) and reports on the images `rows` of the cache.

  fixed: one resolution for every image (the rows of the sweep table).
  random: a resolution drawn uniformly per image from a set; seeded trials (thesis Table 6).
  cascade: a cheap resolution first, larger ones only when unsure; fitted on a calibration part.
  oracle: the smallest resolution whose prediction is correct (reads labels: an upper bound).
"""

import dataclasses
from collections.abc import Callable

from reswise_tf.selectors import cascade, fixed, oracle, random_choice
from reswise_tf.selectors.cascade import CascadeConfig, cascade_select, fit_cascade
from reswise_tf.selectors.common import Selection, SelectionResult, SweepCache, split_rows


@dataclasses.dataclass(frozen=True)
class SelectorSpec:
    """A registered selector.

    Attributes:
      name: registry key.
      run: `run(cache, rows, *, part, topk=5, **options) -> [SelectionResult]`.
      needs_calibration: it is fitted on a calibration part (`calibration_rows=` option).
      deployable: it can run without labels.
    """

    name: str
    run: Callable
    needs_calibration: bool = False
    deployable: bool = True


SELECTORS = {
    spec.name: spec
    for spec in (
        SelectorSpec("cascade", cascade.run, needs_calibration=True),
        SelectorSpec("fixed", fixed.run),
        SelectorSpec("oracle", oracle.run, deployable=False),
        SelectorSpec("random", random_choice.run),
    )
}


def get_selector(name):
    """The `SelectorSpec` registered as `name`; the error lists the valid names."""
    try:
        return SELECTORS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown selector {name!r}. Available: {', '.join(sorted(SELECTORS))}"
        ) from None


__all__ = [
    "SELECTORS",
    "CascadeConfig",
    "Selection",
    "SelectionResult",
    "SelectorSpec",
    "SweepCache",
    "cascade_select",
    "fit_cascade",
    "get_selector",
    "split_rows",
]
