"""The cascade: stages of increasing cost, each accepting the images it is sure of.

  config      `CascadeConfig` (stages, thresholds, decision rule) and `cascade_select`, the
              reference semantics over the cache
  confidence  confidence kinds and temperature fitting
  gate        the learned deferral rule (a logistic regression per stage)
  per_class   per-class thresholds by a price sweep
  search      scoring every stage set, rule and threshold on the calibration images
  selector    the `cascade` selector (`Options`, `run`, `curve`)
"""

from reswise_tf.selection.cascade.config import CascadeConfig, cascade_select
from reswise_tf.selection.cascade.search import CascadeFit, choose_cascade, fit_cascade, search_cascades, stage_sets
from reswise_tf.selection.cascade.selector import Options, curve, run

__all__ = ["CascadeConfig", "CascadeFit", "Options", "cascade_select", "choose_cascade", "curve", "fit_cascade", "run",
           "search_cascades", "stage_sets"]
