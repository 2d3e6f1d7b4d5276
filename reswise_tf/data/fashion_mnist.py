"""Fashion-MNIST from Debian's `dataset-fashion-mnist` files (the same idx files TFDS downloads):
real, labelled data that is on this machine without a network.

reswise serves Fashion-MNIST on a 32-px canvas: the 28-px images centred on a black 32 x 32
square, as LeNet fed MNIST. It is the offline stand-in for CIFAR-10, whose images are 32 px, and
the thesis reduced its CIFAR-10 models from 32 to 28, 24, 20, 16 and 12 px: on the canvas every
one of those sizes is a genuine reduction of what the model saw at 32 px (on the 28-px images
as stored, "28 px" would be the original image, not a reduction). The border is the data's own
background (0), so nothing is invented.
"""

import gzip
import os
import struct

import numpy as np
import tensorflow as tf

from reswise_tf.data.source import DataError, DataSource

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CANVAS = 32  # pixels: CIFAR-10's size


def read_idx(path):
    """Reads an idx file (the MNIST / Fashion-MNIST format), gzip-compressed or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape}, found {body.size} bytes")
    return body.reshape(shape)


def fashion_mnist_arrays(split, root=DEBIAN_FASHION_MNIST, canvas=FASHION_MNIST_CANVAS):
    """(images uint8 (N, canvas, canvas, 1), labels int64 (N,)) of a Fashion-MNIST split: the
    28-px images centred on a black `canvas`-px square (None: as stored, 28 px)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"Unknown split {split!r} of fashion_mnist. Available: test, train")
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    images = images[..., None]
    if canvas is not None:
        if canvas < images.shape[1]:
            raise DataError(f"`canvas` should be at least the images' {images.shape[1]} px. Received canvas={canvas}")
        before = (canvas - images.shape[1]) // 2
        after = canvas - images.shape[1] - before
        images = np.pad(images, ((0, 0), (before, after), (before, after), (0, 0)))
    return images, labels.astype(np.int64)


def fashion_mnist_debian_source(split, root=DEBIAN_FASHION_MNIST):
    """Fashion-MNIST read from Debian's package files (the same files TFDS downloads), on the
    32-px canvas."""
    images, labels = fashion_mnist_arrays(split, root, canvas=None)
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels, "index": np.arange(len(labels), dtype=np.int64)}
    )
    return DataSource(
        name="fashion_mnist",
        split=split,
        dataset=ds,
        num_examples=len(labels),
        num_classes=10,
        small_images=True,
    ).on_canvas(FASHION_MNIST_CANVAS)
