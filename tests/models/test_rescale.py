import functools

import keras
import numpy as np
import pytest

from reswise_tf.models import RescaleError, input_resolution, registry, rescale
from tests.helpers import tiny_classifier

# Native sizes used in the tests are small to keep them fast; the rebuild does not depend on them.
NATIVE = {"resnet50": 64, "resnet101": 48, "resnet152": 40, "mobilenet_v2": 32, "nasnet": 32}
REDUCED = {"resnet50": 40, "mobilenet_v2": 12, "nasnet": 20}


def _images(resolution, n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, resolution, resolution, 3)).astype("float32")


@functools.cache
def _logits_model(arch):
    """The architecture with random weights and linear outputs (logits vary across images)."""
    keras.utils.set_random_seed(1)
    return registry.get_arch(arch).build(NATIVE[arch], classes=10, classifier_activation=None)


def _outputs(model, x):
    return model(x, training=False).numpy()


# The deeper ResNets repeat ResNet50's blocks: `slow`.
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a in ("resnet101", "resnet152") else a
                                  for a in sorted(NATIVE)])
def test_native_size_gives_exactly_the_same_outputs(arch):
    model = _logits_model(arch)
    x = _images(NATIVE[arch])
    expected = _outputs(model, x)
    assert np.std(expected) > 0  # not a degenerate model
    np.testing.assert_array_equal(_outputs(rescale(model, NATIVE[arch], arch=arch), x), expected)


def test_native_size_exact_through_the_generic_clone():
    model = _logits_model("resnet50")
    x = _images(64)
    np.testing.assert_array_equal(_outputs(rescale(model, 64), x), _outputs(model, x))


@pytest.mark.parametrize("arch", sorted(REDUCED))
def test_reduced_size_equals_a_model_built_there_with_the_same_weights(arch, tmp_path):
    model = _logits_model(arch)
    small = rescale(model, REDUCED[arch], arch=arch)
    assert input_resolution(small) == REDUCED[arch]
    # Another route than rescale's layer-by-layer copy: a weights file loaded by Keras.
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    fresh = registry.get_arch(arch).build(REDUCED[arch], classes=10, classifier_activation=None)
    fresh.load_weights(path)
    y = _images(REDUCED[arch], seed=1)
    np.testing.assert_array_equal(_outputs(small, y), _outputs(fresh, y))


def test_user_model_is_cloned_and_every_weight_copied():
    model = tiny_classifier(16)
    for r in (16, 9, 40):
        small = rescale(model, r)
        assert input_resolution(small) == r
        assert len(small.weights) == len(model.weights)
        for a, b in zip(model.weights, small.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = _images(16)
    np.testing.assert_array_equal(_outputs(rescale(model, 16), x), _outputs(model, x))


def test_nested_submodel_is_rescaled():
    inner = tiny_classifier(16)
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, inner(inputs), name="outer")
    small = rescale(outer, 12)
    x = _images(12)
    np.testing.assert_array_equal(_outputs(small, x), _outputs(rescale(inner, 12), x))


def test_flatten_before_the_classifier_is_refused_and_names_the_layer():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    with pytest.raises(RescaleError, match="no global pooling.*'flat' \\(Flatten\\)"):
        rescale(model, 12)


def test_nasnet_below_its_minimum_names_the_smallest_size():
    with pytest.raises(ValueError, match=">= 19 for architecture 'nasnetmobile'.*resolution=18"):
        rescale(_logits_model("nasnet"), 18, arch="nasnet")


def test_weights_that_do_not_fit_name_the_layer():
    with pytest.raises(RescaleError, match="do not fit its architecture.*layer '"):
        rescale(tiny_classifier(32), 32, arch="mobilenet_v2")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "32"])
def test_bad_resolution(bad):
    with pytest.raises(ValueError, match="`resolution` should be an integer"):
        rescale(tiny_classifier(16), bad)


def test_original_is_not_modified():
    model = tiny_classifier(16)
    before = [w.numpy().copy() for w in model.weights]
    rescale(model, 8)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.parametrize("arch, sizes, shared", [("mobilenet_v2", (32, 27, 14), True),
                                                 pytest.param("nasnet", (32, 24), False, marks=pytest.mark.slow)])
def test_rescale_all_builds_one_model_for_every_size_when_the_graph_allows(arch, sizes, shared):
    """MobileNetV2's correct_pad paddings are fused into 'same' convolutions: one model for
    every size, bitwise equal to rescale at each (odd maps included); NASNet's cells depend on
    the size: one model per size."""
    from reswise_tf.models import rescale_all

    model = _logits_model(arch)
    models = rescale_all(model, list(sizes), arch=arch)
    assert (len({id(m) for m in models.values()}) == 1) == shared
    for r in sizes:
        x = _images(r, seed=r)
        np.testing.assert_array_equal(_outputs(models[r], x), _outputs(rescale(model, r, arch=arch), x))
    with pytest.raises(ValueError, match=">= 19 for architecture 'nasnetmobile'"):
        rescale_all(_logits_model("nasnet"), [32, 18], arch="nasnet")
