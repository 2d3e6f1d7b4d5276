"""A selection study's files say what the report holds: selection.csv is the report's rows,
selection.md prints each row's numbers with drops as the thesis prints them and the random
selector's Table 6, cascade_fits.json reads back as the fitted configs, selection_split.npz
names the two parts by dataset index, and the Pareto figure is written."""

import numpy as np

from reswise_tf.report import selection_report, tables
from reswise_tf.selection import run_selection
from reswise_tf.utils.formatting import drop
from tests.helpers import synthetic_tables


def test_the_files_of_a_selection_study(tmp_path):
    report = run_selection(synthetic_tables(n=600), ("fixed", "random", "cascade", "oracle"), max_drops=[1.0],
                           trials=3)
    written = selection_report.write_reports(report, str(tmp_path), "Study S")
    assert sorted(written) == sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["selection.csv", "selection.md", "pareto.png", "cascade_curve.csv", "cascade_fits.json",
         "selection_split.npz"])

    csv_rows = tables.read_csv(str(tmp_path / "selection.csv"))
    assert [(r["selector"], r["setting"]) for r in csv_rows] == [(r.selector, r.setting) for r in report.results]
    for got, want in zip(csv_rows, report.rows):
        assert got["top1"] == want["top1"] and got["flops_drop_pct"] == want["flops_drop_pct"]

    text = (tmp_path / "selection.md").read_text()
    assert text.startswith("### Study S")
    for r in report.results:
        assert f"| {r.setting} | {drop(r.flops_drop_pct)} | {r.top1:.2f} | {drop(r.top1_drop)} |" in text
    assert "#### Random selection" in text and "Table 6 layout" in text

    fits = {r.extra["fit"].target: r.extra["fit"].config for r in report.results
            if "fit" in r.extra and not r.extra.get("alternative")}
    assert selection_report.load_fitted_configs(str(tmp_path)) == fits and fits

    split = np.load(tmp_path / "selection_split.npz")
    index = report.pool.index
    assert sorted(np.r_[split["calibration_index"], split["evaluation_index"]].tolist()) == sorted(index.tolist())
    np.testing.assert_array_equal(split["evaluation_index"], index[report.split.evaluation])


def test_the_pareto_axes_name_the_metric_each_plots(tmp_path, monkeypatch):
    """Each panel's y axis names its column (a fixed point's resolution label once replaced it)."""
    drawn = []
    monkeypatch.setattr(selection_report.figures, "save_figure", lambda fig, path: drawn.append(fig))
    report = run_selection(synthetic_tables(n=200), ("fixed", "random"), trials=2)
    selection_report.plot_pareto(report, str(tmp_path / "pareto.png"))
    assert [ax.get_ylabel() for ax in drawn[0].axes] == ["Top-1 Accuracy (%)", "Top-5 Accuracy (%)"]
