"""One path from how a user names a model to the `LoadedModel` a sweep runs, checked once.

A model is named by a registered architecture and its weights (`--arch` + `--weights`) or by a
file (`--model_path`). `weights="auto"` picks the weights that fit the data: ImageNet's where
the dataset is labelled with ImageNet's classes (or class ids), else the checkpoint trained on
that dataset by the architecture's recipe (`training.recipes`), found under the one naming
rule (`training.checkpoint.checkpoint_name`) in the checkpoint folder (the project's
`pretrained/` by default) or where `experiments.train` writes by default (`checkpoints/`).
Where there is none, the error prints the exact `experiments.train` command that makes it.
A model whose outputs do not fit the dataset's labels is refused here, before any download or
forward pass (`data.labels`).
"""

import os
import warnings

from reswise_tf.data.labels import IMAGENET_CLASSES
from reswise_tf.data.readers import dataset_labels, load_source
from reswise_tf.data.source import DataError
from reswise_tf.models.loading import load_arch, load_hub_preset, load_user_model
from reswise_tf.models.registry import get_arch
from reswise_tf.training.checkpoint import CHECKPOINTS_DIR, PRETRAINED_DIR, checkpoint_name, training_record
from reswise_tf.training.recipes import recipe_for, train_arch

WEIGHTS_CHOICES = ("auto", "imagenet", "none")


class MissingCheckpointError(FileNotFoundError):
    """`weights="auto"` found no checkpoint of the architecture trained on the dataset.

    Attributes:
      path: where `experiments.train` writes it by default.
      command: the `experiments.train` command line that trains it.
    """

    def __init__(self, message, path, command):
        super().__init__(message)
        self.path, self.command = path, command


def checkpoint_dirs(checkpoint_dir=None):
    """Where `weights="auto"` looks, in order: `checkpoint_dir` (default: the project's
    `pretrained/`), then `experiments.train`'s default output folder."""
    return [checkpoint_dir or PRETRAINED_DIR, CHECKPOINTS_DIR]


def resolve_weights(arch, weights, labels, checkpoint_dir=None):
    """The weights `weights` stands for on a dataset with `labels`: "imagenet", "none" or a
    checkpoint path. Raises `MissingCheckpointError` where "auto" finds no checkpoint."""
    if weights != "auto":
        return weights
    if labels.imagenet:
        return "imagenet"
    recipe = recipe_for(arch)
    name = checkpoint_name(arch, labels.dataset, recipe.resolution)
    for folder in checkpoint_dirs(checkpoint_dir):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    output = os.path.join(CHECKPOINTS_DIR, name)
    command = recipe.train_command(arch, labels.dataset, output)
    raise MissingCheckpointError(
        f"No checkpoint of {get_arch(arch).name} trained on {labels.dataset} (looked for {name} in "
        f"{' and '.join(checkpoint_dirs(checkpoint_dir))}); train it with (or pass --train_missing, or "
        f"--weights=PATH):\n  {command}",
        output, command)


def open_model(labels, *, arch=None, weights="auto", model_path=None, hub_preset=None, checkpoint_dir=None,
               native_resolution=None, preprocess=None, crop_pct=None):
    """The `LoadedModel` named by `arch` + `weights`, by `model_path`, or by a keras-hub
    `hub_preset`, checked against the dataset's `labels` (a `data.Labels`) before anything is
    downloaded or run (a preset is checked once loaded: its classes are in its files).

    `preprocess` and `crop_pct` override the architecture's (a `model_path` has `none` and
    0.875 unless given); the sweep takes them from the returned model.
    """
    named = [x for x in (arch, model_path, hub_preset) if x is not None]
    if len(named) != 1:
        raise ValueError("Pass exactly one of `arch`, `model_path` and `hub_preset`. "
                         f"Received arch={arch!r}, model_path={model_path!r}, hub_preset={hub_preset!r}")
    if hub_preset is not None:
        loaded = load_hub_preset(hub_preset)
        labels.check_outputs(loaded.num_outputs, "hub_preset")
    elif model_path is not None:
        loaded = load_user_model(model_path, native_resolution=native_resolution)
        labels.check_outputs(loaded.num_outputs, "model_path")
    else:
        resolved = resolve_weights(arch, weights, labels, checkpoint_dir)
        if resolved == "imagenet":
            labels.check_outputs(IMAGENET_CLASSES, "weights")  # before the weights are downloaded
        loaded = load_arch(arch, resolved, classes=labels.num_classes, native_resolution=native_resolution)
        labels.check_outputs(loaded.num_outputs, "weights")
    return loaded.with_settings(preprocess=preprocess, crop_pct=crop_pct)


