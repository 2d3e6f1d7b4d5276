"""Training a registered architecture from scratch at one input resolution.

A model trained here is the reference point of a resolution study: its input size is its
native resolution, and `experiments.reduce --arch=A --weights=CKPT` then evaluates it at lower
ones. So training inputs are made exactly as the sweep makes its inputs, with augmentation in
between: `preprocessing.to_channels` (grayscale repeated to 3 channels), `resize` (small
images resized directly, `direct=True`; larger ones resized and centre-cropped by `crop_pct`),
then `normalize` with the architecture's `preprocess_input` mode. Evaluated at its own
resolution, the sweep feeds the model the validation pipeline's inputs, bit for bit, so its
native-resolution accuracy is the trainer's final accuracy.

Fashion-MNIST's 28-px images are resized (not zero-padded) to 32 or 64 px because the sweep
resizes them too: a model trained on padded 28-in-32 images would be scored by the sweep on
images with no border and objects 14% larger than any it saw, and the "native" row of the
study would not be the model's real accuracy. Resizing also keeps the object's size a fixed
fraction of the frame at every resolution, which is the quantity the study varies.

Augmentation (`crop_flip`): a random `resolution` crop of the image zero-padded by
`resolution / 8` pixels on each side (4 px at 32, the CIFAR recipe, scaled with the
resolution) and a random horizontal flip; both are drawn from stateless ops seeded per example,
so a run is reproducible from `seed`, with new draws every epoch.

Optimisation: SGD with Nesterov momentum 0.9 (or AdamW), decoupled weight decay, a linear
warm-up over the first 5% of the steps and cosine decay to zero, categorical cross-entropy with
optional label smoothing.

Resuming: after every epoch the weights, optimizer state and epoch number are saved in a work
dir (`OUTPUT.ckpt/` by default, next to the output file); running the same training again
continues after the last finished epoch. The work dir also holds `log.csv` (loss, accuracy,
learning rate and wall seconds per epoch) and `result.json`. The output model is written only
at the end, to a temporary name in its folder and then renamed.
"""

import csv
import dataclasses
import json
import os
import tempfile
import time

import keras
import tensorflow as tf

from reswise_tf import architectures, distribute, preprocessing
from reswise_tf.models import MODEL_EXTENSIONS
from reswise_tf.predictions import atomic_write_text

AUGMENTATIONS = ("crop_flip", "crop", "flip", "none")
OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LEARNING_RATE = {"sgd": 0.1, "adamw": 1e-3}
# Keras applies decoupled decay (`w -= lr * weight_decay * w`): both give 5e-5 per step.
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}
WARMUP_FRACTION = 0.05
DEFAULT_BN_MOMENTUM = 0.9
LOG_NAME = "log.csv"
RESULT_NAME = "result.json"
_CONFIG_NAME = "config.json"
_STATE_NAME = "state.json"


