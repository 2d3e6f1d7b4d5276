"""The notebook API: one call from an in-memory model and data to rows, table, figure and the
selectors; nothing written without `output_dir`."""

import os

import numpy as np
import pytest
import tensorflow as tf

import reswise_tf
from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation import SweepMismatchError
from reswise_tf.models import rescale
from tests.helpers import tiny_classifier


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 20, 20, 3), dtype=np.uint8), rng.integers(0, 10, n)


def test_arrays_in_memory_nothing_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_classifier(16)
    images, labels = _data()
    result = reswise_tf.evaluate(model, (images, labels), [12, 8], preprocess="tf", batch_size=8)
    assert os.listdir(tmp_path) == []
    assert [row["resolution"] for row in result.rows] == [16, 12, 8]
    assert result.rows[0]["top1_drop"] == 0.0 and result.rows[0]["num_examples"] == 24
    # The cache holds what the rescaled model predicts on the sweep's preparation of each image.
    x = np.stack([prepare(im, 12, mode="tf", direct=True).numpy() for im in images])
    probs = rescale(model, 12)(x, training=False).numpy()
    np.testing.assert_allclose(result.cache.tables[12].top_probs[:, 0], probs.max(1), rtol=1e-5)
    assert "| 8x8 |" in result.to_markdown()
    fig = result.plot()
    assert len(fig.axes) == 2
    report = result.select("random", trials=3)
    assert [r["selector"] for r in report.rows] == ["fixed"] * 3 + ["random"]


@pytest.mark.parametrize("kind", ["pairs", "dicts"])
def test_a_dataset_of_single_examples_gives_the_arrays_result(kind):
    model = tiny_classifier(16)
    images, labels = _data(12)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if kind == "dicts":
        ds = ds.map(lambda image, label: {"image": image, "label": label})
    a = reswise_tf.evaluate(model, (images, labels), [8], preprocess="tf", batch_size=4)
    b = reswise_tf.evaluate(model, ds, [8], preprocess="tf", batch_size=4)
    assert [{k: v for k, v in r.items() if k != "images_per_sec"} for r in a.rows] == [
        {k: v for k, v in r.items() if k != "images_per_sec"} for r in b.rows]


def test_output_dir_is_the_resumable_cache(tmp_path):
    model = tiny_classifier(16)
    images, labels = _data()
    out = str(tmp_path / "run")
    first = reswise_tf.evaluate(model, (images, labels), [8], preprocess="tf", output_dir=out)
    assert {"results.csv", "results.md", "accuracy_vs_resolution.png", "predictions"} <= set(os.listdir(out))
    again = reswise_tf.evaluate(model, (images, labels), [8], preprocess="tf", output_dir=out)
    assert str(again.rows) == str(first.rows)  # read back from the cache, timing included (nan == nan)
    with pytest.raises(SweepMismatchError, match="another sweep"):
        reswise_tf.evaluate(tiny_classifier(16, seed=1), (images, labels), [8], preprocess="tf", output_dir=out)
    with pytest.raises(SweepMismatchError, match="another sweep"):
        reswise_tf.evaluate(model, _data(seed=2), [8], preprocess="tf", output_dir=out)


def test_bad_data_is_named():
    model = tiny_classifier(16)
    with pytest.raises(reswise_tf.data.DataError, match="`data` should be"):
        reswise_tf.evaluate(model, np.zeros((4, 16, 16, 3)), [8])
    with pytest.raises(reswise_tf.data.DataError, match="single images"):
        reswise_tf.evaluate(model, tf.data.Dataset.from_tensor_slices((np.zeros((4, 2, 16, 16, 3)), np.zeros(4))), [8])
