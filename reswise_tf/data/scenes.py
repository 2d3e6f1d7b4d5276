"""`fashion_mnist_scenes`: an offline segmentation set composed of real Fashion-MNIST items.

Each scene is a 64-px black canvas with 2 to 4 Fashion-MNIST items (from Debian's files), each
scaled by 0.8 to 1.5 (22 to 42 px) and placed at a random position inside the canvas; later
items occlude earlier ones. Each pixel is labelled with its item's class + 1 where the item's
ink is above `INK` (of 255), 0 (background) elsewhere: 11 classes. Training scenes are made from
the 60,000 training images, test scenes from the 10,000 test images (20,000 and 2,000 scenes by
default). A scene is a function of (split, seed, its index) alone, so the set is deterministic,
generated on the fly, and any scene can be read without the ones before it. It is a composite of
real items, not photographs: the docs say so where it is used.
"""

import numpy as np
import tensorflow as tf
from PIL import Image

from reswise_tf.data.fashion_mnist import DEBIAN_FASHION_MNIST, fashion_mnist_arrays
from reswise_tf.data.source import DataError, DataSource

NAME = "fashion_mnist_scenes"
CANVAS = 64
INK = 40  # pixel value (of 255) above which an item's pixel belongs to the item
ITEMS = (2, 4)  # items per scene, inclusive
SCALES = (0.8, 1.5)
NUM_CLASSES = 11  # background and the 10 Fashion-MNIST classes
DEFAULT_SCENES = {"train": 20_000, "test": 2_000}
_SPLIT_SEED = {"train": 1, "test": 2}


def make_scene(items, labels, index, seed=0, split="test"):
    """(image uint8 (64, 64, 1), mask uint8 (64, 64)) of scene `index`, composed of `items`
    (uint8 (N, 28, 28)) with their `labels`."""
    rng = np.random.default_rng([seed, _SPLIT_SEED[split], index])
    image = np.zeros((CANVAS, CANVAS), np.uint8)
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    for _ in range(rng.integers(ITEMS[0], ITEMS[1] + 1)):
        i = rng.integers(len(items))
        side = int(round(28 * rng.uniform(*SCALES)))
        item = np.asarray(Image.fromarray(items[i]).resize((side, side), Image.BILINEAR))
        top, left = rng.integers(0, CANVAS - side + 1, size=2)
        ink = item > INK
        window = (slice(top, top + side), slice(left, left + side))
        image[window] = np.where(ink, item, image[window])
        mask[window] = np.where(ink, labels[i] + 1, mask[window])
    return image[..., None], mask


def scenes_source(split="test", *, num_scenes=None, seed=0, root=DEBIAN_FASHION_MNIST):
    """A segmentation `DataSource` of `num_scenes` scenes (default `DEFAULT_SCENES[split]`) of
    {'image': uint8 (64, 64, 1), 'label': uint8 (64, 64) class map, 'index'}."""
    if split not in DEFAULT_SCENES:
        raise DataError(f"Unknown split {split!r} of {NAME}. Available: {', '.join(DEFAULT_SCENES)}")
    items, labels = fashion_mnist_arrays(split, root, canvas=None)
    items = items[..., 0]
    count = DEFAULT_SCENES[split] if num_scenes is None else int(num_scenes)

    def scene(i):
        image, mask = make_scene(items, labels, int(i), seed, split)
        return image, mask

    def read(i):
        image, mask = tf.numpy_function(scene, [i], (tf.uint8, tf.uint8), stateful=False)
        return {"image": tf.ensure_shape(image, (CANVAS, CANVAS, 1)), "label": tf.ensure_shape(mask, (CANVAS, CANVAS)),
                "index": i}

    ds = tf.data.Dataset.range(count).map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return DataSource(name=NAME, split=split, dataset=ds, num_examples=count, num_classes=NUM_CLASSES,
                      small_images=True, task="segmentation", generator={"seed": seed} if seed else {})
