"""The deployable cascade takes the same decisions as the cache-based selector on the same inputs,
runs the larger models only on the images that need them, and survives save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reswise_tf.deploy import CascadeClassifier
from reswise_tf.evaluation import PredictionTable
from reswise_tf.models import rescale
from reswise_tf.selection import CascadeConfig, SweepCache, cascade_select, fit_cascade, split_rows

NATIVE, STAGES, N = 32, (16, 24, 32), 96


def tiny_model():
    """A small global-pooling CNN at 32 px whose random weights give varied confidences."""
    keras.utils.set_random_seed(0)
    image = keras.Input((NATIVE, NATIVE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(image)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(image, out)
    kernel, bias = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([kernel * 8.0, bias])
    return model


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    models = {r: model if r == NATIVE else rescale(model, r) for r in STAGES}
    rng = np.random.default_rng(0)
    # Per-image contrast and colour, so that globally pooled features differ between images.
    scale = rng.uniform(0.2, 3.0, (N, 1, 1, 1))
    offset = rng.normal(0, 1.0, (N, 1, 1, 3))
    base = (rng.normal(size=(N, NATIVE, NATIVE, 3)) * scale + offset).astype(np.float32)
    images = {r: tf.image.resize(base, (r, r), antialias=True).numpy() for r in STAGES}
    images[NATIVE] = base
    # The cache, as a sweep writes it: every model on every image.
    probe = CascadeClassifier(models, CascadeConfig(STAGES, (np.inf, np.inf), "max_prob"))
    predictions = [probe.stage_predictions(images, j) for j in range(len(STAGES))]
    labels = predictions[-1][0][:, 0].astype(np.int64).copy()
    labels[::4] = (labels[::4] + 1) % 10  # native is right on 3 images in 4
    tables = {
        r: PredictionTable(
            r,
            np.arange(N),
            labels,
            ids,
            probs,
            {"macs": probe.macs[j], "native_resolution": NATIVE},
        )
        for j, (r, (ids, probs)) in enumerate(zip(STAGES, predictions))
    }
    return models, images, SweepCache(tables), probe


@pytest.mark.parametrize(
    "confidence, thresholds",
    [("max_prob", "shared"), ("calibrated_margin", "shared"), ("max_prob", "per_class")],
)
def test_saved_cascade_equals_selector_on_the_cache(setup, tmp_path, confidence, thresholds):
    models, images, cache, _ = setup
    split = split_rows(N, calibration_fraction=0.5, seed=0)
    fit = fit_cascade(
        cache,
        split.calibration,
        flops_budget=0.7,
        stages=STAGES,
        confidences=(confidence,),
        thresholds=(thresholds,),
    )
    config = fit.config
    assert len(config.stages) >= 2
    assert config.per_class == (thresholds == "per_class")
    CascadeClassifier(models, config).save(str(tmp_path / "cascade"))
    loaded = CascadeClassifier.load(str(tmp_path / "cascade"))
    assert loaded.config == config

    ev = split.evaluation
    out = loaded.classify({r: x[ev] for r, x in images.items()}, batch_size=20)
    expected = cascade_select(cache, config, ev)
    assert 0 < np.mean(out.resolution == config.stages[0]) < 1  # a real cascade
    np.testing.assert_array_equal(out.resolution, expected.chosen)
    np.testing.assert_allclose(out.macs, expected.macs)
    for r in config.stages:
        chosen = expected.chosen == r
        table = cache.tables[r]
        np.testing.assert_array_equal(out.top_ids[chosen], table.top_ids[ev[chosen]])
        np.testing.assert_allclose(out.top_probs[chosen], table.top_probs[ev[chosen]], atol=1e-6)
    np.testing.assert_array_equal(loaded(images[NATIVE][ev]), out.predictions)


def test_larger_models_run_only_on_pending_images(setup):
    models, images, cache, _ = setup
    medians = [float(np.median(cache.tables[r].top_probs[:, 0])) for r in STAGES[:2]]
    config = CascadeConfig(STAGES, medians, "max_prob")
    clf = CascadeClassifier(models, config)
    seen = []
    for j, forward in enumerate(list(clf._forwards)):

        def record(x, forward=forward, j=j):
            seen.append((j, int(x.shape[0])))
            return forward(x)

        clf._forwards[j] = record
    out = clf.classify(images)
    expected = cascade_select(cache, config, np.arange(N))
    assert [j for j, _ in seen] == [0, 1, 2]
    assert seen[0][1] == N and 0 < seen[2][1] < seen[1][1] < N
    for j, count in seen[1:]:
        assert count == int(np.sum(np.isin(expected.chosen, STAGES[j:])))
    np.testing.assert_array_equal(out.resolution, expected.chosen)


def test_from_model_and_argument_errors(setup):
    models, images, _, probe = setup
    config = CascadeConfig((24, 32), (0.5,), "margin")
    clf = CascadeClassifier.from_model(models[NATIVE], config)
    np.testing.assert_array_equal(
        clf.stage_predictions(images, 0)[0], probe.stage_predictions(images, 1)[0]
    )
    with pytest.raises(ValueError, match="one model per stage"):
        CascadeClassifier({32: models[32]}, config)
    with pytest.raises(ValueError, match="takes 16px inputs, not 24px"):
        CascadeClassifier([models[16], models[32]], config)
    with pytest.raises(ValueError, match="no batch for stage 24"):
        clf.classify({32: images[32]})
    with pytest.raises(FileNotFoundError, match="not a saved cascade"):
        CascadeClassifier.load("/nonexistent/cascade")
