"""The report stage: tables (CSV, Markdown) and figures of sweeps and selection studies, the
thesis's numbers beside ours and its Table 7, made from caches and rows alone, never by running
a model."""

from reswise_tf.report import figures, literature, selection_report, tables, thesis
from reswise_tf.report.sweep import write_reports

__all__ = ["figures", "literature", "selection_report", "tables", "thesis", "write_reports"]
