import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from reswise_tf.models import bn_statistics, recalibrate_bn, rescale
from tests.helpers import tiny_classifier


def _images(n, resolution=16, channels=3, seed=0):
    # Not centred and not unit variance, so that wrong statistics would show.
    rng = np.random.default_rng(seed)
    return rng.normal(0.3, 1.5, (n, resolution, resolution, channels)).astype("float32")


def _layer_output(model, name, x):
    return keras.Model(model.inputs[0], model.get_layer(name).output)(x).numpy().astype("float64")


def _moments(a, axis=-1):
    axes = tuple(i for i in range(a.ndim) if i != axis % a.ndim)
    return a.mean(axes), a.var(axes)


def _set_bn(layer, seed):
    """Non-trivial gamma, beta and moving statistics."""
    rng = np.random.default_rng(seed)
    channels = layer.gamma.shape[0]
    layer.gamma.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    layer.beta.assign(rng.normal(0, 0.5, channels).astype("float32"))
    layer.moving_mean.assign(rng.normal(0, 1, channels).astype("float32"))
    layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))


def _two_bn_model(dropout=0.0, freeze_first=False):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout, name="drop")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="fc")(x), name="two_bn")
    _set_bn(model.get_layer("bn1"), seed=1)
    _set_bn(model.get_layer("bn2"), seed=2)
    model.get_layer("bn1").trainable = not freeze_first
    return model


