"""The resumable training loop: compile, fit from the last finished epoch, evaluate, save.

Optimisation is `optimizer.make_optimizer` (SGD/AdamW, warm-up, cosine decay) with categorical
cross-entropy and optional label smoothing; what is kept on disk and how a run resumes is in
`checkpoint`.
"""

import dataclasses
import json
import os
import tempfile
import time

import keras
import tensorflow as tf

from reswise_tf.data.source import IGNORE_LABEL
from reswise_tf.models.loading import MODEL_EXTENSIONS
from reswise_tf.runtime import distribute
from reswise_tf.training import checkpoint as ckpt
from reswise_tf.training.optimizer import OPTIMIZERS, make_optimizer
from reswise_tf.utils.checks import check_choice, check_positive_int
from reswise_tf.utils.files import atomic_write_text


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
      metrics: final evaluation on `val_ds` (`{'loss': ..., 'accuracy' (a segmentation: 'miou'): ...}`, a
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


@dataclasses.dataclass(frozen=True)
class Optimization:
    """The optimisation settings of a training (part of its fingerprint).

    Attributes: see `train`.
    """

    optimizer: str = "sgd"
    learning_rate: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    label_smoothing: float = 0.0

    def __post_init__(self):
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"`label_smoothing` should be in [0, 1). Received label_smoothing={self.label_smoothing!r}"
            )

    def compile(self, model, total_steps):
        """Compiles `model`: cross-entropy on one-hot classes (metric: accuracy), or per pixel on
        a class map (integer labels, the ignore label left out) for a segmentation model (metric:
        mIoU over the classes present, as the sweep scores it at the training resolution)."""
        if len(model.outputs[0].shape) == 4:
            loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_LABEL)
            metric = keras.metrics.MeanIoU(model.outputs[0].shape[-1], ignore_class=IGNORE_LABEL, sparse_y_pred=False,
                                           name="miou")
        else:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)
            metric = keras.metrics.CategoricalAccuracy(name="accuracy")
        model.compile(
            optimizer=make_optimizer(self.optimizer, total_steps=total_steps, learning_rate=self.learning_rate,
                                     weight_decay=self.weight_decay, momentum=self.momentum),
            loss=loss, metrics=[metric])


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
      work_dir: checkpoint folder. Defaults to `checkpoint.default_work_dir(output)`.
      strategy: the `tf.distribute.Strategy` the model was built under (default: current).
      optimizer: `sgd` or `adamw` (see `optimizer.make_optimizer`).
      learning_rate: peak learning rate. Defaults to 0.1 (sgd) or 0.001 (adamw).
      weight_decay: decoupled weight decay. Defaults to 5e-4 (sgd) or 0.05 (adamw).
      momentum: SGD momentum.
      label_smoothing: in [0, 1).
      steps_per_epoch: batches per epoch, for the schedule. Defaults to the length of
        `train_ds` (needed when that is unknown).
      validation_freq: validate after every this many epochs (the final evaluation is the
        last epoch's validation when that ran, else one more pass).
      config: JSON-serialisable description of data and model (arch, dataset, resolution,
        seed...). With the optimisation settings it must match the work dir's to resume.
      callbacks: extra Keras callbacks (run after the checkpoint is saved each epoch).
      verbose: 1 progress bar, 2 one line per epoch, 0 silent.

    Raises:
      TrainMismatchError: `work_dir` holds a checkpoint of another configuration.
    """
    check_positive_int(epochs, "epochs")
    if not isinstance(output, str) or not output.endswith(MODEL_EXTENSIONS):
        raise ValueError(f"`output` should be a .keras or .h5 file. Received output={output!r}")
    opt = Optimization(optimizer, learning_rate, weight_decay, momentum, label_smoothing)
    steps_per_epoch = _steps_per_epoch(train_ds, steps_per_epoch)
    check_positive_int(validation_freq, "validation_freq")
    strategy = strategy or tf.distribute.get_strategy()
    state_dir = work_dir or ckpt.default_work_dir(output)  # read by every worker
    work_dir, output = _writable_paths(state_dir, output, strategy)
    fingerprint = {"config": config or {}, "model": {"name": model.name, "params": int(model.count_params())},
                   "epochs": epochs, "steps_per_epoch": steps_per_epoch, **dataclasses.asdict(opt),
                   "validation": val_ds is not None}

    def decide():  # on the chief only; every worker then resumes from the same epoch
        ckpt.check_fingerprint(state_dir, fingerprint)
        return [ckpt.finished_epochs(state_dir)]

    (initial_epoch,) = distribute.decide_on_chief(strategy, decide, 1)
    with strategy.scope():
        opt.compile(model, epochs * steps_per_epoch)
        if initial_epoch:
            ckpt.restore_state(model, state_dir, initial_epoch)
    history = _fit(model, train_ds, val_ds, epochs, initial_epoch, validation_freq, work_dir, callbacks, verbose)
    metrics = _final_metrics(model, history, val_ds, epochs, validation_freq, verbose)
    ckpt.save_model(model, output)
    log = ckpt.read_log(os.path.join(work_dir, ckpt.LOG_NAME))
    result = {**fingerprint, "output": os.path.abspath(output), "metrics": metrics, "log": log}
    atomic_write_text(os.path.join(work_dir, ckpt.RESULT_NAME), json.dumps(result, indent=2))
    return TrainResult(model, history, initial_epoch, log, metrics, output, work_dir)


def _steps_per_epoch(train_ds, steps_per_epoch):
    if steps_per_epoch is None:
        steps_per_epoch = int(train_ds.cardinality())
        if steps_per_epoch < 1:
            raise ValueError(
                "`train_ds` has no known length (or is empty): pass `steps_per_epoch`. "
                f"Received a dataset of cardinality {steps_per_epoch}"
            )
    return check_positive_int(steps_per_epoch, "steps_per_epoch")


def _writable_paths(work_dir, output, strategy):
    """(work dir, output) this process writes: the real ones on the chief, throw-away ones on
    the other workers."""
    if not distribute.is_chief(strategy):
        scratch = tempfile.mkdtemp(prefix="reswise_train_worker_")
        work_dir, output = os.path.join(scratch, "work"), os.path.join(scratch, "model.keras")
    os.makedirs(work_dir, exist_ok=True)
    return work_dir, output


def _fit(model, train_ds, val_ds, epochs, initial_epoch, validation_freq, work_dir, callbacks, verbose):
    """Runs the epochs not finished yet; returns their History (empty when none is left)."""
    log_path = os.path.join(work_dir, ckpt.LOG_NAME)
    ckpt.truncate_log(log_path, initial_epoch)
    if initial_epoch >= epochs:
        if verbose:
            print(f"All {epochs} epoch(s) are finished in {work_dir}; evaluating and saving.")
        history = keras.callbacks.History()
        history.set_model(model)
        history.on_train_begin()
        return history
    if verbose and initial_epoch:
        print(f"Resuming from {work_dir} after epoch {initial_epoch} of {epochs}.")
    return model.fit(
        train_ds,
        validation_data=val_ds,
        validation_freq=validation_freq,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # train_ds is shuffled by train_pipeline
        callbacks=[_EpochStats(), keras.callbacks.CSVLogger(log_path, append=True), ckpt.SaveState(work_dir),
                   *callbacks],
        verbose=verbose,
    )


def _final_metrics(model, history, val_ds, epochs, validation_freq, verbose):
    """The last epoch's validation metrics when it validated the final weights, else one more
    evaluation pass; {} without validation data."""
    if val_ds is None:
        return {}
    validated_last = bool(history.epoch) and history.epoch[-1] == epochs - 1 and epochs % validation_freq == 0
    if validated_last:
        return {k[len("val_"):]: float(v[-1]) for k, v in history.history.items() if k.startswith("val_")}
    metrics = model.evaluate(val_ds, return_dict=True, verbose=verbose)
    return {k: float(v) for k, v in metrics.items()}


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
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["train_seconds"] = self._train_end - self._start
        logs["epoch_seconds"] = time.perf_counter() - self._start
