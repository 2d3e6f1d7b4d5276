"""Shared fixtures: small real models and generated image folders (no network, no downloads)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import reswise_tf  # noqa: E402,F401  (imports TF once, before the tests)


def tiny_classifier(resolution=16, classes=10, seed=0, channels=3, activation="softmax"):
    """A small functional CNN ending in global pooling, with BatchNorm, depthwise and separable
    convolutions, and random but non-trivial (seeded) weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((resolution, resolution, channels), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="predictions")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    # Move BN statistics away from identity so that the tests see them.
    bn = model.get_layer("stem_bn")
    rng = np.random.default_rng(seed)
    bn.moving_mean.assign(rng.normal(0, 0.1, 8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 8).astype("float32"))
    return model


def write_image_folder(root, class_names, per_class=3, size=(40, 30), seed=0, ext=".png"):
    """Writes `per_class` random RGB images of `size` (w, h) into root/<class>/; returns paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for name in class_names:
        folder = os.path.join(root, str(name))
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            path = os.path.join(folder, f"img_{i}{ext}")
            Image.fromarray(pixels).save(path)
            paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    write_image_folder(str(root), [0, 1, 2], per_class=4)
    return str(root)
