"""Training a registered architecture from scratch at one input resolution, as
`experiments.train` does: the pipelines, the model with short-training BatchNorm momentum, and
the resumable loop."""

import keras
import tensorflow as tf

from reswise_tf.models.inspect import all_layers
from reswise_tf.models.precision import precision_scope
from reswise_tf.models.registry import get_arch
from reswise_tf.training.loop import train
from reswise_tf.training.pipeline import train_pipeline
from reswise_tf.utils.checks import check_positive_int, check_resolution

DEFAULT_BN_MOMENTUM = 0.9


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
    train_ds = train_pipeline(train_source, augment=augment, training=True, seed=seed,
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
        "seed": seed,
        "preprocess": spec.preprocess,
        "bn_momentum": bn_momentum,
        "replicas": strategy.num_replicas_in_sync,
        **({"precision": precision} if precision != "float32" else {}),
    }
    return train(model, train_ds, val_ds, epochs=epochs, output=output, strategy=strategy, config=config,
                 **train_kwargs)