def _assert_stats(actual, expected, rtol=1e-6, atol=1e-9):
    np.testing.assert_allclose(actual[0], expected[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(actual[1], expected[1], rtol=rtol, atol=atol)


@pytest.mark.parametrize("batch_size", [4, 10, 64])
def test_first_layer_statistics_are_the_population_moments_of_its_input(batch_size):
    # 10 images in batches of 4 (4 + 4 + 2) pool exactly like one batch.
    model = tiny_classifier(16)
    x = _images(10)
    stats = bn_statistics(model, x, batch_size=batch_size)
    assert list(stats) == ["stem_bn"]
    mean, var = stats["stem_bn"]
    assert mean.dtype == var.dtype == np.float64 and mean.shape == (8,)
    _assert_stats(stats["stem_bn"], _moments(_layer_output(model, "stem", x)))


def test_second_layer_sees_the_first_normalised_with_batch_statistics():
    model = _two_bn_model()
    x = _images(7, resolution=12)
    stats = bn_statistics(model, x, batch_size=7)  # one batch
    a = _layer_output(model, "conv1", x)
    mean1, var1 = _moments(a)
    _assert_stats(stats["bn1"], (mean1, var1))
    bn1 = model.get_layer("bn1")
    gamma, beta = bn1.gamma.numpy(), bn1.beta.numpy()
    z = np.maximum(gamma * (a - mean1) / np.sqrt(var1 + bn1.epsilon) + beta, 0.0)
    b = model.get_layer("conv2")(z.astype("float32")).numpy().astype("float64")
    _assert_stats(stats["bn2"], _moments(b), rtol=1e-4, atol=1e-6)
    # With the native moving statistics instead, the second layer's input would differ.
    assert not np.allclose(
        stats["bn2"][0], _moments(_layer_output(model, "conv2", x))[0], rtol=1e-2
    )


def test_frozen_batch_norm_is_probed_with_batch_statistics_too():
    x = _images(6, resolution=12)
    frozen = bn_statistics(_two_bn_model(freeze_first=True), x, batch_size=6)
    trainable = bn_statistics(_two_bn_model(), x, batch_size=6)
    _assert_stats(frozen["bn2"], trainable["bn2"])


def test_only_bn_statistics_change_and_the_input_model_is_not_modified():
    model = _two_bn_model()
    before = {w.path: w.numpy().copy() for w in model.weights}
    new = recalibrate_bn(model, _images(9, resolution=12), batch_size=4)
    assert new is not model
    assert [w.path for w in new.weights] == list(before)
    for w in model.weights:
        np.testing.assert_array_equal(w.numpy(), before[w.path])
    for w in new.weights:
        if w.path.endswith(("moving_mean", "moving_variance")):
            assert not np.allclose(w.numpy(), before[w.path])
        else:
            np.testing.assert_array_equal(w.numpy(), before[w.path])


def test_recalibrated_model_holds_the_statistics_as_float32():
    model = _two_bn_model()
    x = _images(9, resolution=12)
    stats = bn_statistics(model, x, batch_size=4)
    new = recalibrate_bn(model, x, batch_size=4)
    for name, (mean, var) in stats.items():
        np.testing.assert_array_equal(
            new.get_layer(name).moving_mean.numpy(), mean.astype("float32")
        )
        np.testing.assert_array_equal(
            new.get_layer(name).moving_variance.numpy(), var.astype("float32")
        )


def test_shuffled_images_give_the_same_statistics():
    model = tiny_classifier(16)
    x = _images(11)
    shuffled = x[np.random.default_rng(1).permutation(len(x))]
    _assert_stats(
        bn_statistics(model, shuffled, batch_size=3)["stem_bn"],
        bn_statistics(model, x, batch_size=3)["stem_bn"],
    )
    # For the deeper layer only the full batch is order independent (batch statistics upstream).
    two = _two_bn_model()
    y = _images(8, resolution=12)
    _assert_stats(
        bn_statistics(two, y[::-1], batch_size=8)["bn2"],
        bn_statistics(two, y, batch_size=8)["bn2"],
        rtol=1e-5,
    )


def test_recalibrated_first_layer_outputs_have_mean_beta_and_variance_gamma_squared():
    model = tiny_classifier(16)
    x = _images(12)
    new = recalibrate_bn(model, x, batch_size=5)
    bn = new.get_layer("stem_bn")
    var = bn.moving_variance.numpy().astype("float64")
    mean_out, var_out = _moments(_layer_output(new, "stem_bn", x))
    np.testing.assert_allclose(mean_out, bn.beta.numpy(), atol=1e-5)
    # gamma^2 scaled by var / (var + epsilon), which is what dividing by sqrt(var + eps) gives.
    np.testing.assert_allclose(var_out, bn.gamma.numpy() ** 2 * var / (var + bn.epsilon), rtol=1e-4)
    # The native statistics do not normalise these images.
    mean_old, _ = _moments(_layer_output(model, "stem_bn", x))
    assert np.abs(mean_old - model.get_layer("stem_bn").beta.numpy()).max() > 1e-2


def test_works_on_a_model_rescaled_to_a_smaller_resolution():
    native = tiny_classifier(32)
    small = rescale(native, 16)
    x = _images(10, resolution=16)
    new = recalibrate_bn(small, x, batch_size=4)
    expected = _moments(_layer_output(small, "stem", x))
    _assert_stats(bn_statistics(small, x, batch_size=4)["stem_bn"], expected)
    np.testing.assert_allclose(
        new.get_layer("stem_bn").moving_mean.numpy(), expected[0], rtol=1e-6, atol=1e-7
    )
    assert new.inputs[0].shape[1:3] == (16, 16)
    probs = new.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_dropout_is_inactive_during_the_probe():
    x = _images(8, resolution=12)
    model = _two_bn_model(dropout=0.5)
    plain = _two_bn_model()
    for layer in plain.layers:  # the Dropout layer's seed moved the random initialisation
        model.get_layer(layer.name).set_weights(layer.get_weights())
    with_dropout = bn_statistics(model, x, batch_size=3)
    without = bn_statistics(plain, x, batch_size=3)
    for name in ("bn1", "bn2"):
        _assert_stats(with_dropout[name], without[name])


@pytest.mark.parametrize("axis", [1, 3, -1])
def test_bn_axis_is_respected(axis):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(axis=axis, name="bn")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="axis_model")
    x = np.random.default_rng(0).normal(1.0, 2.0, (5, 6, 5, 3)).astype("float32")
    stats = bn_statistics(model, x, batch_size=2)
    _assert_stats(stats["bn"], _moments(_layer_output(model, "conv", x), axis=axis))
    assert stats["bn"][0].shape == ((6,) if axis == 1 else (4,))


def test_bn_on_a_vector_after_pooling_and_dense():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, name="fc")(x)
    x = keras.layers.BatchNormalization(name="fc_bn")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x), name="vector_bn")
    x = _images(9, resolution=8)
    stats = bn_statistics(model, x, batch_size=4)
    _assert_stats(stats["fc_bn"], _moments(_layer_output(model, "fc", x)))


