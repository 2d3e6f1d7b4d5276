"""The data stage: sources of decoded, labelled images and the one preprocessing chain."""

from reswise_tf.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST,
    fashion_mnist_arrays,
    fashion_mnist_debian_source,
    read_idx,
)
from reswise_tf.data.labels import LABEL_KINDS, LabelMismatchError, Labels
from reswise_tf.data.preprocessing import PREPROCESS_MODES, prepare
from reswise_tf.data.readers import (
    IMAGE_EXTENSIONS,
    SMALL_IMAGE_MAX,
    dataset_labels,
    describe_ignored,
    find_bad_image,
    folder_classes,
    folder_source,
    from_memory,
    imagenet_synsets,
    load_source,
    tfds_source,
)
from reswise_tf.data.source import DataError, DataSource

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "LABEL_KINDS",
    "LabelMismatchError",
    "Labels",
    "dataset_labels",
    "PREPROCESS_MODES",
    "IMAGE_EXTENSIONS",
    "SMALL_IMAGE_MAX",
    "DataError",
    "DataSource",
    "describe_ignored",
    "fashion_mnist_arrays",
    "fashion_mnist_debian_source",
    "find_bad_image",
    "folder_classes",
    "folder_source",
    "from_memory",
    "imagenet_synsets",
    "load_source",
    "prepare",
    "read_idx",
    "tfds_source",
]
