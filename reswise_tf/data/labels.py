"""What a dataset's labels are, known before an image is read or downloaded, and whether a
model's outputs fit them: the check every way of pairing a model with a dataset goes through.

Kinds of label space:
- `imagenet`: ImageNet's 1000 classes in the standard order (imagenet2012 and its TFDS
  variants with 1000 classes; folders of synset ids). Only a 1000-way model fits.
- `ids`: integer class folders (`243/`), or the class ids of a folder's segmentation masks:
  class ids of the model's own outputs (a classification folder's: ImageNet ids into a 1000-way
  model); a model fits when it has at least `max id + 1` outputs.
- `own`: the dataset's own classes (CIFAR-10, Fashion-MNIST, named folders); a model fits
  only with exactly as many outputs.
"""

import dataclasses

from reswise_tf.utils.checks import check_choice

LABEL_KINDS = ("imagenet", "ids", "own")
TASKS = ("classification", "segmentation")
IMAGENET_CLASSES = 1000


class LabelMismatchError(ValueError):
    """A model's outputs do not fit a dataset's labels."""


@dataclasses.dataclass(frozen=True)
class Labels:
    """A dataset's label space.

    Attributes:
      dataset: the dataset's name (as the user gave it).
      num_classes: classes of the label space (for `ids`: the largest id + 1).
      kind: one of `LABEL_KINDS`.
      task: "classification", or "segmentation" (a class map per image).
    """

    dataset: str
    num_classes: int
    kind: str = "own"
    task: str = "classification"

    def __post_init__(self):
        check_choice(self.kind, LABEL_KINDS, "label kind")
        check_choice(self.task, TASKS, "task")

    @property
    def imagenet(self):
        """True where ImageNet weights are the ones that fit (ImageNet's classes, or class ids of
        a classification folder)."""
        return (self.task == "classification" and self.kind in ("imagenet", "ids")
                and self.num_classes <= IMAGENET_CLASSES)

    def check_outputs(self, outputs, arg="model"):
        """Raises `LabelMismatchError`, naming `arg` and both counts, unless a model with
        `outputs` classes fits these labels."""
        if self.kind == "ids":
            if outputs >= self.num_classes:
                return
            holder = "masks hold" if self.task == "segmentation" else "class folders are"
            need = f"at least {self.num_classes} outputs (its {holder} ids up to {self.num_classes - 1})"
        elif self.kind == "imagenet":
            if outputs == IMAGENET_CLASSES:
                return
            need = f"ImageNet's {IMAGENET_CLASSES} outputs (it is labelled with ImageNet's classes)"
        else:
            if outputs == self.num_classes:
                return
            need = f"{self.num_classes} outputs, one per class"
        raise LabelMismatchError(
            f"`{arg}` has {outputs} outputs, but dataset {self.dataset!r} needs {need}: they are not "
            "trained on the same label set")


def is_imagenet_name(name, num_classes):
    """A TFDS dataset labelled with ImageNet's 1000 classes (imagenet2012 and its variants)."""
    return name.startswith("imagenet") and num_classes == IMAGENET_CLASSES
