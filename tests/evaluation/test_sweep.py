import os

import numpy as np
import pytest
import tensorflow as tf

from reswise_tf import data
from reswise_tf.data import preprocessing
from reswise_tf.evaluation import (
    PredictionTable,
    SweepConfig,
    SweepMismatchError,
    Variant,
    load_tables,
    sweep,
    table_path,
)
from reswise_tf.models import rescale
from reswise_tf.report import tables as tables_lib
from tests.helpers import loaded, tiny_classifier, write_image_folder


def _config(resolutions=(16, 12, 8), **kw):
    kw.setdefault("preprocess", "tf")
    kw.setdefault("batch_size", 4)
    return SweepConfig(resolutions=list(resolutions), **kw)


def _array_source(n=10, limit=None, seed=0):
    """Small-image source from arrays; with `limit`, reading example `limit` fails (an
    interruption) while `limit` holds a value below n."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 20, 20, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels, "index": np.arange(n, dtype=np.int64)})
    if limit is not None:

        def check(ex):
            tf.debugging.assert_less(ex["index"], limit, message="simulated interruption")
            return ex

        ds = ds.map(check)
    return data.DataSource("arrays", "test", ds, n, 10, small_images=True, label_kind="ids"), images, labels


def _assert_same_tables(a, b):
    assert sorted(a) == sorted(b)
    for r in a:
        np.testing.assert_array_equal(a[r].index, b[r].index)
        np.testing.assert_array_equal(a[r].labels, b[r].labels)
        np.testing.assert_array_equal(a[r].top_ids, b[r].top_ids)
        np.testing.assert_allclose(a[r].top_probs, b[r].top_probs, rtol=1e-6)


def test_every_resolution_matches_running_the_rescaled_model_directly(tmp_path):
    model = tiny_classifier(16)
    source, images, labels = _array_source()
    tables = sweep(loaded(model), source, _config(), str(tmp_path), verbose=0)
    assert sorted(tables) == [8, 12, 16]
    for r, table in tables.items():
        x = tf.stack([preprocessing.normalize(preprocessing.resize(im, r, direct=True), "tf") for im in images])
        probs = rescale(model, r)(x, training=False).numpy()
        np.testing.assert_array_equal(table.index, np.arange(10))
        np.testing.assert_array_equal(table.labels, labels)
        np.testing.assert_array_equal(table.top_ids[:, 0], probs.argmax(1))
        np.testing.assert_allclose(table.top_probs[:, 0], probs.max(1), rtol=1e-5)
        assert table.top_ids.shape == (10, 10)
        assert table.meta["macs"] > 0
    assert tables[8].meta["macs"] < tables[12].meta["macs"] < tables[16].meta["macs"]
    assert set(load_tables(str(tmp_path))) == {8, 12, 16}


def test_logit_outputs_get_a_softmax(tmp_path):
    model = tiny_classifier(16, activation=None)
    source, _, _ = _array_source(4)
    tables = sweep(loaded(model), source, _config((16,)), str(tmp_path), verbose=0)
    np.testing.assert_allclose(tables[16].top_probs.sum(1), 1.0, rtol=1e-5)


def test_cached_resolutions_are_not_recomputed_and_tables_match_a_fresh_run(tmp_path):
    model = tiny_classifier(16)
    source, _, _ = _array_source()
    out = str(tmp_path / "resumed")
    sweep(loaded(model), source, _config((16, 12)), out, verbose=0)
    stamp = os.path.getmtime(table_path(out, 12))
    resumed = sweep(loaded(model), source, _config(), out, verbose=0)
    assert os.path.getmtime(table_path(out, 12)) == stamp
    fresh = sweep(loaded(model), source, _config(), str(tmp_path / "fresh"), verbose=0)
    _assert_same_tables(resumed, fresh)


def test_an_interrupted_pass_resumes_where_it_stopped(tmp_path):
    model = tiny_classifier(16)
    limit = tf.Variable(6, dtype=tf.int64)
    source, _, _ = _array_source(limit=limit)
    out = str(tmp_path / "run")
    with pytest.raises(data.DataError):
        sweep(loaded(model), source, _config(checkpoint_every=1), out, verbose=0)
    with np.load(os.path.join(out, "predictions", "partial.npz")) as partial:
        assert partial["index"].tolist() == [0, 1, 2, 3]  # one batch of 4 finished before the failure
    assert not os.path.exists(table_path(out, 16))
    limit.assign(1000)
    resumed = sweep(loaded(model), source, _config(checkpoint_every=1), out, verbose=0)
    assert not os.path.exists(os.path.join(out, "predictions", "partial.npz"))
    fresh = sweep(loaded(model), _array_source()[0], _config(), str(tmp_path / "fresh"), verbose=0)
    _assert_same_tables(resumed, fresh)
    def accuracy_columns(tables):
        return [{k: v for k, v in row.items() if k != "images_per_sec"} for row in tables_lib.sweep_rows(tables)]

    assert accuracy_columns(resumed) == accuracy_columns(fresh)


def test_another_configuration_in_the_same_output_dir_is_refused(tmp_path):
    model = tiny_classifier(16)
    source, _, _ = _array_source()
    sweep(loaded(model), source, _config(), str(tmp_path), verbose=0)
    with pytest.raises(SweepMismatchError, match="holds predictions of another sweep"):
        sweep(loaded(model), source, _config(num_examples=5), str(tmp_path), verbose=0)


def test_num_examples_limits_the_run(tmp_path):
    source, _, _ = _array_source()
    tables = sweep(loaded(tiny_classifier(16)), source, _config((16,), num_examples=3), str(tmp_path), verbose=0)
    assert len(tables[16]) == 3


def test_corrupt_image_is_named_unless_skipped(tmp_path):
    root = str(tmp_path / "images")
    paths = write_image_folder(root, [0, 1], per_class=3)
    with open(paths[4], "wb") as f:
        f.write(b"garbage")
    model = tiny_classifier(16)
    with pytest.raises(data.DataError, match=f"Cannot decode image {paths[4]}.*--skip_bad_images"):
        sweep(loaded(model), data.load_source(f"folder:{root}"), _config((16,)), str(tmp_path / "strict"), verbose=0)
    source = data.load_source(f"folder:{root}", skip_bad_images=True)
    tables = sweep(loaded(model), source, _config((16, 8)), str(tmp_path / "skip"), verbose=0)
    assert tables[16].index.tolist() == [0, 1, 2, 3, 5]
    assert tables[16].meta["num_skipped"] == 1
    assert tables_lib.sweep_rows(tables)[0]["num_skipped"] == 1


def test_prediction_table_round_trip(tmp_path):
    table = PredictionTable(7, np.arange(3), np.array([1, 2, 0]), np.array([[1, 0], [0, 2], [0, 1]], np.int32),
                            np.full((3, 2), 0.5, np.float32), {"macs": 12})
    path = str(tmp_path / "t.npz")
    table.save(path)
    loaded = PredictionTable.load(path)
    assert loaded.resolution == 7 and loaded.meta == {"macs": 12}
    assert loaded.accuracy(1) == pytest.approx(200 / 3) and loaded.accuracy(2) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="`k` should be at most 2"):
        loaded.accuracy(5)


@pytest.mark.parametrize("kw,match", [({"resolutions": []}, "at least one"), ({"resolutions": [0]}, "positive"),
                                      ({"batch_size": 0}, "batch_size"), ({"preprocess": "x"}, "Unknown preprocess")])
def test_bad_config(kw, match):
    args = {"resolutions": [16], **kw}
    with pytest.raises(ValueError, match=match):
        SweepConfig(**args)


def test_variants_are_evaluated_in_the_same_pass_with_their_own_cache(tmp_path):
    model = tiny_classifier(16)
    source, _, _ = _array_source()

    def zero_bias(m, r):  # a visible change: the classifier's bias set to a ramp
        m = rescale(m, r)
        layer = m.get_layer("predictions")
        layer.bias.assign(np.linspace(0, 5, 10).astype("float32"))
        return m

    out = str(tmp_path / "run")
    variant = Variant("ramped", zero_bias, {"bias": "ramp"})
    base = sweep(loaded(model), source, _config(), out, variants=[variant], verbose=0)
    ramped = load_tables(os.path.join(out, "ramped"))
    assert sorted(ramped) == [8, 12, 16]
    _assert_same_tables(base, sweep(loaded(model), source, _config(), str(tmp_path / "plain"), verbose=0))
    assert (ramped[16].top_ids[:, 0] == 9).mean() > (base[16].top_ids[:, 0] == 9).mean()
    # Run again: all cached, nothing evaluated; another variant description is refused.
    sweep(loaded(model), source, _config(), out, variants=[variant], verbose=0)
    with pytest.raises(SweepMismatchError):
        sweep(loaded(model), source, _config(), out, variants=[Variant("ramped", zero_bias, {"bias": "other"})], verbose=0)


def test_a_single_batch_run_still_measures_its_speed(tmp_path):
    source, _, _ = _array_source(3)
    tables = sweep(loaded(tiny_classifier(16)), source, _config((16, 8), batch_size=4), None, verbose=0)
    for table in tables.values():
        assert table.meta["timed_images"] == 4 and table.meta["forward_seconds"] > 0  # the padded batch
    assert all(row["images_per_sec"] > 0 for row in tables_lib.sweep_rows(tables))


def test_progress_line_shows_percentages(tmp_path, capsys):
    source, _, _ = _array_source(8)
    sweep(loaded(tiny_classifier(16)), source, _config((16, 8)), None, verbose=1)
    out = capsys.readouterr().out
    assert "8/10 images" not in out and "8/8 images  100.00%" in out and "top1@16 " in out and "e+00" not in out


def test_the_running_figure_sums_each_batch_once():
    """The progress line's top-1 (or mIoU) so far: running sums, each batch added once, equal
    to the figure over every batch recomputed."""
    from reswise_tf.evaluation.engine import PassState
    from reswise_tf.evaluation.tasks import Classification, Segmentation

    state = PassState([("", 16)], Classification())
    for ids, labels in (([0, 1, 2], [0, 1, 1]), ([3, 3], [3, 0]), ([5], [5])):
        state.add_batch(np.arange(len(ids)), np.array(labels))
        state.add_outputs(("", 16), {"ids": np.array(ids)[:, None]})
        hits = sum(int(np.sum(np.array(r["ids"])[:, 0] == y)) for r, y in zip(state.records[("", 16)], state.labels))
        assert state.running(("", 16)) == pytest.approx(hits / state.count)
    assert state.running(("", 16)) == pytest.approx(4 / 6)
    seg = PassState([("", 8)], Segmentation(2))
    for inter, union in (([[1, 2]], [[2, 4]]), ([[3, 0]], [[4, 0]])):
        seg.add_batch(np.arange(1), np.zeros(1))
        seg.add_outputs(("", 8), {"intersection": np.array(inter), "union": np.array(union)})
    assert seg.running(("", 8)) == pytest.approx((4 / 6 + 2 / 4) / 2)
