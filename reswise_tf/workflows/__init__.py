"""Whole runs, each one call: a model's reduction study with its reports (`run_reduce`), the
offline default study (`run_study`), the notebook API (`evaluate`) and selection over one or
several models' sweeps (`select`)."""

from reswise_tf.workflows.evaluate import Evaluation, evaluate
from reswise_tf.workflows.reduce import run_reduce
from reswise_tf.workflows.select import load_sweeps, select
from reswise_tf.workflows.study import run_study

__all__ = ["Evaluation", "evaluate", "load_sweeps", "run_reduce", "run_study", "select"]
