"""The training stage: training a registered architecture from scratch at one resolution
(the input pipeline, optimiser and schedule, the resumable loop, recipes, checkpoint I/O)."""

from reswise_tf.training.checkpoint import (
    CHECKPOINTS_DIR,
    LOG_NAME,
    PRETRAINED_DIR,
    RESULT_NAME,
    TrainMismatchError,
    checkpoint_name,
    default_work_dir,
    finished_epochs,
    read_log,
    save_model,
    training_record,
    truncate_log,
)
from reswise_tf.training.loop import TrainResult, train
from reswise_tf.training.optimizer import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_WEIGHT_DECAY,
    OPTIMIZERS,
    WARMUP_FRACTION,
    make_optimizer,
)
from reswise_tf.training.pipeline import AUGMENTATIONS, augment_image, crop_padding, min_scale_of, train_pipeline
from reswise_tf.training.recipes import (
    DEFAULT_BN_MOMENTUM,
    DEFAULT_RECIPE,
    RECIPES,
    Recipe,
    build_for_training,
    recipe_for,
    train_arch,
)

__all__ = [
    "AUGMENTATIONS",
    "CHECKPOINTS_DIR",
    "DEFAULT_RECIPE",
    "PRETRAINED_DIR",
    "RECIPES",
    "Recipe",
    "checkpoint_name",
    "recipe_for",
    "training_record",
    "DEFAULT_BN_MOMENTUM",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_WEIGHT_DECAY",
    "LOG_NAME",
    "OPTIMIZERS",
    "RESULT_NAME",
    "WARMUP_FRACTION",
    "TrainMismatchError",
    "TrainResult",
    "augment_image",
    "build_for_training",
    "crop_padding",
    "default_work_dir",
    "finished_epochs",
    "make_optimizer",
    "min_scale_of",
    "read_log",
    "save_model",
    "train",
    "train_arch",
    "train_pipeline",
    "truncate_log",
]
