"""Segmentation sources: a class map per image (`label` (H, W), `IGNORE_LABEL` not scored).

* TFDS sets with a segmentation mask: `oxford_iiit_pet` (its trimap 1/2/3 -> classes 0 pet,
  1 background, 2 border, as Keras' segmentation example does). Downloads off unless asked.
* `folder:PATH` holding `images/` and `masks/`: PNG label maps with the images' file names
  (any image extension; the mask `.png`). A mask of another size than its image is an error
  naming the file, and a class id the model does not have (other than 255, the ignore label)
  refuses the model (`labels.Labels.check_outputs`), both before any model runs.
* `fashion_mnist_scenes` (`scenes.py`): the offline stand-in.

Masks of different sizes cannot share a batch as they are: each is padded to `MAX_MASK` with the
ignore label and carries its own size, and the sweep resizes the predicted probabilities back to that
size alone (the label is never resized). Images are resized to each size directly (no crop,
which would cut the label).
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from reswise_tf.data.labels import Labels
from reswise_tf.data.source import IGNORE_LABEL, DataError, DataSource

MAX_MASK = 512  # masks of varying size are padded to this side (pets: up to 500 px)
# TFDS segmentation sets: (classes, mask -> class ids).
SETS = {
    "oxford_iiit_pet": (3, lambda mask: tf.cast(mask, tf.int32) - 1),  # trimap 1, 2, 3 -> 0 pet, 1 background, 2 border
}
MASKS, IMAGES = "masks", "images"


def is_segmentation_folder(root):
    return os.path.isdir(os.path.join(root, IMAGES)) and os.path.isdir(os.path.join(root, MASKS))


def padded(mask):
    """{'mask': the mask padded to MAX_MASK x MAX_MASK with the ignore label, 'size': its (h, w)}."""
    shape = tf.shape(mask)
    tf.debugging.assert_less_equal(tf.reduce_max(shape), MAX_MASK,
                                   message=f"a mask is larger than {MAX_MASK} px on a side")
    filled = tf.pad(tf.cast(mask, tf.int32) - IGNORE_LABEL, [[0, MAX_MASK - shape[0]], [0, MAX_MASK - shape[1]]])
    return {"mask": tf.cast(filled + IGNORE_LABEL, tf.uint8), "size": shape[:2]}


def unpadded(label):
    """A class map at its own size: `padded`'s {'mask', 'size'} cut back, any other map as it is."""
    if isinstance(label, dict):
        return label["mask"][: label["size"][0], : label["size"][1]]
    return label


def tfds_segmentation_source(name, dataset, split, count):
    """A `DataSource` of TFDS set `name` (in `SETS`) from its `dataset` of examples."""
    classes, to_ids = SETS[name]

    def example(i, ex):
        mask = to_ids(ex["segmentation_mask"][..., 0])
        return {"image": ex["image"], "label": padded(mask), "index": i}

    return DataSource(name=name, split=split, dataset=dataset.enumerate().map(example), num_examples=count,
                      num_classes=classes, small_images=True, task="segmentation")


def folder_pairs(root):
    """[(image path, mask path)] of a segmentation folder, sorted by file name; an image without
    a mask is an error naming it."""
    images = sorted(f for f in os.listdir(os.path.join(root, IMAGES)) if not f.startswith("."))
    if not images:
        raise DataError(f"Folder {os.path.join(root, IMAGES)!r} holds no images")
    pairs = []
    for name in images:
        mask = os.path.join(root, MASKS, os.path.splitext(name)[0] + ".png")
        if not os.path.isfile(mask):
            raise DataError(f"Image {os.path.join(root, IMAGES, name)} has no mask {mask}")
        pairs.append((os.path.join(root, IMAGES, name), mask))
    return pairs


def folder_labels(root, pairs=None):
    """`Labels` of a segmentation folder (the largest class id of its masks + 1, kind `ids`),
    checked: every mask the size of its image."""
    pairs = pairs or folder_pairs(root)
    largest = 0
    for image_path, mask_path in pairs:
        with Image.open(image_path) as image, Image.open(mask_path) as mask:
            if image.size != mask.size:
                raise DataError(f"Mask {mask_path} is {mask.size[0]}x{mask.size[1]} but its image is "
                                f"{image.size[0]}x{image.size[1]}: a mask must label every pixel of its image")
            ids = np.unique(np.asarray(mask))
        ids = ids[ids != IGNORE_LABEL]
        largest = max(largest, int(ids.max()) if len(ids) else 0)
    return Labels(f"folder:{root}", largest + 1, "ids", task="segmentation")


def folder_segmentation_source(root):
    """A segmentation `DataSource` of `root/images/` and `root/masks/`."""
    pairs = folder_pairs(root)
    labels = folder_labels(root, pairs)

    def read(i, image_path, mask_path):
        image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
        mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)[..., 0]
        return {"image": image, "label": padded(mask), "index": i}

    ds = tf.data.Dataset.from_tensor_slices(([p for p, _ in pairs], [m for _, m in pairs])).enumerate()
    ds = ds.map(lambda i, paths: read(i, *paths), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return DataSource(name=f"folder:{root}", split=None, dataset=ds, num_examples=len(pairs),
                      num_classes=labels.num_classes, small_images=True, files=[p for p, _ in pairs],
                      label_kind="ids", task="segmentation")
