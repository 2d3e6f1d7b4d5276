"""The files of a sweep's report: results.csv, results.md and the figures."""

import os

from reswise_tf.report import figures, tables
from reswise_tf.utils.files import atomic_write_text


def write_reports(rows, output_dir, native_resolution, title):
    """Writes results.csv, results.md, accuracy_vs_resolution.png, accuracy_vs_flops.png and,
    with latency columns, flops_drop_vs_speedup.png into `output_dir`."""
    atomic_write_text(os.path.join(output_dir, "results.csv"), tables.to_csv(rows))
    atomic_write_text(os.path.join(output_dir, "results.md"), tables.to_markdown(rows, title))
    figures.save_figure(figures.plot_accuracy_vs_resolution(rows, native_resolution, title),
                        os.path.join(output_dir, "accuracy_vs_resolution.png"))
    figures.save_figure(figures.plot_accuracy_vs_flops(rows, title), os.path.join(output_dir, "accuracy_vs_flops.png"))
    if "speedup_b1" in rows[0]:
        figures.save_figure(figures.plot_speedup_vs_flops(rows, title),
                            os.path.join(output_dir, "flops_drop_vs_speedup.png"))
