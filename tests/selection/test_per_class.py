"""Per-class cascade thresholds: known answers by hand, scores that equal running each cascade,
out-of-fold scoring, and the config's checks."""

import json

import numpy as np
import pytest

from reswise_tf.selection import (
    CascadeConfig,
    Part,
    SweepCache,
    Target,
    cascade_select,
    fit_cascade,
    oracle,
    run_selection,
)
from reswise_tf.selection.cascade import per_class
from reswise_tf.selection.cascade import search as cascade_search
from tests.helpers import make_table, synthetic_tables


def confidently_wrong_cache():
    """12 images: 0-5 of class 0, 6-11 of class 1. Native (16 px, 400 MACs) is right on all.
    At 8 px (100 MACs) images 0-5 are predicted 0, right, with confidence 0.8; images 6-11 are
    predicted 2, wrong, with confidence 0.9. No shared threshold accepts the right ones without
    the wrong ones; a threshold per predicted class does."""
    labels = np.array([0] * 6 + [1] * 6)
    low_pred = np.array([0] * 6 + [2] * 6)
    low_conf = np.array([0.8] * 6 + [0.9] * 6)
    return SweepCache(
        {
            16: make_table(16, labels, labels, np.full(12, 0.7), 400, native=16),
            8: make_table(8, labels, low_pred, low_conf, 100, native=16),
        }
    )


def test_per_class_thresholds_by_hand():
    cache = confidently_wrong_cache()
    rows = np.arange(12)
    shared = fit_cascade(cache, rows, max_drop=0.0, confidences=("max_prob",), thresholds="shared")
    assert shared.config.stages == (16,)  # only native keeps every image right
    fit = fit_cascade(cache, rows, max_drop=0.0, confidences=("max_prob",), thresholds="per_class")
    config = fit.config
    assert config.stages == (8, 16) and config.per_class
    t = config.thresholds[0]
    assert len(t) == 3  # classes 0..2
    assert t[0] <= 0.8  # class 0 accepted at 8 px
    assert t[2] > 0.9  # class 2 never accepted there
    assert fit.calibration["drop"] == 0.0
    assert fit.calibration["mean_macs"] == pytest.approx(100 + 0.5 * 400)
    assert fit.calibration["flops_drop_pct"] == pytest.approx(25.0)
    sel = cascade_select(cache, config, rows)
    assert sel.chosen.tolist() == [8] * 6 + [16] * 6
    assert sel.correct(cache).all()
    # Searching both kinds finds the per-class one.
    assert fit_cascade(cache, rows, max_drop=0.0, confidences=("max_prob",)).config == config


@pytest.mark.parametrize("stages", [(16, 32), (16, 24, 32), (20, 28, 32)])
@pytest.mark.parametrize("kind", ["max_prob", "calibrated_margin"])
def test_price_sweep_scores_equal_running_each_cascade(stages, kind):
    cache = SweepCache(synthetic_tables(n=400))
    rows = np.arange(0, 400, 2)
    temps = (1.3,) * len(stages)
    probe = CascadeConfig(stages, (0.0,) * (len(stages) - 1), kind, temps)
    swept = per_class.price_sweep(cache, rows, stages, probe, folds=1)
    assert len(swept) > 5
    costs = []
    for thresholds, correct, macs in swept:
        sel = cascade_select(cache, CascadeConfig(stages, thresholds, kind, temps), rows)
        assert sel.correct(cache).sum() == correct
        assert sel.macs.sum() == pytest.approx(macs)
        costs.append(macs)
    # Price 0 accepts only where it costs no accuracy; the highest price sends (nearly)
    # everything out at the first stage.
    assert costs[0] > costs[-1]
    assert costs[-1] <= cache.macs[stages[0]] * len(rows) * 1.05


