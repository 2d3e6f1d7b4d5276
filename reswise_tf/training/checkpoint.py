"""What a training keeps on disk, and how it resumes.

After every epoch the weights, optimizer state and epoch number are saved in a work dir
(`OUTPUT.ckpt/` by default, next to the output file); running the same training again
continues after the last finished epoch. The work dir also holds `config.json` (the training's
fingerprint: another configuration is refused, not resumed), `log.csv` (loss, accuracy,
learning rate and wall seconds per epoch) and `result.json`. The output model is written only
at the end, atomically.
"""

import csv
import io
import json
import os

import keras

from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.models.registry import get_arch
from reswise_tf.utils.files import atomic_path, atomic_write_text

LOG_NAME = "log.csv"
RESULT_NAME = "result.json"
CONFIG_NAME = "config.json"
STATE_NAME = "state.json"


CHECKPOINTS_DIR = "checkpoints"  # where experiments.train writes by default (relative to the working directory)
# The checkpoints shipped with the project (its own folder, wherever the command runs from).
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "pretrained")


def dataset_slug(dataset):
    """How a dataset is named in a checkpoint's file name: the TFDS name, or a folder's base name."""
    if dataset.startswith("folder:"):
        return os.path.basename(os.path.normpath(dataset[len("folder:"):]))
    return dataset.replace("/", "_").replace(":", "_")


def checkpoint_name(arch, dataset, resolution):
    """The one naming rule of trained checkpoints (shipped ones, the study's, `experiments.train`'s
    default output): `<architecture>_<dataset>_<resolution>.keras`, with the architecture's
    registered name (`nasnet` -> `nasnetmobile`)."""
    return f"{get_arch(arch).name}_{dataset_slug(dataset)}_{resolution}.keras"


class TrainMismatchError(ValueError):
    """The work dir holds a checkpoint of another training configuration."""


def default_work_dir(output):
    """`checkpoints/NAME.keras` -> `checkpoints/NAME.ckpt`."""
    return os.path.splitext(output)[0] + ".ckpt"


def training_record(model_path):
    """The training record (`result.json` contents) of a saved model: `NAME.json` beside it (as
    shipped in `pretrained/`), else its work dir's `result.json`; None when there is neither."""
    for path in (os.path.splitext(model_path)[0] + ".json", os.path.join(default_work_dir(model_path), RESULT_NAME)):
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    return None


def save_model(model, path):
    """Saves `model` without optimizer or compile state (a clone), in float32 layers (a model
    trained in mixed precision is saved as a plain float32 model, the same weights), atomically."""
    # from_config, not clone_model: Keras' clone_model keeps the optimizer, whose state would
    # double the file.
    plain = with_precision(model, "float32")
    clean = type(plain).from_config(plain.get_config())
    clean.set_weights(plain.get_weights())
    with atomic_path(path) as tmp:
        clean.save(tmp)


def finished_epochs(work_dir):
    """Epochs saved in `work_dir` by an earlier run (0 when there is no checkpoint)."""
    path = os.path.join(work_dir, STATE_NAME)
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def restore_state(model, work_dir, epoch):
    """Loads the weights and optimizer state saved after `epoch` epochs into the compiled
    `model` (under the strategy's scope)."""
    path = os.path.join(work_dir, STATE_NAME)
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


class SaveState(keras.callbacks.Callback):
    """Saves weights + optimizer state to a new file each epoch, then points `state.json` at
    it (an atomic rename) and deletes the previous file: an interruption at any moment leaves
    a consistent (weights, epoch) pair."""

    def __init__(self, work_dir):
        super().__init__()
        self.work_dir = work_dir

    def on_epoch_end(self, epoch, logs=None):
        state_path = os.path.join(self.work_dir, STATE_NAME)
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


def check_fingerprint(work_dir, fingerprint):
    """Refuses to resume a checkpoint of another configuration; records this one."""
    path = os.path.join(work_dir, CONFIG_NAME)
    current = json.loads(json.dumps(fingerprint))
    if os.path.exists(path) and os.path.exists(os.path.join(work_dir, STATE_NAME)):
        with open(path) as f:
            previous = json.load(f)
        if previous != current:
            changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            raise TrainMismatchError(
                f"Work dir {work_dir!r} holds a checkpoint of another training (differs in: "
                f"{', '.join(changed)}; was {json.dumps({k: previous.get(k) for k in changed})}). "
                "Use another --output (or --work_dir), or delete the work dir to start over."
            )
    atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True))


def read_log(path):
    """The rows of a CSV log as dicts of numbers (`epoch` an int; the `NA` that Keras'
    CSVLogger writes for absent validation metrics left out); [] if there is none."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v not in ("", "NA", None)}
        for row in rows
    ]


def truncate_log(path, epochs):
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
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(keep)
    atomic_write_text(path, out.getvalue())
