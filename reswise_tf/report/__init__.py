"""The report stage: tables (CSV, Markdown) and figures of sweeps and selection studies, and
the literature comparison, made from caches and rows alone, never by running a model."""

from reswise_tf.report import figures, literature, selection, tables
from reswise_tf.report.sweep import write_reports

__all__ = ["figures", "literature", "selection", "tables", "write_reports"]
