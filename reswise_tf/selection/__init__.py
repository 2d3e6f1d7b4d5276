"""The selection stage: per-image resolution selectors, pure functions over the cached
predictions of a sweep, and the deployable cascade.

Each selector is one module with one contract, `run(part, options) -> [SelectionResult]`: it
reads the `SweepCache` of `part` (no model is run) and reports on the images `part.rows`.

  fixed: one resolution for every image (the rows of the sweep table).
  random: a resolution drawn uniformly per image from a set; seeded trials (thesis Table 6).
  cascade: a cheap resolution first, larger ones only when unsure; fitted on a calibration part.
  oracle: the smallest resolution whose prediction is correct (reads labels: an upper bound),
    and the perfect-decision cascade bound at each FLOPs budget.
"""

from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.selection.cascade import CascadeFit
from reswise_tf.selection.cascade_config import CascadeConfig, cascade_select
from reswise_tf.selection.cascade_search import fit_cascade
from reswise_tf.selection.classifier import CascadeClassifier, CascadeOutput
from reswise_tf.selection.common import Part, Selection, SelectionResult, Split, split_rows
from reswise_tf.selection.registry import SELECTORS, SelectorSpec, get_selector
from reswise_tf.selection.run import SelectionReport, run_selection
from reswise_tf.selection.targets import Target

__all__ = [
    "SELECTORS",
    "CascadeClassifier",
    "CascadeConfig",
    "CascadeFit",
    "CascadeOutput",
    "Part",
    "Selection",
    "SelectionReport",
    "SelectionResult",
    "SelectorSpec",
    "Split",
    "SweepCache",
    "Target",
    "cascade_select",
    "fit_cascade",
    "get_selector",
    "run_selection",
    "split_rows",
]
