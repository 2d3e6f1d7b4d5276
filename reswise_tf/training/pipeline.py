"""The training input pipeline: the sweep's own preparation chain with augmentation inside it.

A model trained here is the reference point of a resolution study: its input size is its
native resolution, and the sweep then evaluates it at lower ones. So training inputs are made
by `data.preprocessing.prepare`, exactly as the sweep makes its inputs, with augmentation
between the resize and the normalisation. Evaluated at its own resolution, the sweep feeds the
model the validation pipeline's inputs, bit for bit, so its native-resolution accuracy is the
trainer's final accuracy.

Fashion-MNIST's 28-px images are resized (not zero-padded) to 32 or 64 px because the sweep
resizes them too: a model trained on padded 28-in-32 images would be scored by the sweep on
images with no border and objects 14% larger than any it saw. Resizing also keeps the object's
size a fixed fraction of the frame at every resolution, which is the quantity the study varies.

Augmentation (`crop_flip`): a random `resolution` crop of the image zero-padded by
`resolution / 8` pixels on each side (4 px at 32, the CIFAR recipe, scaled with the
resolution) and a random horizontal flip; both are drawn from stateless ops seeded per example,
so a run is reproducible from `seed`, with new draws every epoch.
"""

import functools

import tensorflow as tf

from reswise_tf.data.preprocessing import check_crop_pct, check_preprocess, prepare
from reswise_tf.utils.checks import check_choice, check_positive_int, check_resolution

AUGMENTATIONS = ("crop_flip", "crop", "flip", "none")


def crop_padding(resolution):
    """Zero padding (pixels per side) of the random crop: 4 at 32 px, scaled with resolution."""
    return max(1, round(resolution / 8))


def augment_image(image, seed, augment="crop_flip"):
    """Randomly crops (after zero padding) and/or flips one float image, stateless.

    Args:
      image: float32 (resolution, resolution, channels), values 0..255.
      seed: int tensor of shape (2,), this example's seed.
      augment: one of `AUGMENTATIONS`.
    """
    check_choice(augment, AUGMENTATIONS, "augment")
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if augment in ("crop_flip", "crop"):
        height, width, channels = image.shape
        pad = crop_padding(height)
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.stateless_random_crop(padded, (height, width, channels), seed=crop_seed)
    if augment in ("crop_flip", "flip"):
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def train_pipeline(
    source,
    resolution,
    batch_size,
    *,
    preprocess,
    augment="crop_flip",
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
      training: shuffle, augment and drop the last partial batch.
      seed: seed of the shuffle and of the augmentation.
      channels: input channels of the model (grayscale is repeated).
      crop_pct: centre-crop fraction for large images (small ones are resized directly).
      classes: length of the one-hot labels. Defaults to `source.num_classes`.
      num_examples: use only the first N examples. Defaults to all.
      shuffle_buffer: examples in the shuffle buffer. Defaults to the whole dataset for
        small images (cached decoded in memory), 1024 otherwise.

    Returns:
      A `tf.data.Dataset` of `(float32 (B, R, R, channels), float32 (B, classes))`.
    """
    check_resolution(resolution, arg="resolution")
    check_positive_int(batch_size, "batch_size")
    check_preprocess(preprocess)
    check_crop_pct(crop_pct)
    check_choice(augment, AUGMENTATIONS, "augment")
    check_positive_int(num_examples, "num_examples", allow_none=True)
    classes = classes or source.num_classes
    make = functools.partial(prepare, resolution=resolution, mode=preprocess, crop_pct=crop_pct,
                             direct=source.small_images, channels=channels)

    def train_fn(example, seed):
        image = make(example["image"], augment=lambda x: augment_image(x, seed, augment))
        return image, tf.one_hot(example["label"], classes)

    def eval_fn(example):
        return make(example["image"]), tf.one_hot(example["label"], classes)

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