class TrainMismatchError(ValueError):
    """The work dir holds a checkpoint of another training configuration."""


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
      model: the trained model (compiled, on the strategy).
      history: the `keras.callbacks.History` of this call (only the epochs it ran).
      initial_epoch: epochs already finished in the work dir when this call started.
      log: one dict per finished epoch, from the CSV log (earlier calls included); keys
        `epoch` (0-based), `loss`, `accuracy`, `val_loss`, `val_accuracy`, `learning_rate`,
        `train_seconds` (wall time of the training steps, tracing included in the first
        epoch of a call) and `epoch_seconds` (with validation).
      metrics: final evaluation on `val_ds` (`{'loss': ..., 'accuracy': ...}`, accuracy a
        fraction in [0, 1]); empty without `val_ds`.
      output: path of the saved model.
      work_dir: path of the checkpoint folder.
    """

    model: keras.Model
    history: keras.callbacks.History
    initial_epoch: int
    log: list
    metrics: dict
    output: str
    work_dir: str


# ----------------------------------------------------------------------------- input pipeline


def crop_padding(resolution):
    """Zero padding (pixels per side) of the random crop: 4 at 32 px, scaled with resolution."""
    return max(1, round(resolution / 8))


def augment_image(image, seed, augment="crop_flip"):
    """Randomly crops (after zero padding) and/or flips one float image, stateless.

    Args:
      image: float32 (resolution, resolution, channels), values 0..255.
      seed: int tensor of shape (2,), this example's seed.
      augment: one of `AUGMENTATIONS`.
    """
    _check_choice(augment, AUGMENTATIONS, "augment")
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if augment in ("crop_flip", "crop"):
        height, width, channels = image.shape
        pad = crop_padding(height)
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.stateless_random_crop(padded, (height, width, channels), seed=crop_seed)
    if augment in ("crop_flip", "flip"):
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def train_pipeline(
    source,
    resolution,
    batch_size,
    *,
    preprocess,
    augment="crop_flip",
    training=True,
    seed=0,
    channels=3,
    crop_pct=0.875,
    classes=None,
    num_examples=None,
    shuffle_buffer=None,
):
    """Batches of `(images, one-hot labels)` from a `data.DataSource`.

    Images are made as the sweep makes them (`to_channels`, `resize`, `normalize`); with
    `training=True` the examples are also shuffled, augmented and batched without a remainder.

    Args:
      source: a `data.DataSource`.
      resolution: output height and width in pixels.
      batch_size: global batch size.
      preprocess: `preprocess_input` mode of the architecture (`preprocessing.normalize`).
      augment: one of `AUGMENTATIONS` (ignored when `training=False`).
      training: shuffle, augment and drop the last partial batch.
      seed: seed of the shuffle and of the augmentation.
      channels: input channels of the model (grayscale is repeated).
      crop_pct: centre-crop fraction for large images (small ones are resized directly).
      classes: length of the one-hot labels. Defaults to `source.num_classes`.
      num_examples: use only the first N examples. Defaults to all.
      shuffle_buffer: examples in the shuffle buffer. Defaults to the whole dataset for
        small images (cached decoded in memory), 1024 otherwise.

    Returns:
      A `tf.data.Dataset` of `(float32 (B, R, R, channels), float32 (B, classes))`.
    """
    architectures.check_resolution(resolution, arg="resolution")
    _check_positive_int(batch_size, "batch_size")
    preprocessing.check_preprocess(preprocess)
    preprocessing.check_crop_pct(crop_pct)
    _check_choice(augment, AUGMENTATIONS, "augment")
    if num_examples is not None:
        _check_positive_int(num_examples, "num_examples")
    classes = classes or source.num_classes
    direct = source.small_images

    def make_inputs(example):
        image = preprocessing.to_channels(example["image"], channels)
        image = preprocessing.resize(image, resolution, crop_pct=crop_pct, direct=direct)
        image = tf.ensure_shape(image, (resolution, resolution, channels))  # static for the crop
        return image, tf.one_hot(example["label"], classes)

    def train_fn(example, seed):
        image, label = make_inputs(example)
        image = augment_image(image, seed, augment)
        return preprocessing.normalize(image, preprocess), label

    def eval_fn(example):
        image, label = make_inputs(example)
        return preprocessing.normalize(image, preprocess), label

    ds = source.dataset
    count = source.num_examples
    if num_examples is not None:
        ds = ds.take(num_examples)
        count = min(count, num_examples) if count else num_examples
    if training:
        if source.small_images:
            ds = ds.cache()
        buffer = shuffle_buffer or ((count or 10_000) if source.small_images else 1024)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds)
        ds = ds.map(train_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        drop = bool(count) and count >= batch_size
    else:
        ds = ds.map(eval_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        drop = False
    return ds.batch(batch_size, drop_remainder=drop).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- model, optimizer


def build_for_training(arch, resolution, classes, channels=3, *, bn_momentum=DEFAULT_BN_MOMENTUM):
    """The registered architecture `arch` with random weights, `resolution` px input and a
    softmax over `classes` (build it under `strategy.scope()` to train distributed).

    `bn_momentum` replaces the BatchNormalization momentum of the ImageNet recipes (0.99 in
    ResNet50, 0.999 in MobileNetV2, 0.9997 in NASNetMobile): after the few hundred steps of a
    short training those moving averages are still mostly their initial values, and the model
    evaluates far below its training accuracy. 0.9 (PyTorch's default, 0.1 there) settles in
    ~50 steps. `None` keeps the architecture's values. Inference does not use the momentum.
    """
    spec = architectures.get_arch(arch)
    model = spec.build(resolution, classes=classes, channels=channels)
    if bn_momentum is not None:
        if not 0 <= bn_momentum < 1:
            raise ValueError(
                f"`bn_momentum` should be in [0, 1). Received bn_momentum={bn_momentum!r}"
            )
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return model


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def make_optimizer(name="sgd", *, total_steps, learning_rate=None, weight_decay=None, momentum=0.9):
    """SGD (Nesterov) or AdamW with linear warm-up over `WARMUP_FRACTION` of the steps, then
    cosine decay to zero at `total_steps`. `learning_rate` and `weight_decay` default to
    `DEFAULT_LEARNING_RATE[name]` and `DEFAULT_WEIGHT_DECAY[name]`."""
    _check_choice(name, OPTIMIZERS, "optimizer")
    _check_positive_int(total_steps, "total_steps")
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
    decay = weight_decay or None
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=momentum, nesterov=True, weight_decay=decay)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


# ----------------------------------------------------------------------------- training


def default_work_dir(output):
    """`checkpoints/NAME.keras` -> `checkpoints/NAME.ckpt`."""
    return os.path.splitext(output)[0] + ".ckpt"


def train(
    model,
    train_ds,
    val_ds,
    *,
    epochs,
    output,
    work_dir=None,
    strategy=None,
    optimizer="sgd",
    learning_rate=None,
    weight_decay=None,
    momentum=0.9,
    label_smoothing=0.0,
    steps_per_epoch=None,
    validation_freq=1,
    config=None,
    callbacks=(),
    verbose=1,
):
    """Trains `model`, resuming from `work_dir`; saves it to `output`; returns a `TrainResult`.

    Args:
      model: a Keras classifier with softmax outputs, built under `strategy.scope()`.
      train_ds: finite dataset of `(images, one-hot labels)` batches (`train_pipeline`).
      val_ds: dataset evaluated after every `validation_freq` epochs and at the end, or None.
      epochs: total number of epochs (finished ones in `work_dir` included).
      output: `.keras` (or `.h5`) file written at the end, without optimizer state.
      work_dir: checkpoint folder. Defaults to `default_work_dir(output)`.
      strategy: the `tf.distribute.Strategy` the model was built under. Defaults to the
        current one.
      optimizer: `sgd` or `adamw` (see `make_optimizer`).
      learning_rate: peak learning rate. Defaults to 0.1 (sgd) or 0.001 (adamw).
      weight_decay: decoupled weight decay. Defaults to 5e-4 (sgd) or 0.05 (adamw).
      momentum: SGD momentum.
      label_smoothing: in [0, 1).
      steps_per_epoch: batches per epoch, for the schedule. Defaults to the length of
        `train_ds` (needed when that is unknown).
      validation_freq: validate after every this many epochs (the final evaluation is the
        last epoch's validation when that ran, else one more pass). `epochs` validates only
        at the end, which saves a pass over `val_ds` per epoch.
      config: JSON-serialisable description of data and model (arch, dataset, resolution,
        seed...). With the optimisation settings it must match the work dir's to resume.
      callbacks: extra Keras callbacks (run after the checkpoint is saved each epoch).
      verbose: 1 progress bar, 2 one line per epoch, 0 silent.

    Raises:
      TrainMismatchError: `work_dir` holds a checkpoint of another configuration.
    """
    _check_positive_int(epochs, "epochs")
    if not isinstance(output, str) or not output.endswith(MODEL_EXTENSIONS):
        raise ValueError(f"`output` should be a .keras or .h5 file. Received output={output!r}")
    _check_choice(optimizer, OPTIMIZERS, "optimizer")
    if not 0 <= label_smoothing < 1:
        raise ValueError(
            f"`label_smoothing` should be in [0, 1). Received label_smoothing={label_smoothing!r}"
        )
    if steps_per_epoch is None:
        steps_per_epoch = int(train_ds.cardinality())
        if steps_per_epoch < 1:
            raise ValueError(
                "`train_ds` has no known length (or is empty): pass `steps_per_epoch`. "
                f"Received a dataset of cardinality {steps_per_epoch}"
            )
    _check_positive_int(steps_per_epoch, "steps_per_epoch")
    _check_positive_int(validation_freq, "validation_freq")
    strategy = strategy or tf.distribute.get_strategy()
    work_dir = work_dir or default_work_dir(output)
    state_dir = work_dir  # read by every worker (a shared filesystem when multi-worker)
    if not distribute.is_chief(strategy):  # other workers write to throw-away places
        scratch = tempfile.mkdtemp(prefix="reswise_train_worker_")
        work_dir, output = os.path.join(scratch, "work"), os.path.join(scratch, "model.keras")
    os.makedirs(work_dir, exist_ok=True)

    fingerprint = {
        "config": config or {},
        "model": {"name": model.name, "params": int(model.count_params())},
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "momentum": momentum,
        "label_smoothing": label_smoothing,
        "validation": val_ds is not None,
    }

    def decide():  # on the chief only; every worker then resumes from the same epoch
        _check_fingerprint(state_dir, fingerprint)
        return [finished_epochs(state_dir)]

    (initial_epoch,) = distribute.decide_on_chief(strategy, decide, 1)
    with strategy.scope():
        model.compile(
            optimizer=make_optimizer(
                optimizer,
                total_steps=epochs * steps_per_epoch,
                learning_rate=learning_rate,
                weight_decay=weight_decay,
                momentum=momentum,
            ),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        if initial_epoch:
            restore_state(model, state_dir, initial_epoch)
    log_path = os.path.join(work_dir, LOG_NAME)
    _truncate_log(log_path, initial_epoch)

    if initial_epoch < epochs:
        if verbose and initial_epoch:
            print(f"Resuming from {work_dir} after epoch {initial_epoch} of {epochs}.")
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            validation_freq=validation_freq,
            epochs=epochs,
            initial_epoch=initial_epoch,
            shuffle=False,  # train_ds is shuffled by train_pipeline
            callbacks=[
                _EpochStats(),
                keras.callbacks.CSVLogger(log_path, append=True),
                _SaveState(work_dir),
                *callbacks,
            ],
            verbose=verbose,
        )
    else:
        if verbose:
            print(f"All {epochs} epoch(s) are finished in {work_dir}; evaluating and saving.")
        history = keras.callbacks.History()  # empty: no epoch ran
        history.set_model(model)
        history.on_train_begin()

    metrics = {}
    validated_last = bool(history.epoch) and history.epoch[-1] == epochs - 1
    validated_last = validated_last and epochs % validation_freq == 0
    if val_ds is not None and validated_last:  # validated on the final weights: no extra pass
        metrics = {
            k[len("val_") :]: float(v[-1])
            for k, v in history.history.items()
            if k.startswith("val_")
        }
    elif val_ds is not None:
        metrics = model.evaluate(val_ds, return_dict=True, verbose=verbose)
        metrics = {k: float(v) for k, v in metrics.items()}
    save_model(model, output)
    log = read_log(log_path)
    atomic_write_text(
        os.path.join(work_dir, RESULT_NAME),
        json.dumps(
            {**fingerprint, "output": os.path.abspath(output), "metrics": metrics, "log": log},
            indent=2,
        ),
    )
    return TrainResult(
        model=model,
        history=history,
        initial_epoch=initial_epoch,
        log=log,
        metrics=metrics,
        output=output,
        work_dir=work_dir,
    )


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
    strategy=None,
    **train_kwargs,
):
    """Trains registered architecture `arch` from scratch at `resolution` px on `train_source`
    (validating on `val_source`, or not when None), as `experiments.train` does.

    Builds both pipelines with the architecture's `preprocess` and `crop_pct` (the sweep's
    inputs), seeds Keras with `seed`, builds the model under `strategy.scope()` with as many
    outputs as the larger label space, and calls `train` (`train_kwargs`: work_dir, optimizer,
    learning_rate, weight_decay, momentum, label_smoothing, validation_freq, callbacks,
    verbose). Returns its `TrainResult`.
    """
    spec = architectures.get_arch(arch)
    architectures.check_resolution(
        resolution, spec.min_resolution, arg="resolution", arch=spec.name
    )
    _check_positive_int(epochs, "epochs")
    strategy = strategy or tf.distribute.get_strategy()
    classes = max(train_source.num_classes, val_source.num_classes if val_source else 0)
    pipeline = dict(
        resolution=resolution,
        batch_size=batch_size,
        preprocess=spec.preprocess,
        crop_pct=spec.crop_pct,
        classes=classes,
    )
    train_ds = train_pipeline(
        train_source,
        augment=augment,
        training=True,
        seed=seed,
        num_examples=num_train_examples,
        **pipeline,
    )
    val_ds = None
    if val_source is not None:
        val_ds = train_pipeline(
            val_source, training=False, num_examples=num_validation_examples, **pipeline
        )
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_for_training(spec, resolution, classes, bn_momentum=bn_momentum)
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
    }
    return train(
        model,
        train_ds,
        val_ds,
        epochs=epochs,
        output=output,
        strategy=strategy,
        config=config,
        **train_kwargs,
    )


def save_model(model, path):
    """Saves `model` without optimizer or compile state (a copy), atomically: to a temporary
    file in the same folder, then renamed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=os.path.splitext(path)[1])
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it (mkstemp gives 0600)
    try:
        clean.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def finished_epochs(work_dir):
    """Epochs saved in `work_dir` by an earlier run (0 when there is no checkpoint)."""
    path = os.path.join(work_dir, _STATE_NAME)
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def restore_state(model, work_dir, epoch):
    """Loads the weights and optimizer state saved after `epoch` epochs into the compiled
    `model` (under the strategy's scope)."""
    path = os.path.join(work_dir, _STATE_NAME)
    state = {}
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
    if state.get("epoch") != epoch:
        raise FileNotFoundError(
            f"No checkpoint of epoch {epoch} in {work_dir!r} (found {state or 'none'}); with "
            "several workers the work dir must be on a filesystem they all read"
        )
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(work_dir, state["weights"]))


