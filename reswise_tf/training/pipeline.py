"""The training input pipeline: the sweep's own preparation chain with augmentation inside it.

A model trained here is the reference point of a resolution study: its input size is its
native resolution, and the sweep then evaluates it at lower ones. So training inputs are made
by `data.preprocessing.prepare`, exactly as the sweep makes its inputs, with augmentation
between the resize and the normalisation. Evaluated at its own resolution, the sweep feeds the
model the validation pipeline's inputs, bit for bit, so its native-resolution accuracy is the
trainer's final accuracy.

Small images (CIFAR-10; Fashion-MNIST on its 32-px canvas) are resized to the training
resolution as the sweep resizes them, so the object keeps its fraction of the frame at every
resolution, which is the quantity a study varies.

Augmentation (`augment_image`): CIFAR's random crop, a random shrink onto a black canvas
(`scale`: the model sees its objects at the smaller sizes a lower input resolution gives it,
as ImageNet's random-resized-crop shows its models objects at many scales), ImageNet's
random-resized-crop, each with or without a random horizontal flip; all drawn from stateless
ops seeded per example, so a run is reproducible from `seed`, with new draws every epoch.
"""

import functools

import tensorflow as tf

from reswise_tf.data.preprocessing import check_crop_pct, check_preprocess, prepare
from reswise_tf.data.segmentation import unpadded
from reswise_tf.data.source import IGNORE_LABEL
from reswise_tf.utils.checks import check_choice, check_positive_int, check_resolution

AUGMENTATIONS = ("crop_flip", "crop", "scale_flip", "scale", "rrc_flip", "rrc", "flip", "none")
# The smallest scale of each scale augmentation when none is given: "scale" shows the image at
# 3/4 of its side or more (32 px -> 24..32, the thesis's first reduced sizes); "rrc" crops at
# least 25 % of the area (ImageNet's 8 % is for images whose objects fill a small part).
DEFAULT_MIN_SCALE = {"scale": 0.75, "rrc": 0.25}


def crop_padding(resolution):
    """Zero padding (pixels per side) of the random crop: 4 at 32 px, scaled with resolution."""
    return max(1, round(resolution / 8))


def min_scale_of(augment, min_scale=None):
    """The smallest scale `augment` draws (None for augmentations without one); checks it."""
    kind = augment.removesuffix("_flip")
    if kind not in DEFAULT_MIN_SCALE:
        return None
    min_scale = DEFAULT_MIN_SCALE[kind] if min_scale is None else min_scale
    if not 0 < min_scale <= 1:
        raise ValueError(f"`min_scale` should be in (0, 1]. Received min_scale={min_scale!r}")
    return float(min_scale)


def augment_image(image, seed, augment="crop_flip", min_scale=None, mask=None):
    """Randomly transforms one float image, stateless (the same `seed`, the same draw).

    - `crop`: a random crop of the image zero-padded by `crop_padding` pixels (CIFAR's recipe).
    - `scale`: the image shown smaller, as a lower input resolution shows it: resized to a
      random side between `min_scale` and 1 of its own and placed at a random position on a
      black canvas of its size (the border of the 32-px Fashion-MNIST canvas). Of the variants
      measured on MobileNetV2 (docs/results/fashion_mnist.md: centred, or half of the images
      only), this one keeps the most accuracy at the first reduced size.
    - `rrc`: ImageNet's random-resized-crop: a random box of `min_scale`..1 of the area and
      aspect ratio 3/4..4/3, resized back to the image's size.
    - `_flip` (or `flip` alone): a random horizontal flip.

    Args:
      image: float32 (resolution, resolution, channels), values 0..255.
      seed: int tensor of shape (2,), this example's seed.
      augment: one of `AUGMENTATIONS`.
      min_scale: smallest side (`scale`) or area (`rrc`) fraction; None: `DEFAULT_MIN_SCALE`.
      mask: a segmentation label (resolution, resolution), transformed the same way (nearest
        neighbour; the border it gains is the ignore label, not scored). Then (image, mask) is
        returned.
    """
    check_choice(augment, AUGMENTATIONS, "augment")
    min_scale = min_scale_of(augment, min_scale)
    geometry_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    kind = augment.removesuffix("_flip")
    # The mask is moved as `mask - IGNORE_LABEL`, so that the border a crop or a shrink pads
    # with zeros comes back as the ignore label: it is no class of the data.
    maps = [image] if mask is None else [image, tf.cast(mask, tf.float32)[..., None] - IGNORE_LABEL]
    methods = ("bilinear", "nearest")
    if kind == "crop":
        maps = tf.split(_random_crop(tf.concat(maps, -1), geometry_seed), [m.shape[-1] for m in maps], -1)
    elif kind == "scale":
        maps = [_random_shrink(m, geometry_seed, min_scale, how) for m, how in zip(maps, methods)]
    elif kind == "rrc":
        maps = [_random_resized_crop(m, geometry_seed, min_scale, how) for m, how in zip(maps, methods)]
    if augment.endswith("flip"):
        maps = [tf.image.stateless_random_flip_left_right(m, seed=flip_seed) for m in maps]
    if mask is None:
        return maps[0]
    return maps[0], tf.cast(maps[1][..., 0] + IGNORE_LABEL, mask.dtype)