def test_price_sweep_at_price_zero_never_loses_accuracy_on_its_images():
    cache = SweepCache(synthetic_tables(n=600))
    rows = np.arange(600)
    stages = (20, 32)
    probe = CascadeConfig(stages, (0.0,), "margin")
    (thresholds, correct, _), *_ = per_class.price_sweep(
        cache, rows, stages, probe, prices=[0.0], folds=1
    )
    assert correct >= cache.tables[32].correct()[rows].sum()


def test_cross_fitted_scores_are_out_of_fold():
    """Each price's score is the sum over folds of thresholds fitted on the other folds and
    run on the held-out one."""
    cache = SweepCache(synthetic_tables(n=500))
    rows = np.arange(1, 500, 2)
    stages = (24, 32)
    probe = CascadeConfig(stages, (0.0,), "max_prob")
    price = 0.3
    (full, correct, macs), = per_class.price_sweep(cache, rows, stages, probe, prices=[price], folds=2)
    part = per_class.fold_of(cache.labels[rows], 2, seed=0)
    assert sorted(np.bincount(part)) == [125, 125]
    expected_correct, expected_macs = 0, 0.0
    for f in range(2):
        (fitted, _, _), = per_class.price_sweep(
            cache, rows[part != f], stages, probe, prices=[price], folds=1
        )
        sel = cascade_select(cache, CascadeConfig(stages, fitted, "max_prob"), rows[part == f])
        expected_correct += sel.correct(cache).sum()
        expected_macs += sel.macs.sum()
    assert correct == expected_correct
    assert macs == pytest.approx(expected_macs)
    # The thresholds returned are fitted on all the rows.
    assert full == per_class.price_sweep(cache, rows, stages, probe, prices=[price], folds=1)[0][0]


def test_per_class_config_checks_and_round_trip():
    t = (0.5, -np.inf, np.inf)
    config = CascadeConfig((16, 32), (t,), "margin")
    assert config.per_class and config.thresholds == (t,)
    again = CascadeConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert "per-class" in config.describe()
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.9, 0.1], [0.99, 0.01], [0.99, 0.01]])
    ids = np.array([[0, 1], [0, 1], [1, 0], [2, 0], [7, 0]])  # class 7 is beyond the table
    # margins 0.8, 0.1, 0.8, 0.98, 0.98 against thresholds 0.5, 0.5, -inf, inf, (inf)
    assert config.accept(probs, 0, ids).tolist() == [True, False, True, False, False]
    with pytest.raises(ValueError, match="needs `top_ids`"):
        config.accept(probs, 0)
    for bad in ([()], [["a", "b"]], [[[0.1]]], [[0.1, np.nan]], ["x"]):
        with pytest.raises(ValueError, match="thresholds"):
            CascadeConfig((16, 32), bad)


def test_threshold_kind_errors():
    cache = confidently_wrong_cache()
    with pytest.raises(ValueError, match="shared, per_class"):
        fit_cascade(cache, np.arange(12), max_drop=0.0, thresholds="per_image")
    with pytest.raises(ValueError, match="auto, shared, per_class"):
        run_selection(cache.tables, ("cascade",), thresholds="both")
    with pytest.raises(ValueError, match="folds"):
        per_class.price_sweep(cache, np.arange(12), (8, 16), CascadeConfig((8, 16), (0.0,)), folds=0)


def test_report_searches_per_class_by_default():
    report = run_selection(synthetic_tables(n=2000), ("cascade",), max_drops=(1.0,))
    fit = report.results[-1].extra["fit"]
    assert any(cfg.per_class for cfg, _, _ in fit.front)
    shared = run_selection(
        synthetic_tables(n=2000), ("cascade",), max_drops=(1.0,), thresholds="shared"
    )
    assert not any(cfg.per_class for cfg, _, _ in shared.results[-1].extra["fit"].front)
    assert cascade_search.THRESHOLD_KINDS == ("shared", "per_class")


# --- the perfect-decision bound ------------------------------------------------------------


