import numpy as np
import pytest
import tensorflow as tf
from keras.applications import imagenet_utils

from reswise_tf.data import preprocessing


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_normalize_matches_keras_preprocess_input(mode):
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    expected = imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(preprocessing.normalize(x, mode).numpy(), expected, rtol=1e-5, atol=1e-4)


def test_none_mode_is_identity_and_unknown_mode_lists_choices():
    x = np.full((1, 2, 2, 3), 7.0, "float32")
    np.testing.assert_array_equal(preprocessing.normalize(x, "none").numpy(), x)
    with pytest.raises(ValueError, match="Unknown preprocess mode 'bgr'. Available: caffe, tf, torch, none"):
        preprocessing.normalize(x, "bgr")


def test_resize_then_centre_crop_keeps_crop_pct_of_the_shorter_side():
    # A 100x200 image whose columns are numbered: the crop's field of view is measurable.
    image = np.tile(np.arange(200, dtype="float32")[None, :, None], (100, 1, 3))
    out = preprocessing.resize(image, 70, crop_pct=0.875).numpy()
    assert out.shape == (70, 70, 3)
    # Shorter side 100 -> floor(70 / 0.875) = 80, width 200 -> 160; crop 70 centred: columns
    # 45..114 of the resized image, i.e. about 56..143 of the original.
    assert 50 < out[0, 0, 0] < 62 and 138 < out[0, -1, 0] < 150


def test_direct_resize_keeps_the_whole_image():
    image = np.zeros((28, 28, 1), "uint8")
    image[:, -1] = 255
    out = preprocessing.resize(image, 32, direct=True).numpy()
    assert out.shape == (32, 32, 1) and out[:, -1].mean() > 100


def test_grayscale_is_repeated_to_three_channels():
    image = tf.constant(np.arange(4, dtype="uint8").reshape(2, 2, 1))
    out = preprocessing.to_channels(image, 3).numpy()
    assert out.shape == (2, 2, 3) and (out[..., 0] == out[..., 2]).all()


def test_multi_resolution_fn_makes_every_resolution_from_one_image():
    fn = preprocessing.multi_resolution_fn([32, 16], mode="tf", direct=True)
    out = fn({"image": tf.zeros((28, 28, 1), tf.uint8), "label": tf.constant(3), "index": tf.constant(0)})
    assert set(out["images"]) == {"32", "16"}
    assert out["images"]["16"].shape == (16, 16, 3)
    assert float(out["images"]["32"][0, 0, 0]) == -1.0


@pytest.mark.parametrize("bad", [0, 1.5, -0.1])
def test_bad_crop_pct(bad):
    with pytest.raises(ValueError, match="`crop_pct` should be in"):
        preprocessing.multi_resolution_fn([8], mode="tf", crop_pct=bad)
