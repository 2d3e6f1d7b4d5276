"""Variants of every rescaled model that a sweep evaluates in the same pass."""

import numpy as np
import tensorflow as tf

from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation.resolution_sweep import Variant
from reswise_tf.models.batchnorm import recalibrate_bn

BN_VARIANT = "bn_recalibrated"
FLOAT32_VARIANT = "float32_reference"


def float32_variant():
    """The model itself in float32, evaluated beside a reduced-precision sweep in the same pass
    (its cache in `float32_reference/`), to measure how often the precision changes a
    prediction."""
    return Variant(FLOAT32_VARIANT, lambda model, resolution: model, {"precision": "float32"}, precision="float32")


def bn_variant(bn_source, num_images, config, channels, *, small):
    """The `Variant` that re-estimates BatchNorm statistics at each resolution on the first
    `num_images` images of `bn_source` (a *training* split; labels unused), decoded once and
    prepared at each resolution as the sweep prepares its images."""
    decoded = bn_source.dataset.take(num_images).map(lambda ex: ex["image"]).cache()
    available = sum(1 for _ in decoded)
    if available < num_images:
        raise ValueError(f"`recalibrate_bn` asks for {num_images} images; {bn_source.name} has {available}")

    def transform(model, resolution):
        images = decoded.map(lambda image: prepare(image, resolution, mode=config.preprocess,
                                                   crop_pct=config.crop_pct, direct=small, channels=channels))
        batch = np.stack(list(images.as_numpy_iterator()))
        return recalibrate_bn(model, tf.constant(batch), batch_size=min(config.batch_size, 64))

    description = {"recalibrate_bn": num_images, "dataset": bn_source.name, "split": bn_source.split}
    return Variant(BN_VARIANT, transform, description)
