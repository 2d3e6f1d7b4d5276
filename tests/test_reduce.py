"""run_reduce: the sweep plus reports, with measured latency and BatchNorm re-estimation."""

import os

import numpy as np
import pytest
import tensorflow as tf

from reswise_tf import data, latency, reporting
from reswise_tf.models import LoadedModel
from reswise_tf.reduce import BN_VARIANT, run_reduce
from reswise_tf.sweep import SweepConfig
from tests.conftest import tiny_classifier


def _source(n, split, seed):
    rng = np.random.default_rng(seed)
    ds = tf.data.Dataset.from_tensor_slices({
        "image": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8),
        "label": rng.integers(0, 10, n).astype(np.int64),
        "index": np.arange(n, dtype=np.int64),
    })
    return data.DataSource("arrays", split, ds, n, 10, small_images=True)


def _loaded():
    return LoadedModel(tiny_classifier(16), None, 16, "tf", 0.875, {"model": "tiny"})


def test_latency_columns_and_figure(tmp_path):
    config = SweepConfig(resolutions=[16, 8], native_resolution=16, preprocess="tf", batch_size=4)
    rows = run_reduce(_loaded(), _source(8, "test", 0), config, str(tmp_path), verbose=0,
                      measure_latency=True, latency_repeats=3)
    assert rows[0]["speedup_b1"] == 1.0 and rows[0]["speedup_b32"] == 1.0
    assert all(row["latency_b1_ms"] > 0 and row["latency_b32_ms"] > 0 for row in rows)
    assert os.path.exists(tmp_path / "flops_drop_vs_speedup.png")
    assert "latency_b32_ms" in reporting.read_csv(str(tmp_path / "results.csv"))[0]
    assert "Speed-up, batch 1" in (tmp_path / "results.md").read_text()


def test_median_latency_rejects_bad_batch():
    with pytest.raises(ValueError, match="`batch_size`"):
        latency.median_latency(tiny_classifier(8), 0)


def test_bn_columns_come_from_a_second_cache(tmp_path):
    pytest.importorskip("reswise_tf.batchnorm")
    config = SweepConfig(resolutions=[16, 8], native_resolution=16, preprocess="tf", batch_size=4)
    rows = run_reduce(_loaded(), _source(8, "test", 0), config, str(tmp_path), verbose=0,
                      bn_source=_source(12, "train", 1), bn_images=12)
    assert {"top1_bn", "top5_bn", "top1_bn_drop", "top5_bn_drop"} <= set(rows[0])
    assert sorted(os.listdir(tmp_path / BN_VARIANT / "predictions")) == ["res_16.npz", "res_8.npz", "sweep.json"]


def test_bn_never_reads_the_evaluation_split(tmp_path):
    config = SweepConfig(resolutions=[16], native_resolution=16, preprocess="tf")
    with pytest.raises(ValueError, match="must not read the evaluation split"):
        run_reduce(_loaded(), _source(8, "test", 0), config, str(tmp_path), verbose=0,
                   bn_source=_source(8, "test", 0), bn_images=4)
    assert not os.path.exists(tmp_path / "predictions")
