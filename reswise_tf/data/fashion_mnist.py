"""Fashion-MNIST from Debian's `dataset-fashion-mnist` files (the same idx files TFDS downloads):
real, labelled data that is on this machine without a network."""

import gzip
import os
import struct

import numpy as np
import tensorflow as tf

from reswise_tf.data.source import DataError, DataSource

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


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


def fashion_mnist_arrays(split, root=DEBIAN_FASHION_MNIST):
    """(images uint8 (N, 28, 28, 1), labels int64 (N,)) of a Fashion-MNIST split."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"Unknown split {split!r} of fashion_mnist. Available: test, train")
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    return images[..., None], labels.astype(np.int64)


def fashion_mnist_debian_source(split, root=DEBIAN_FASHION_MNIST):
    """Fashion-MNIST read from Debian's package files (the same files TFDS downloads)."""
    images, labels = fashion_mnist_arrays(split, root)
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
    )
