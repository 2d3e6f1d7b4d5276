"""keras_hub's ViT (random weights built in the test: presets need the network): saved and
loaded as a user model; native exact; reduced sizes equal to a classifier built at that size
with the resampled table; inside a user model; MACs counted (its blocks are custom layers) and
equal to the hand count; sizes that are not patch multiples refused. Skipped without keras-hub
(`pip install -e ".[hub]"`; scripts/setup.sh installs it)."""

import keras
import numpy as np
import pytest

from reswise_tf.cost import count_macs
from reswise_tf.models import resample, rescale
from reswise_tf.models.keras_hub import POSITION_TABLES

POSITION_PATH = POSITION_TABLES["ViTBackbone"][0]

keras_hub = pytest.importorskip("keras_hub")

CFG = dict(patch_size=8, num_layers=2, num_heads=3, hidden_dim=96, mlp_dim=384)
CLASSES = 10


def classifier(size):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), **CFG)
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=CLASSES)


def hand_macs(size, p=8, c=96, depth=2, heads=3, mlp=384, classes=CLASSES):
    n = (size // p) ** 2
    t = n + 1
    block = 3 * t * c * c + 2 * heads * t * t * (c // heads) + t * c * c + 2 * t * c * mlp
    return n * c * p * p * 3 + depth * block + c * classes


def resampled_into(original, new):
    """`new` with every weight of `original`, the position table resampled to its grid."""
    grid = new.backbone.image_shape[0] // CFG["patch_size"]
    for a, b in zip(original.weights, new.weights, strict=True):
        value = keras.ops.convert_to_numpy(a)
        b.assign(resample.resample_pos_embed(value, grid) if a.path.endswith(POSITION_PATH) else value)
    return new


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    original = classifier(64)
    table = original.backbone.layers[1].position_embedding.embeddings  # a smooth, visible table
    g = np.linspace(-1, 1, 8)
    smooth = np.sin(3 * g[:, None, None] + np.arange(96)[None, None] * 0.1) * np.cos(2 * g[None, :, None])
    table.assign(np.concatenate([keras.ops.convert_to_numpy(table)[:1], 0.5 * smooth.reshape(64, 96)]).astype("float32"))
    path = str(tmp_path_factory.mktemp("hub") / "hub_vit.keras")
    original.save(path)
    return keras.models.load_model(path, safe_mode=True)


def _x(size, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (2, size, size, 3)).astype("float32")


def test_native_exact_and_reduced_equal_a_model_built_there(model):
    np.testing.assert_array_equal(np.asarray(rescale(model, 64)(_x(64))), np.asarray(model(_x(64))))
    for size in (48, 32):
        reduced = rescale(model, size)
        assert type(reduced).__name__ == "ViTImageClassifier"
        np.testing.assert_array_equal(np.asarray(reduced(_x(size))),
                                      np.asarray(resampled_into(model, classifier(size))(_x(size))))
        assert count_macs(reduced) == hand_macs(size)
    assert count_macs(model) == hand_macs(64)


def test_inside_a_user_model(model):
    image = keras.Input((64, 64, 3), name="image")
    z = keras.layers.Rescaling(2.0, offset=-1.0)(image)
    z = keras.layers.Dense(5, name="user_head")(keras.layers.GlobalAveragePooling1D()(model.backbone(z)))
    user = keras.Model(image, z)
    np.testing.assert_array_equal(np.asarray(rescale(user, 64)(_x(64))), np.asarray(user(_x(64))))
    reduced = rescale(user, 48)
    direct = resampled_into(model, classifier(48)).backbone
    image48 = keras.Input((48, 48, 3))
    head = keras.layers.Dense(5)
    z48 = head(keras.layers.GlobalAveragePooling1D()(direct(keras.layers.Rescaling(2.0, offset=-1.0)(image48))))
    head.set_weights(user.get_layer("user_head").get_weights())
    np.testing.assert_array_equal(np.asarray(reduced(_x(48))), np.asarray(keras.Model(image48, z48)(_x(48))))


def test_sizes_that_are_not_patch_multiples_are_refused(model):
    with pytest.raises(ValueError, match="multiple of 8 \\(the patch size.*Nearest valid: 40, 48"):
        rescale(model, 44)
