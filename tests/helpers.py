"""Helpers the tests share: small real models, generated data (image folders, arrays, a
Fashion-MNIST-like source), hand-made prediction tables, and running a command line. Nothing
needs the network."""

import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from reswise_tf import data
from reswise_tf.evaluation import PredictionTable
from reswise_tf.models import LoadedModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 3  # classes of `make_table`'s tables


def run_module(module, *args, timeout=300, env=None):
    """Runs `python -m module args` from the repository root; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_error_line(stderr):
    """The single `error: ...` line of a command that failed cleanly (asserts there is one)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


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


def loaded(model, **kwargs):
    """`model` as the sweep takes it (a `LoadedModel`; its input size is the native one)."""
    return LoadedModel.from_model(model, **kwargs)


def array_source(n=10, size=16, classes=10, seed=0, split="test"):
    """A small-image `DataSource` of `n` random uint8 images (size x size x 3) and labels (ids
    of a model's classes)."""
    rng = np.random.default_rng(seed)
    ds = tf.data.Dataset.from_tensor_slices({
        "image": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "label": rng.integers(0, classes, n).astype(np.int64),
        "index": np.arange(n, dtype=np.int64),
    })
    return data.DataSource("arrays", split, ds, n, classes, small_images=True, label_kind="ids")


def generated_source(n=64, seed=0):
    """A Fashion-MNIST-like `DataSource`: n uint8 28x28x1 images of 2 learnable classes (ids of
    a model's classes: they fit a model with more outputs)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int64)
    images = rng.integers(0, 60, (n, 28, 28, 1)).astype(np.uint8)
    for image, label in zip(images, labels):
        half = image[:14] if label == 0 else image[14:]
        half += 150
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels, "index": np.arange(n, dtype=np.int64)}
    )
    return data.DataSource("generated", "train", ds, n, 2, small_images=True, label_kind="ids")


def make_table(resolution, labels, pred, conf, macs, native=None):
    """Each image predicts `pred` with probability `conf`, the other classes share the rest."""
    labels, pred, conf = np.asarray(labels), np.asarray(pred), np.asarray(conf, np.float64)
    n = len(labels)
    ids = np.zeros((n, NUM_CLASSES), np.int32)
    probs = np.zeros((n, NUM_CLASSES), np.float32)
    for i in range(n):
        others = [c for c in range(NUM_CLASSES) if c != pred[i]]
        ids[i] = [pred[i], *others]
        probs[i] = [conf[i], *[(1 - conf[i]) / (NUM_CLASSES - 1)] * len(others)]
    meta = {"macs": macs}
    if native is not None:
        meta["native_resolution"] = native
    return PredictionTable(resolution, np.arange(n), labels.astype(np.int64), ids, probs, meta)


def table_from_logits(resolution, labels, logits, meta):
    """A `PredictionTable` of softmax(`logits`), classes sorted by decreasing probability."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ids = np.argsort(-p, 1).astype(np.int32)
    probs = np.take_along_axis(p, ids, 1).astype(np.float32)
    return PredictionTable(resolution, np.arange(len(labels)), labels, ids, probs, meta)


def synthetic_tables(n=2000, seed=1, resolutions=(32, 28, 24, 20, 16), num_classes=10):
    """A sweep in which accuracy falls with resolution and low resolutions are overconfident."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    difficulty = rng.normal(size=n)
    shift = {32: 2.2, 28: 2.0, 24: 1.7, 20: 1.1, 16: 0.3, 12: -0.6, 8: -1.2}
    tables = {}
    for r in resolutions:
        margin = shift[r] - difficulty + rng.normal(scale=0.6 if r >= 24 else 1.0, size=n)
        logits = rng.normal(size=(n, num_classes))
        top = np.where(margin > 0, labels, (labels + rng.integers(1, num_classes, n)) % num_classes)
        logits[np.arange(n), top] += 2 + 2 * np.abs(margin)
        logits /= 1.0 if r >= 28 else 0.4
        meta = {"macs": 40000 * r * r, "native_resolution": max(resolutions)}
        tables[r] = table_from_logits(r, labels, logits, meta)
    return tables
