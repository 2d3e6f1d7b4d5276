"""Per-image preprocessing, with the resolution as a parameter (never a global).

As the reference evaluators do it (Keras applications, timm's validate.py):
- ImageNet-size images: shorter side resized to `floor(resolution / crop_pct)`, then a centre
  crop of `resolution` x `resolution`.
- Small images (CIFAR-10, Fashion-MNIST: 64 px and less): resized directly to the resolution.
Then the architecture's `preprocess_input` mode. `prepare` is the one chain (channels, resize,
optional augmentation, normalisation) that the sweep, training, BatchNorm re-estimation and the
benchmarks all use; a sweep decodes each image once and makes every resolution from it.
"""

import math

import tensorflow as tf

from reswise_tf.utils.checks import check_choice, check_fraction

# `preprocess_input` modes; "none" also stands for models that normalise inside themselves.
PREPROCESS_MODES = ("caffe", "tf", "torch", "none")

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def check_preprocess(mode):
    check_choice(mode, PREPROCESS_MODES, "preprocess mode")


def check_crop_pct(crop_pct):
    check_fraction(crop_pct, "crop_pct")


def normalize(images, mode):
    """Applies a `preprocess_input` mode to float RGB images in [0, 255].

    Same arithmetic as `keras.applications.imagenet_utils.preprocess_input(x, mode=...)`:
    `caffe` RGB->BGR minus the ImageNet mean, `tf` to [-1, 1], `torch` ImageNet mean/std
    standardisation, `none` unchanged.
    """
    check_preprocess(mode)
    images = tf.cast(images, tf.float32)
    if mode == "caffe":
        return images[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR)
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "torch":
        return (images / 255.0 - tf.constant(_TORCH_MEAN)) / tf.constant(_TORCH_STD)
    return images


def resize(image, resolution, *, crop_pct=0.875, direct=False):
    """Resizes one decoded HxWxC image to `resolution` x `resolution` (float32, 0..255).

    Args:
      image: uint8 or float tensor of shape (height, width, channels).
      resolution: output size in pixels.
      crop_pct: fraction of the resized shorter side kept by the centre crop.
      direct: resize the whole image to the square (for small-image datasets), no crop.
    """
    image = tf.cast(image, tf.float32)
    if direct:
        return tf.image.resize(image, (resolution, resolution), antialias=True)
    scale_size = math.floor(resolution / crop_pct)
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = scale_size / tf.minimum(height, width)
    new_h = tf.maximum(resolution, tf.cast(tf.round(height * scale), tf.int32))
    new_w = tf.maximum(resolution, tf.cast(tf.round(width * scale), tf.int32))
    image = tf.image.resize(image, tf.stack([new_h, new_w]), antialias=True)
    top = (new_h - resolution) // 2
    left = (new_w - resolution) // 2
    return image[top : top + resolution, left : left + resolution, :]


def to_channels(image, channels):
    """Repeats a grayscale image to `channels` channels (Fashion-MNIST into a 3-channel CNN)."""
    if image.shape[-1] == channels:
        return image
    if image.shape[-1] == 1:
        return tf.repeat(image, channels, axis=-1)
    raise ValueError(
        f"Cannot feed {image.shape[-1]}-channel images to a model with {channels} input channels"
    )


def prepare(image, resolution, *, mode, crop_pct=0.875, direct=False, channels=3, augment=None):
    """The one preparation chain: `to_channels` -> `resize` -> `augment` (training only: a
    function of the resized float image) -> `normalize`. Returns float32 (R, R, channels)."""
    image = to_channels(image, channels)
    image = resize(image, resolution, crop_pct=crop_pct, direct=direct)
    image = tf.ensure_shape(image, (resolution, resolution, channels))
    if augment is not None:
        image = augment(image)
    return normalize(image, mode)


def multi_resolution_fn(resolutions, *, mode, crop_pct=0.875, direct=False, channels=3, dtype="float32"):
    """Returns `fn(example) -> example` that replaces `example['image']` with one prepared
    tensor per resolution under `example['images'][str(resolution)]`, cast to `dtype` (a
    reduced-precision sweep casts early: half the bytes through the rest of the pipeline)."""
    check_preprocess(mode)
    check_crop_pct(crop_pct)

    def fn(example):
        image = tf.cast(to_channels(example["image"], channels), tf.float32)  # once, not per resolution
        out = {k: v for k, v in example.items() if k != "image"}
        out["images"] = {
            str(r): tf.cast(prepare(image, r, mode=mode, crop_pct=crop_pct, direct=direct, channels=channels), dtype)
            for r in resolutions
        }
        return out

    return fn
