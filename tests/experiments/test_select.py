"""experiments.select and experiments.compare driven through a results directory made of
hand-made prediction tables and a results.csv written by `reswise_tf.report`.

The command lines run as subprocesses, all at once: importing experiments.select here would
register its absl flags in the pytest process beside those of experiments.reduce."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from reswise_tf.evaluation import load_tables, table_path
from reswise_tf.report import literature, write_reports
from reswise_tf.report import selection_report as report_lib
from reswise_tf.report import tables as tables_lib
from reswise_tf.selection import run_selection
from tests.helpers import ROOT, one_error_line, table_from_logits

REPO = ROOT
RESOLUTIONS = (32, 28, 24, 20)


def write_results_dir(path, n=600):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    tables = {}
    for r in RESOLUTIONS:
        right = rng.random(n) < {32: 0.9, 28: 0.85, 24: 0.75, 20: 0.5}[r]
        top = np.where(right, labels, (labels + 1) % 10)
        logits = rng.normal(size=(n, 10))
        logits[np.arange(n), top] += 3 + rng.random(n) * (4 if r < 28 else 2)
        tables[r] = table_from_logits(r, labels, logits, {"macs": 1000 * r * r, "native_resolution": 32})
        tables[r].save(table_path(path, r))
    rows = tables_lib.sweep_rows(tables)
    write_reports(rows, path, 32, "hand-made sweep")
    return tables


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The command lines of these tests, run at once (each process imports TensorFlow)."""
    root = tmp_path_factory.mktemp("cli")
    results_dir, library_dir = str(root / "run"), str(root / "library")
    write_results_dir(results_dir)
    # The same selection through the library, to compare with the command line's files.
    report = run_selection(load_tables(results_dir), ("all",), trials=4, seed=1)
    report_lib.write_reports(report, library_dir, "library")
    select = ["experiments.select", f"--results_dir={results_dir}"]
    commands = {
        "select": [*select, "--selector=all", "--trials=4", "--seed=1"],
        "bad_selector": [*select, "--selector=x", f"--output_dir={root / 'bad'}"],
    }
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    runs = {name: (proc.communicate(timeout=300), proc.returncode) for name, proc in procs.items()}
    runs = {name: (code, out, err) for name, ((out, err), code) in runs.items()}
    assert runs["select"][0] == 0, runs["select"][2]
    return results_dir, runs, report, library_dir


def test_select_all_writes_table6_and_pareto(results):
    results_dir = results[0]
    for name in (
        "selection.csv",
        "selection.md",
        "pareto.png",
        "cascade_curve.csv",
        "cascade_fits.json",
        "selection_split.npz",
    ):
        assert os.path.isfile(os.path.join(results_dir, name)), name
    rows = read_rows(os.path.join(results_dir, "selection.csv"))
    assert [r["selector"] for r in rows] == ["fixed"] * 4 + [
        "random",
        "cascade",
        "cascade",
        "oracle",
        "cascade_bound",
    ]
    assert {r["part"] for r in rows} == {"evaluation"}
    for column in (
        "top1",
        "top5",
        "top1_drop",
        "top5_drop",
        "mean_flops",
        "flops_drop_pct",
        "top1_drop_std",
        "top1_drop_max",
        "top1_drop_min",
        "flops_drop_pct_std",
    ):
        assert column in rows[0]
    random_row = rows[4]
    assert random_row["trials"] == "4" and "seed 1" in random_row["setting"]
    assert "max_drop=0.5" in rows[5]["setting"] and "flops_budget" in rows[6]["setting"]
    assert rows[7]["deployable"] == "False"
    text = open(os.path.join(results_dir, "selection.md")).read()
    assert "evaluation part" in text and "calibration part" in text
    assert "Table 6 layout, all 600 images" in text and "| Top-1 Accuracy Drop (%) |" in text
    fits = json.load(open(os.path.join(results_dir, "cascade_fits.json")))
    configs = report_lib.load_fitted_configs(results_dir)
    assert len(fits["fits"]) == 2 and len(configs) == 2
    split = np.load(os.path.join(results_dir, "selection_split.npz"))
    assert not np.intersect1d(split["calibration_index"], split["evaluation_index"]).size
    assert len(split["calibration_index"]) + len(split["evaluation_index"]) == 600