def train_missing(arch, train_source, val_source, output, *, verbose=1, **overrides):
    """Trains `arch` by its recipe on `train_source` into `output` (what `--train_missing` and
    the default study do where a checkpoint is missing); returns the `TrainResult`.
    `overrides` replace the recipe's settings (epochs) or add `train_arch` arguments."""
    recipe = recipe_for(arch)
    settings = dict(resolution=recipe.resolution, epochs=recipe.epochs, augment=recipe.augment,
                    min_scale=recipe.min_scale, optimizer=recipe.optimizer, learning_rate=recipe.learning_rate,
                    weight_decay=recipe.weight_decay)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings.setdefault("validation_freq", settings["epochs"])
    if verbose:
        print(f"== Training {get_arch(arch).name} at {settings['resolution']}px on {train_source.name} "
              f"for {settings['epochs']} epochs into {output}")
    return train_arch(arch, train_source, val_source, output=output, verbose=verbose, **settings)


def open_model_and_data(dataset, *, split=None, data_dir=None, download=False, skip_bad_images=False,
                        train_missing_checkpoint=False, verbose=1, **model):
    """(`LoadedModel`, `DataSource`) for a run on `dataset`: the labels are read first (nothing
    downloaded), the weights resolved and the model checked against them, and only then is the
    data prepared (downloaded where `download`). `model` are the arguments of `open_model`.

    A missing checkpoint of `weights="auto"` is trained by the architecture's recipe where
    `train_missing_checkpoint`; otherwise the error says how to make it, and also how to get
    the data where that is missing too.
    """
    labels = dataset_labels(dataset, data_dir=data_dir)
    load = dict(data_dir=data_dir, download=download)
    if model.get("arch") is not None:
        try:
            model["weights"] = resolve_weights(model["arch"], model.get("weights", "auto"), labels,
                                               model.get("checkpoint_dir"))
        except MissingCheckpointError as missing:
            if not train_missing_checkpoint:
                raise _with_data_advice(missing, dataset, split, load) from None
            train_source = load_source(dataset, split="train", **load)
            train_missing(model["arch"], train_source, load_source(dataset, split=split, **load), missing.path,
                          verbose=verbose)
            model["weights"] = missing.path
    loaded = open_model(labels, **model)
    source = load_source(dataset, split=split, skip_bad_images=skip_bad_images, **load)
    warn_if_trained_otherwise(loaded, source)
    return loaded, source


def warn_if_trained_otherwise(loaded, source):
    """Warns when `loaded`'s checkpoint was trained on `source`'s dataset served otherwise (on
    another canvas, or without one): its accuracy at native will not be its training record's."""
    identity = loaded.identity or {}
    weights = identity.get("weights") or identity.get("model_path")
    record = training_record(weights["path"]) if isinstance(weights, dict) else None
    if not record or record["config"].get("dataset") != source.name:
        return
    trained = record["config"].get("canvas")
    if trained != source.canvas:
        def served(canvas):
            return f"on a {canvas}-px canvas" if canvas else "as stored"

        warnings.warn(f"{weights['path']} was trained on {source.name} {served(trained)}, but is evaluated on it "
                      f"{served(source.canvas)}: its accuracy at native is not its training record's", stacklevel=2)


def _with_data_advice(missing, dataset, split, load):
    """`missing`, with how to get the data added where the data is missing too (or, with
    `--download`, the train command downloading it)."""
    if load["download"]:
        command = missing.command.replace(" --output=", " --download --output=")
        return MissingCheckpointError(str(missing).replace(missing.command, command), missing.path, command)
    try:
        load_source(dataset, split=split, **load)
    except DataError as e:
        return MissingCheckpointError(f"{e}\nThen: {missing}", missing.path, missing.command)
    return missing


def reopen_model(fingerprint, name="the sweep", classes=None):
    """The `LoadedModel` a sweep ran, reopened from its cache's fingerprint
    (`predictions/sweep.json`): the same architecture and weights, the same model file or the
    same keras-hub preset, with the sweep's preprocessing and crop (`classes`: the outputs of a
    `.weights.h5` checkpoint's model). Refused, naming `name`, when the weights were random or in
    memory, or the file is gone or changed since the sweep."""
    identity, config = fingerprint.get("identity", {}), fingerprint.get("config", {})
    described = identity.get("weights") if "arch" in identity else identity.get("model_path")
    if "hub_preset" in identity:
        loaded = load_hub_preset(identity["hub_preset"])
    elif described == "imagenet":
        loaded = load_arch(identity["arch"], "imagenet")
    elif isinstance(described, dict):
        path = described["path"]
        if not os.path.isfile(path) or os.path.getsize(path) != described["bytes"]:
            raise FileNotFoundError(f"The model file of {name}, {path!r}, is gone or changed since the sweep "
                                    f"({described['bytes']} bytes then): it cannot be reopened as it ran")
        if "arch" in identity:
            loaded = load_arch(identity["arch"], path, classes=classes,
                               native_resolution=fingerprint.get("native_resolution"))
        else:
            loaded = load_user_model(path, native_resolution=fingerprint.get("native_resolution"))
    else:
        raise ValueError(f"The model of {name} has no file to reopen (random or in-memory weights: {identity}); "
                         "pass the models themselves")
    return loaded.with_settings(preprocess=config.get("preprocess"), crop_pct=config.get("crop_pct"))

