"""Training a registered architecture from scratch at one input resolution, as
`experiments.train` does: the pipelines, the model with short-training BatchNorm momentum, and
the resumable loop; and the recipes by which the study's models are trained, with the one rule
that names their checkpoints."""

import dataclasses

import keras
import tensorflow as tf

from reswise_tf.models.dtype_policy import precision_scope
from reswise_tf.models.inspect import all_layers
from reswise_tf.models.registry import get_arch
from reswise_tf.training.loop import train
from reswise_tf.training.pipeline import min_scale_of, train_pipeline
from reswise_tf.utils.checks import check_positive_int, check_resolution

DEFAULT_BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a model is trained from scratch (the flags of `experiments.train`).

    Attributes:
      resolution: training (native) resolution in pixels.
      epochs: passes over the training split.
      optimizer, learning_rate, weight_decay: see `training.optimizer` (None: its default).
      augment, min_scale: see `training.pipeline.augment_image` (None: its default scale).
    """

    resolution: int = 32
    epochs: int = 10
    optimizer: str = "sgd"
    learning_rate: float | None = None
    weight_decay: float | None = None
    augment: str = "crop_flip"
    min_scale: float | None = None

    def train_flags(self):
        """The `experiments.train` flags of this recipe (validation once, at the end); flags at
        `experiments.train`'s defaults are left out."""
        defaults = DEFAULT_RECIPE
        changed = [name for name in ("optimizer", "learning_rate", "weight_decay", "augment", "min_scale")
                   if getattr(self, name) != getattr(defaults, name)]
        return [f"--resolution={self.resolution}", f"--epochs={self.epochs}", f"--validation_freq={self.epochs}",
                *(f"--{name}={getattr(self, name)}" for name in changed)]

    def train_command(self, arch, dataset, output):
        """The `experiments.train` command line that trains `arch` on `dataset` into `output`."""
        return " ".join(["python -m experiments.train", f"--arch={get_arch(arch).name}", f"--dataset={dataset}",
                         *self.train_flags(), f"--output={output}"])


DEFAULT_RECIPE = Recipe()  # experiments.train's defaults

# The recipes of the study's models, measured here on Fashion-MNIST (docs/results/fashion_mnist.md).
# Every one trains with scale augmentation, as real models are trained (ImageNet's
# random-resized-crop): it is what makes a model degrade gracefully at lower input resolutions.
# At 32 px the canvas is shown at 3/4..1 of its side (the thesis's first reduced sizes, 28 and
# 24 px) at a random position, for 5 epochs: longer trainings measured here lose more at 28 px
# (15 epochs: 30.7 points against 5.2) for under a point more at native; the 64-px ResNet-18,
# the ImageNet analogue, gets ImageNet's random-resized-crop.
RECIPES = {
    "nasnetmobile": Recipe(32, epochs=5, weight_decay=5e-5, augment="scale_flip"),
    "mobilenetv2": Recipe(32, epochs=5, weight_decay=5e-5, augment="scale_flip"),
    "resnet18_small": Recipe(64, epochs=8, augment="rrc_flip"),
    # The segmentation stand-in: AdamW (a U-Net from scratch), the scenes' items shown smaller too.
    "unet_small": Recipe(64, epochs=4, optimizer="adamw", augment="scale_flip"),
}


def recipe_for(arch):
    """The recipe of `arch` (a registered name or alias): its own, else `DEFAULT_RECIPE`."""
    return RECIPES.get(get_arch(arch).name, DEFAULT_RECIPE)


def build_for_training(arch, resolution, classes, channels=3, *, bn_momentum=DEFAULT_BN_MOMENTUM, precision="float32"):
    """The registered architecture `arch` with random weights, `resolution` px input and a
    softmax over `classes` (build it under `strategy.scope()` to train distributed).

    `bn_momentum` replaces the BatchNormalization momentum of the ImageNet recipes (0.99 in
    ResNet50, 0.999 in MobileNetV2, 0.9997 in NASNetMobile): after the few hundred steps of a
    short training those moving averages are still mostly their initial values, and the model
    evaluates far below its training accuracy. 0.9 (PyTorch's default, 0.1 there) settles in
    ~50 steps. `None` keeps the architecture's values. Inference does not use the momentum.
    `precision` is what the model computes in (mixed precision: float32 variables; Keras scales
    the float16 loss).
    """
    spec = get_arch(arch)
    with precision_scope(precision):
        model = spec.build(resolution, classes=classes, channels=channels)
    if bn_momentum is not None:
        if not 0 <= bn_momentum < 1:
            raise ValueError(f"`bn_momentum` should be in [0, 1). Received bn_momentum={bn_momentum!r}")
        for layer in all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return model


def train_arch(
    arch,
    train_source,
    val_source,
    *,
    resolution,
    epochs,
    output,
    batch_size=128,
    augment="crop_flip",
    min_scale=None,
    seed=0,
    num_train_examples=None,
    num_validation_examples=None,
    bn_momentum=DEFAULT_BN_MOMENTUM,
    precision="float32",
    strategy=None,
    **train_kwargs,
):
    """Trains registered architecture `arch` from scratch at `resolution` px on `train_source`
    (validating on `val_source`, or not when None), as `experiments.train` does.

    Builds both pipelines with the architecture's `preprocess` and `crop_pct` (the sweep's
    inputs), seeds Keras with `seed`, builds the model under `strategy.scope()` with as many
    outputs as the larger label space, and calls `loop.train` (`train_kwargs`: work_dir,
    optimizer, learning_rate, weight_decay, momentum, label_smoothing, validation_freq,
    callbacks, verbose). Returns its `TrainResult`.
    """
    spec = get_arch(arch)
    check_resolution(resolution, spec.min_resolution, arg="resolution", arch=spec.name)
    check_positive_int(epochs, "epochs")
    strategy = strategy or tf.distribute.get_strategy()
    classes = max(train_source.num_classes, val_source.num_classes if val_source else 0)
    pipeline = dict(resolution=resolution, batch_size=batch_size, preprocess=spec.preprocess,
                    crop_pct=spec.crop_pct, classes=classes)
    train_ds = train_pipeline(train_source, augment=augment, min_scale=min_scale, training=True, seed=seed,
                              num_examples=num_train_examples, **pipeline)
    val_ds = None
    if val_source is not None:
        val_ds = train_pipeline(val_source, training=False, num_examples=num_validation_examples, **pipeline)
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_for_training(spec, resolution, classes, bn_momentum=bn_momentum, precision=precision)
    n_train = train_source.num_examples
    if num_train_examples is not None:
        n_train = min(n_train, num_train_examples) if n_train else num_train_examples
    config = {
        "arch": spec.name,
        "dataset": train_source.name,
        "train_split": train_source.split,
        "val_dataset": val_source.name if val_source else None,
        "val_split": val_source.split if val_source else None,
        "resolution": resolution,
        "batch_size": batch_size,
        "num_train_examples": n_train,
        "num_validation_examples": num_validation_examples,
        "augment": augment,
        **({"min_scale": min_scale_of(augment, min_scale)} if min_scale_of(augment, min_scale) else {}),
        **({"canvas": train_source.canvas} if train_source.canvas else {}),
        "seed": seed,
        "preprocess": spec.preprocess,
        "bn_momentum": bn_momentum,
        "replicas": strategy.num_replicas_in_sync,
        **({"precision": precision} if precision != "float32" else {}),
    }
    return train(model, train_ds, val_ds, epochs=epochs, output=output, strategy=strategy, config=config,
                 **train_kwargs)