def _random_crop(image, seed):
    height, width, channels = image.shape
    pad = crop_padding(height)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, (height, width, channels), seed=seed)


def _random_shrink(image, seed, min_scale, method="bilinear"):
    height, width, channels = image.shape
    size_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    side = tf.random.stateless_uniform((), size_seed, minval=min_scale, maxval=1.0)
    new_h = tf.clip_by_value(tf.cast(tf.round(side * height), tf.int32), 1, height)
    new_w = tf.clip_by_value(tf.cast(tf.round(side * width), tf.int32), 1, width)
    small = tf.image.resize(image, tf.stack([new_h, new_w]), method=method, antialias=method == "bilinear")
    top = tf.random.stateless_uniform((), y_seed, maxval=height - new_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform((), x_seed, maxval=width - new_w + 1, dtype=tf.int32)
    image = tf.image.pad_to_bounding_box(small, top, left, height, width)
    return tf.ensure_shape(image, (height, width, channels))


def _random_resized_crop(image, seed, min_scale, method="bilinear"):
    height, width, channels = image.shape
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(min_scale, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, size)
    image = tf.image.resize(crop, (height, width), method=method, antialias=method == "bilinear")
    return tf.ensure_shape(image, (height, width, channels))


def label_map(label, resolution):
    """A segmentation label (a class map, or {"mask", "size"} of a padded one) at `resolution`
    (nearest neighbour: training only; the sweep never resizes a label), int32."""
    resized = tf.image.resize(tf.cast(unpadded(label), tf.int32)[..., None], (resolution, resolution), method="nearest")
    return tf.ensure_shape(resized[..., 0], (resolution, resolution))


def train_pipeline(
    source,
    resolution,
    batch_size,
    *,
    preprocess,
    augment="crop_flip",
    min_scale=None,
    training=True,
    seed=0,
    channels=3,
    crop_pct=0.875,
    classes=None,
    num_examples=None,
    shuffle_buffer=None,
):
    """Batches of `(images, one-hot labels)` from a `data.DataSource`.

    Images are made as the sweep makes them (`data.preprocessing.prepare`); with
    `training=True` the examples are also shuffled, augmented and batched without a remainder.

    Args:
      source: a `data.DataSource`.
      resolution: output height and width in pixels.
      batch_size: global batch size.
      preprocess: `preprocess_input` mode of the architecture.
      augment: one of `AUGMENTATIONS` (ignored when `training=False`).
      min_scale: smallest scale of a `scale`/`rrc` augmentation (None: its default).
      training: shuffle, augment and drop the last partial batch.
      seed: seed of the shuffle and of the augmentation.
      channels: input channels of the model (grayscale is repeated).
      crop_pct: centre-crop fraction for large images (small ones are resized directly).
      classes: length of the one-hot labels (a classification). Defaults to `source.num_classes`.
      num_examples: use only the first N examples. Defaults to all.
      shuffle_buffer: examples in the shuffle buffer. Defaults to the whole dataset for
        small images (cached decoded in memory), 1024 otherwise.

    Returns:
      A `tf.data.Dataset` of `(float32 (B, R, R, channels), float32 (B, classes))`, or for a
      segmentation source `(images, uint8 (B, R, R) class maps)`.
    """
    check_resolution(resolution, arg="resolution")
    check_positive_int(batch_size, "batch_size")
    check_preprocess(preprocess)
    check_crop_pct(crop_pct)
    check_choice(augment, AUGMENTATIONS, "augment")
    min_scale = min_scale_of(augment, min_scale)
    check_positive_int(num_examples, "num_examples", allow_none=True)
    classes = classes or source.num_classes
    make = functools.partial(prepare, resolution=resolution, mode=preprocess, crop_pct=crop_pct,
                             direct=source.small_images, channels=channels)
    segmenting = source.task == "segmentation"

    def target(example):
        """One-hot classes, or a segmentation's class map at the training resolution."""
        return label_map(example["label"], resolution) if segmenting else tf.one_hot(example["label"], classes)

    def train_fn(example, seed):
        if not segmenting:
            return make(example["image"], augment=lambda x: augment_image(x, seed, augment, min_scale)), target(example)
        mask = target(example)
        pair = {}

        def both(x):
            pair["image"], pair["mask"] = augment_image(x, seed, augment, min_scale, mask=mask)
            return pair["image"]

        image = make(example["image"], augment=both)
        return image, pair["mask"]

    def eval_fn(example):
        return make(example["image"]), target(example)

    ds, count = source.dataset, source.num_examples
    if num_examples is not None:
        ds = ds.take(num_examples)
        count = min(count, num_examples) if count else num_examples
    if not training:
        ds = ds.map(eval_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    if source.small_images:
        ds = ds.cache()
    buffer = shuffle_buffer or ((count or 10_000) if source.small_images else 1024)
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds).map(train_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    drop = bool(count) and count >= batch_size
    return ds.batch(batch_size, drop_remainder=drop).prefetch(tf.data.AUTOTUNE)