def three_stage_cache():
    """10 images of class 0. 8 px (100 MACs) is right on 0-3, 12 px (200) on 4-6, native 16 px
    (400) on 4-8; nothing gets image 9 right."""
    labels = np.zeros(10, int)

    def table(r, right, macs):
        pred = np.where(np.isin(np.arange(10), right), 0, 1)
        return make_table(r, labels, pred, np.full(10, 0.6), macs, native=16)

    return SweepCache(
        {
            8: table(8, [0, 1, 2, 3], 100),
            12: table(12, [4, 5, 6], 200),
            16: table(16, [4, 5, 6, 7, 8], 400),
        }
    )


def test_cascade_bound_by_hand():
    cache = three_stage_cache()
    rows = np.arange(10)
    # Budget 200 MACs per image: everyone pays 8 px (100); the 1000 MACs left send images 4-6
    # on to 12 px (200 more each); image 7 would need 600 more (12 and 16 px). 7 right.
    sel = oracle.cascade_bound_select(cache, rows, (8, 12, 16), 200)
    assert sel.chosen.tolist() == [8] * 4 + [12] * 3 + [8] * 3
    assert sel.macs.tolist() == [100] * 4 + [300] * 3 + [100] * 3
    # Without 12 px, 16 px costs 400 more: two of images 4-8 fit.
    sel = oracle.cascade_bound_select(cache, rows, (8, 16), 200)
    assert sel.chosen.tolist() == [8] * 4 + [16] * 2 + [8] * 4
    assert oracle.cascade_bound_select(cache, rows, (12, 16), 150) is None
    (row,) = oracle.cascade_bound(Part(cache, rows, "all", 3), Target.flops_budget(0.5))
    assert row.selector == "cascade_bound" and not row.deployable
    assert row.setting.startswith("8>12>16 ")
    assert row.top1 == pytest.approx(70.0)
    assert row.mean_macs == pytest.approx(160.0)
    assert oracle.cascade_bound(Part(cache, rows, "all", 3), Target.flops_budget(0.2)) == []


def test_no_cascade_beats_the_bound_at_its_cost():
    cache = SweepCache(synthetic_tables(n=600))
    rows = np.arange(0, 600, 3)
    rng = np.random.default_rng(4)
    stage_sets = [(16, 32), (20, 28, 32), (16, 24, 32)]
    for stages in stage_sets:
        probe = CascadeConfig(stages, (0.0,) * (len(stages) - 1), "margin")
        configs = [
            CascadeConfig(stages, t, "margin")
            for t, _, _ in per_class.price_sweep(cache, rows, stages, probe, folds=1)
        ]
        configs += [
            CascadeConfig(stages, tuple(rng.uniform(0, 1, len(stages) - 1)), "margin")
            for _ in range(20)
        ]
        for config in configs:
            sel = cascade_select(cache, config, rows)
            bound = oracle.cascade_bound_select(cache, rows, stages, sel.macs.mean())
            assert bound.macs.mean() <= sel.macs.mean() * (1 + 1e-9)
            assert bound.correct(cache).sum() >= sel.correct(cache).sum()


def test_report_adds_the_bound_at_random_flops():
    report = run_selection(synthetic_tables(n=1000), ("all",), trials=3)
    (bound,) = [r for r in report.results if r.selector == "cascade_bound"]
    (matched,) = [r for r in report.results if r.selector == "cascade" and "random's" in r.setting]
    assert "random's FLOPs" in bound.setting
    assert bound.top1 >= matched.top1 or bound.mean_macs < matched.mean_macs


def test_a_calibration_part_too_small_for_the_fit_warns():
    tables = synthetic_tables(n=40, num_classes=20)
    with pytest.warns(UserWarning, match=r"calibration part has \d+ image\(s\) for \d+ classes.*--calibration_fraction"):
        run_selection(tables, ("cascade",), max_drops=(1.0,))