def read_log(path):
    """The rows of a CSV log as dicts of numbers (`epoch` an int; the `NA` that Keras'
    CSVLogger writes for absent validation metrics left out); [] if there is none."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {
            k: int(v) if k == "epoch" else float(v)
            for k, v in row.items()
            if v not in ("", "NA", None)
        }
        for row in rows
    ]


class _EpochStats(keras.callbacks.Callback):
    """Adds `learning_rate`, `train_seconds` and `epoch_seconds` to the epoch logs (runs
    before the CSV logger, which writes them)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._train_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        logs["train_seconds"] = self._train_end - self._start
        logs["epoch_seconds"] = time.perf_counter() - self._start


class _SaveState(keras.callbacks.Callback):
    """Saves weights + optimizer state to a new file each epoch, then points `state.json` at
    it (an atomic rename) and deletes the previous file: an interruption at any moment leaves
    a consistent (weights, epoch) pair."""

    def __init__(self, work_dir):
        super().__init__()
        self.work_dir = work_dir

    def on_epoch_end(self, epoch, logs=None):
        state_path = os.path.join(self.work_dir, _STATE_NAME)
        previous = None
        if os.path.exists(state_path):
            with open(state_path) as f:
                previous = json.load(f)["weights"]
        name = f"epoch_{epoch + 1:04d}.weights.h5"
        self.model.save_weights(os.path.join(self.work_dir, name), overwrite=True)
        atomic_write_text(state_path, json.dumps({"epoch": epoch + 1, "weights": name}))
        if previous and previous != name:
            old = os.path.join(self.work_dir, previous)
            if os.path.exists(old):
                os.remove(old)


def _check_fingerprint(work_dir, fingerprint):
    """Refuses to resume a checkpoint of another configuration; records this one."""
    path = os.path.join(work_dir, _CONFIG_NAME)
    current = json.loads(json.dumps(fingerprint))
    if os.path.exists(path) and os.path.exists(os.path.join(work_dir, _STATE_NAME)):
        with open(path) as f:
            previous = json.load(f)
        if previous != current:
            changed = sorted(
                k for k in set(previous) | set(current) if previous.get(k) != current.get(k)
            )
            raise TrainMismatchError(
                f"Work dir {work_dir!r} holds a checkpoint of another training (differs in: "
                f"{', '.join(changed)}; was {json.dumps({k: previous.get(k) for k in changed})}). "
                "Use another --output (or --work_dir), or delete the work dir to start over."
            )
    atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True))


def _truncate_log(path, epochs):
    """Drops CSV rows of epochs >= `epochs` (logged but not checkpointed before a crash)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    keep = [row for row in rows if int(row["epoch"]) < epochs]
    if len(keep) == len(rows):
        return
    if not keep:
        os.remove(path)
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
    os.replace(tmp, path)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` should be a positive integer. Received {name}={value!r}")


def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}. Available: {', '.join(choices)}")
