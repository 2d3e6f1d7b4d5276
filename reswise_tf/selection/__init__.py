"""The selection stage: per-image selectors of a stage (a model at a resolution), pure numpy
functions over the cached predictions of one sweep or of several models' sweeps of the same
images (no TensorFlow: the deployable cascade is the `deploy` stage).

Each selector is one module with one contract, `run(part, options) -> [SelectionResult]`: it
reads the `StagePool` of `part` (no model is run) and reports on the images `part.rows`.

  fixed: one stage for every image (the rows of the sweep tables).
  random: a stage drawn uniformly per image from a set; seeded trials (thesis Table 6).
  cascade: a cheap stage first, costlier ones only when unsure; fitted on a calibration part.
  oracle: the cheapest stage whose prediction is correct (reads labels: an upper bound), and
    the perfect-decision cascade bound at each FLOPs budget.
"""

from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.selection.cascade import CascadeConfig, CascadeFit, cascade_select, fit_cascade
from reswise_tf.selection.common import Part, Selection, SelectionResult, Split, split_rows
from reswise_tf.selection.metrics import TopK
from reswise_tf.selection.pool import Committee, StagePool
from reswise_tf.selection.registry import SELECTORS, SelectorSpec, get_selector
from reswise_tf.selection.run import SelectionReport, run_selection
from reswise_tf.selection.targets import Target

__all__ = [
    "SELECTORS",
    "CascadeConfig",
    "CascadeFit",
    "Committee",
    "Part",
    "Selection",
    "SelectionReport",
    "SelectionResult",
    "SelectorSpec",
    "Split",
    "StagePool",
    "SweepCache",
    "Target",
    "TopK",
    "cascade_select",
    "fit_cascade",
    "get_selector",
    "run_selection",
    "split_rows",
]