def test_select_is_reproducible_and_random_alone_uses_all_images(results):
    results_dir, _, _, library_dir = results
    # The command line and the library give the same file, byte for byte.
    with open(os.path.join(results_dir, "selection.csv")) as a:
        with open(os.path.join(library_dir, "selection.csv")) as b:
            assert a.read() == b.read()
    report = run_selection(
        load_tables(results_dir), ("random",), choices=[32, 24], trials=3
    )
    rows = [r.as_row() for r in report.results]
    assert [r["selector"] for r in rows] == ["fixed"] * 4 + ["random"]
    assert {r["part"] for r in rows} == {"all"} and rows[0]["num_examples"] == 600
    assert report.split is None and not report.curve
    assert report.table6 is report.results[-1]  # Table 6 is the random row itself
    with_cascade = run_selection(load_tables(results_dir), ("random", "cascade"), choices=[32, 24], trials=3)
    (random_row,) = [r for r in with_cascade.results if r.selector == "random"]
    assert random_row.part == "evaluation" and random_row.num_examples < 600  # compared with the fitted cascade
    assert with_cascade.table6.part == "all" and with_cascade.table6.num_examples == 600  # as the thesis


def test_command_line_error_is_one_line(results):
    code, _, err = results[1]["bad_selector"]
    assert code == 2
    assert one_error_line(err) == (
        "error: Unknown selector 'x'. Available: cascade, committee, fixed, oracle, random, all"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_drops": [-200]}, "`max_drop` should be a number of accuracy points"),
        ({"max_drops": ["0.1@cheap"]}, "Unknown reference 'cheap' of a target. Available: committee, 32, 28"),
        ({"flops_budgets": ["cheap"]}, "`flops_budget` should be a number"),
        ({"flops_budgets": [0.0]}, "`flops_budget` should be a fraction"),
        ({"confidence": "entropy"}, "Unknown confidence 'entropy'. Available: auto,"),
        ({"choices": [32, 19]}, "`choices` should be cached resolutions"),
        ({"metric": "top3"}, "Unknown metric 'top3'. Available: auto, top1, top5, miou, pixel_acc"),
        ({"thresholds": "both"}, "Unknown thresholds 'both'. Available: auto, shared, per_class"),
    ],
)
def test_bad_options_are_refused_before_any_work(results, options, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        run_selection(load_tables(results[0]), ("all",), **options)


def test_missing_results_dir_and_selection(tmp_path):
    with pytest.raises(FileNotFoundError, match="No prediction cache"):
        load_tables(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No selection.csv in"):
        literature.write_comparison(str(tmp_path))


def test_compare_reproduces_table7(results):
    # experiments.compare is flags around this one call.
    results_dir = results[3]
    out = literature.write_comparison(results_dir)
    # The thesis's own list, with its numbers as printed (a negative drop is a gain).
    assert "| Guo, Ouyang, Xu 2020 | 55.71 | -0.28 | yes |" in out and "| Lin et al. 2020 | 76.03 | 3.29 |" in out
    assert "| Random Resolution (thesis) | 17.30 | 2.42 | no |" in out
    assert "| Resolution 182x182 (thesis) | 29.26 | 2.70 | no |" in out
    rows = read_rows(os.path.join(results_dir, "comparison.csv"))
    assert [r["source"] for r in rows[:10]] == ["thesis: literature"] * 10
    ours = [r for r in rows if r["source"] == "ours"]
    assert {r["method"].split(":")[0] for r in ours} >= {"random", "cascade", "resolution 28px"}
    assert all(r["retrained"] == "False" and r["accuracy_drop"] != "" for r in ours)
    assert any(r["method"] == "Resolution 210x210 (thesis)" and r["accuracy_drop"] == "" for r in rows)
