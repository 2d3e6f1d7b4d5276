"""Whole runs, each one call: a model's reduction study with its reports (`run_reduce`), the
offline default study (`run_study`), the notebook API (`evaluate`) and selection over one or
several models' sweeps (`select`), and the deployable cascade it fitted (`deploy_cascade`)."""

from reswise_tf.workflows.evaluate import Evaluation, evaluate
from reswise_tf.workflows.reduce import run_reduce
from reswise_tf.workflows.select import deploy_cascade, load_sweeps, select
from reswise_tf.workflows.study import run_study

__all__ = ["Evaluation", "deploy_cascade", "evaluate", "load_sweeps", "run_reduce", "run_study", "select"]