def test_renorm_layer_is_probed_without_renorm_and_gets_a_consistent_stddev():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(renorm=True, name="bn")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="renorm")
    x = _images(6, resolution=8)
    mean, var = _moments(_layer_output(model, "conv", x))
    bn = recalibrate_bn(model, x, batch_size=4).get_layer("bn")
    np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-6)
    np.testing.assert_allclose(bn.moving_stddev.numpy(), np.sqrt(var + bn.epsilon), rtol=1e-6)


def test_nested_submodel_statistics_are_found_and_assigned():
    inner = tiny_classifier(16)
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, inner(inputs), name="outer")
    x = _images(6)
    stats = bn_statistics(outer, x, batch_size=4)
    assert list(stats) == ["tiny/stem_bn"]
    _assert_stats(stats["tiny/stem_bn"], _moments(_layer_output(inner, "stem", x)))
    new = recalibrate_bn(outer, x, batch_size=4)
    nested_bn = new.get_layer("tiny").get_layer("stem_bn")
    np.testing.assert_array_equal(
        nested_bn.moving_mean.numpy(), stats["tiny/stem_bn"][0].astype("float32")
    )
    assert nested_bn is not inner.get_layer("stem_bn")


def test_dataset_and_tensor_inputs_give_the_array_statistics():
    model = tiny_classifier(16)
    x = _images(10)
    expected = bn_statistics(model, x, batch_size=3)["stem_bn"]
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    _assert_stats(bn_statistics(model, dataset)["stem_bn"], expected)
    _assert_stats(bn_statistics(model, tf.constant(x), batch_size=3)["stem_bn"], expected)


def test_model_without_batch_norm_is_refused_by_name():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, x, name="plain_cnn")
    with pytest.raises(ValueError, match="Model 'plain_cnn' has no BatchNormalization layer"):
        recalibrate_bn(model, _images(2, resolution=8))


def test_empty_images_are_refused():
    model = tiny_classifier(16)
    with pytest.raises(ValueError, match="`images` is empty.*\\(0, 16, 16, 3\\)"):
        recalibrate_bn(model, np.zeros((0, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match="the dataset yielded no images"):
        bn_statistics(model, tf.data.Dataset.from_tensor_slices(_images(2)).take(0).batch(2))


@pytest.mark.parametrize("shape", [(4, 12, 12, 3), (4, 16, 16, 1), (16, 16, 3)])
def test_images_of_the_wrong_shape_are_refused_with_both_shapes(shape):
    with pytest.raises(
        ValueError, match=re.escape(f"shape {shape}, the model expects (None, 16, 16, 3)")
    ):
        bn_statistics(tiny_classifier(16), np.zeros(shape, "float32"))


def test_dataset_of_the_wrong_shape_or_with_labels_is_refused():
    model = tiny_classifier(16)
    with pytest.raises(ValueError, match=re.escape("the model expects (None, 16, 16, 3)")):
        bn_statistics(model, tf.data.Dataset.from_tensor_slices(_images(4, resolution=12)).batch(2))
    pairs = tf.data.Dataset.from_tensor_slices((_images(4), np.arange(4))).batch(2)
    with pytest.raises(ValueError, match="map it to images first"):
        bn_statistics(model, pairs)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_batch_size_is_refused(bad):
    with pytest.raises(ValueError, match="`batch_size` should be a positive integer.*batch_size="):
        bn_statistics(tiny_classifier(16), _images(2), batch_size=bad)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed_net")
            self.conv = keras.layers.Conv2D(4, 3)
            self.bn = keras.layers.BatchNormalization()

        def call(self, x):
            return self.bn(self.conv(x))

    net = Net()
    net(_images(1))
    with pytest.raises(ValueError, match="'subclassed_net' \\(Net\\) is a subclassed model"):
        recalibrate_bn(net, _images(2))
