"""What every data source gives a sweep: a `DataSource`, and the data stage's one error type."""

import dataclasses

import tensorflow as tf


class DataError(ValueError):
    """The dataset cannot be read as asked (missing, not prepared, or a bad file)."""


@dataclasses.dataclass
class DataSource:
    """A dataset ready for a sweep.

    Attributes:
      name: what the user asked for (e.g. `cifar10`, `folder:/data/val`).
      split: split evaluated (`None` for folders).
      dataset: tf.data.Dataset of `{'image', 'label', 'index'}` (decoded lazily, in order).
      num_examples: number of examples in the split (before `--num_examples`).
      num_classes: classes of the dataset's label space.
      small_images: True for 32-px-like data, resized directly instead of crop + resize.
      files: paths of the images, for folder sources (to name a bad file).
      skip_bad_images: unreadable images are left out of `dataset` (the sweep counts them);
        otherwise every one of `num_examples` must be evaluated.
      ignored_files: files of a folder source that are not images of a decoded kind.
    """

    name: str
    split: str | None
    dataset: tf.data.Dataset
    num_examples: int
    num_classes: int
    small_images: bool
    files: list = dataclasses.field(default_factory=list)
    skip_bad_images: bool = False
    ignored_files: list = dataclasses.field(default_factory=list)
