"""Reduced precision: the same weights computing in bfloat16/float16, float32 outputs; a sweep
records its precision, refuses to mix precisions in one directory, and compares with float32."""

import keras
import numpy as np
import pytest

from reswise_tf.evaluation import FLOAT32_VARIANT, SweepConfig, SweepMismatchError, load_tables, sweep
from reswise_tf.models import get_arch, rescale
from reswise_tf.models.dtype_policy import model_precision, precision_scope, with_precision
from reswise_tf.workflows import run_reduce
from tests.helpers import array_source, loaded


def _logits_model():
    keras.utils.set_random_seed(3)
    return get_arch("resnet18_small").build(32, classes=10, classifier_activation=None)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_same_weights_reduced_compute_float32_outputs(precision):
    model = _logits_model()
    reduced = with_precision(model, precision)
    assert model_precision(model) == "float32" and model_precision(reduced) == precision
    assert reduced.inputs[0].dtype == precision and reduced.outputs[0].dtype == "float32"
    for a, b in zip(model.weights, reduced.weights):
        assert b.dtype == "float32"
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    x = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
    full, low = model(x).numpy(), reduced(x).numpy()
    assert 0 < np.abs(full - low).max() / np.abs(full).max() < 0.05  # reduced, but close
    np.testing.assert_array_equal(with_precision(reduced, "float32")(x).numpy(), full)
    assert with_precision(model, "float32") is model


def test_precision_scope_builds_mixed_layers_and_restores_the_policy():
    with precision_scope("bfloat16"):
        model = get_arch("resnet18_small").build(16, classes=3)
    assert model_precision(model) == "bfloat16" and keras.config.dtype_policy().name == "float32"


def test_a_sweep_records_its_precision_and_never_mixes(tmp_path):
    model = loaded(_logits_model(), preprocess="tf")
    source = array_source(12, size=32)
    config = SweepConfig(resolutions=[32, 16], preprocess="tf", batch_size=4, precision="bfloat16")
    tables = sweep(model, source, config, str(tmp_path), verbose=0)
    assert {t.meta["precision"] for t in tables.values()} == {"bfloat16"}
    with pytest.raises(SweepMismatchError, match="another sweep"):
        sweep(model, source, SweepConfig(resolutions=[32, 16], preprocess="tf", batch_size=4), str(tmp_path),
              verbose=0)


def test_compare_precision_reports_agreement_with_float32(tmp_path):
    model = loaded(_logits_model(), preprocess="tf")
    config = SweepConfig(resolutions=[32, 16], preprocess="tf", batch_size=4, precision="bfloat16")
    rows = run_reduce(model, array_source(12, size=32), config, str(tmp_path), verbose=0, compare_precision=True)
    reduced, reference = load_tables(str(tmp_path)), load_tables(str(tmp_path / FLOAT32_VARIANT))
    assert {t.meta["precision"] for t in reference.values()} == {"float32"}
    # The reference is the float32 model itself on the same float32 inputs.
    plain = sweep(loaded(model.model, preprocess="tf"), array_source(12, size=32),
                  SweepConfig(resolutions=[32, 16], preprocess="tf", batch_size=4), None, verbose=0)
    np.testing.assert_allclose(reference[16].top_probs, plain[16].top_probs, rtol=1e-6)
    for row in rows:
        r = row["resolution"]
        same = np.mean(reduced[r].top_ids[:, 0] == reference[r].top_ids[:, 0])
        assert row["top1_agreement_pct"] == pytest.approx(100 * same, abs=1e-3)
        assert row["top1_vs_float32"] == pytest.approx(reduced[r].accuracy() - reference[r].accuracy(), abs=1e-3)
        assert row["precision"] == "bfloat16"
    assert "Top-1 same as float32 (%)" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match="pass --precision"):
        run_reduce(model, array_source(12, size=32), SweepConfig(resolutions=[32]), str(tmp_path / "x"), verbose=0,
                   compare_precision=True)


def test_rescaled_then_reduced_equals_reduced_then_rescaled():
    model = _logits_model()
    x = np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    a = with_precision(rescale(model, 16), "bfloat16")(x).numpy()
    b = rescale(with_precision(model, "bfloat16"), 16)(x).numpy()
    np.testing.assert_array_equal(a, b)
