"""Optimisers of the training recipes: SGD with Nesterov momentum 0.9 or AdamW, decoupled
weight decay, a linear warm-up over the first 5% of the steps and cosine decay to zero."""

import keras

from reswise_tf.utils.checks import check_choice, check_positive_int

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LEARNING_RATE = {"sgd": 0.1, "adamw": 1e-3}
# Keras applies decoupled decay (`w -= lr * weight_decay * w`): both give 5e-5 per step.
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}
WARMUP_FRACTION = 0.05


def make_optimizer(name="sgd", *, total_steps, learning_rate=None, weight_decay=None, momentum=0.9):
    """SGD (Nesterov) or AdamW with linear warm-up over `WARMUP_FRACTION` of the steps, then
    cosine decay to zero at `total_steps`. `learning_rate` and `weight_decay` default to
    `DEFAULT_LEARNING_RATE[name]` and `DEFAULT_WEIGHT_DECAY[name]`."""
    check_choice(name, OPTIMIZERS, "optimizer")
    check_positive_int(total_steps, "total_steps")
    learning_rate = DEFAULT_LEARNING_RATE[name] if learning_rate is None else learning_rate
    weight_decay = DEFAULT_WEIGHT_DECAY[name] if weight_decay is None else weight_decay
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` should be > 0. Received learning_rate={learning_rate!r}")
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` should be >= 0. Received weight_decay={weight_decay!r}")
    warmup = int(WARMUP_FRACTION * total_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=momentum, nesterov=True, weight_decay=weight_decay or None)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
