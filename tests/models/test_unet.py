"""The segmentation models of the registry and users': a U-Net rescaled with its weights (exact
at native, equal to the builder at a reduced size), sizes that do not fit its total stride
refused naming valid ones, a user segmenter's final resize re-derived at the new size, and
transposed convolutions counted."""

import keras
import numpy as np
import pytest

from reswise_tf.cost import count_macs
from reswise_tf.models import get_arch, rescale
from reswise_tf.models.inspect import total_stride
from reswise_tf.models.loading import LoadedModel
from reswise_tf.models.unet import UNetSmall


def _x(size):
    return np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype("float32")


def test_a_unet_at_a_reduced_size_equals_the_builder_there():
    keras.utils.set_random_seed(0)
    spec = get_arch("unet_small")
    model = spec.build(64, classes=11)
    np.testing.assert_array_equal(np.asarray(rescale(model, 64, arch=spec)(_x(64))), np.asarray(model(_x(64))))
    reduced = rescale(model, 40, arch=spec)
    direct = spec.build(40, classes=11)
    direct.set_weights(model.get_weights())
    assert reduced.output.shape == (None, 40, 40, 11)
    np.testing.assert_array_equal(np.asarray(reduced(_x(40))), np.asarray(direct(_x(40))))
    via_graph = rescale(model, 40)  # as a user model: its own graph rebuilt
    np.testing.assert_allclose(np.asarray(via_graph(_x(40))), np.asarray(direct(_x(40))), atol=1e-6)
    with pytest.raises(ValueError, match=r"multiple of 8 \(the total stride of 'unet_small'\).*Nearest valid: 40, 48"):
        rescale(model, 44, arch=spec)
    with pytest.raises(ValueError, match=r"multiple of 8 .*Nearest valid: 40, 48"):
        rescale(model, 44)  # a user model: the stride found from its feature maps
    assert total_stride(model) == 8 and LoadedModel.from_model(model).size_multiple == 8


def test_unet_macs_count_every_convolution_and_transposed_convolution():
    model = UNetSmall(input_shape=(16, 16, 3), classes=4, widths=(4, 8))
    convs = 16 * 16 * 9 * 3 * 4 + 16 * 16 * 9 * 4 * 4  # level 0
    convs += 8 * 8 * 9 * 4 * 8 + 8 * 8 * 9 * 8 * 8  # level 1 (the bottleneck)
    up = 8 * 8 * 8 * 2 * 2 * 4  # the 2x2 stride-2 transposed convolution: every input pixel x kernel x filters
    decoder = 16 * 16 * 9 * 8 * 4 + 16 * 16 * 9 * 4 * 4  # after the skip concatenation (4 + 4 channels)
    head = 16 * 16 * 4 * 4
    assert count_macs(model) == convs + up + decoder + head


def test_a_user_segmenter_resizing_its_map_back_to_the_image_is_rebuilt():
    keras.utils.set_random_seed(1)
    image = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=4, padding="same")(image)
    x = keras.layers.Conv2D(5, 1, name="logits")(x)
    model = keras.Model(image, keras.layers.Resizing(32, 32, name="to_image")(x))
    reduced = rescale(model, 16)
    assert reduced.get_layer("to_image").height == 16 and reduced.output.shape == (None, 16, 16, 5)
    classifier = keras.Model(image, keras.layers.GlobalAveragePooling2D()(keras.layers.Resizing(32, 32)(image)))
    with pytest.raises(ValueError, match="would resize the reduced input back"):
        rescale(classifier, 16)  # a classifier's resize still undoes the reduction
