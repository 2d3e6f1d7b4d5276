"""What every data source gives a sweep: a `DataSource`, and the data stage's one error type."""

import dataclasses

import tensorflow as tf

from reswise_tf.data.labels import Labels

TASKS = ("classification", "segmentation")
IGNORE_LABEL = 255  # a segmentation mask's "not scored" value (VOC, Cityscapes)


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
      min_side: the smallest image side seen in a sample of the images (folders), to warn when
        the crop would upsample them; None when not known.
      label_kind: what the labels are, one of `labels.LABEL_KINDS` (`imagenet`, `ids`, `own`).
      task: "classification" (a label per image) or "segmentation" (a class map per image,
        `label` of shape (H, W); `IGNORE_LABEL` pixels are not scored).
      generator: facts of a generated set that change its images (its seed), for the cache.
      canvas: the images were centred on a black square of this size by the source (LeNet's
        28-px MNIST on a 32-px canvas); None when they are given as stored. It changes every
        image, so a sweep's cache records it.
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
    canvas: int | None = None
    label_kind: str = "own"
    min_side: int | None = None
    task: str = "classification"
    generator: dict = dataclasses.field(default_factory=dict)

    def fingerprint(self):
        """What the source does to the images besides decoding them, for a sweep's cache: the
        canvas, and direct resizing of a small-image folder (folders were always cropped before)."""
        return {**({"canvas": self.canvas} if self.canvas else {}),
                **({"resize": "direct"} if self.small_images and self.files else {}),
                **({"generator": self.generator} if self.generator else {})}

    def upsample_warning(self, resolution, crop_pct):
        """A warning where the crop at `resolution` would upsample the smallest images, else ""."""
        if self.small_images or self.min_side is None or self.min_side >= resolution / crop_pct:
            return ""
        return (f"The crop at {resolution} px resizes the shorter side to {int(resolution / crop_pct)} px, larger "
                f"than the smallest images of {self.name} ({self.min_side} px): they are upsampled.")

    @property
    def labels(self):
        """The label space (`labels.Labels`), for the check against a model's outputs."""
        return Labels(self.name, self.num_classes, self.label_kind, self.task)

    def on_canvas(self, size):
        """This source with every image centred on a black `size` x `size` canvas (images larger
        than `size` are an error when read)."""
        if self.canvas is not None:
            raise ValueError(f"{self.name} is already on a {self.canvas}-px canvas. Received size={size}")
        dataset = self.dataset.map(lambda ex: {**ex, "image": pad_to_canvas(ex["image"], size)})
        return dataclasses.replace(self, dataset=dataset, canvas=size)


def pad_to_canvas(image, size):
    """`image` (H, W, C) centred on a black `size` x `size` canvas (the extra pixel of an odd
    margin goes to the bottom/right)."""
    shape = tf.shape(image)
    top, left = (size - shape[0]) // 2, (size - shape[1]) // 2
    return tf.image.pad_to_bounding_box(image, top, left, size, size)
