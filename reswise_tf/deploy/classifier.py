"""A deployable cascade: the cheap stage on every image, costlier ones only when unsure.

`CascadeClassifier` holds one Keras model per stage (the same weights rebuilt at each
resolution by `rescale`, or the models of several sweeps, each at its resolution) and a
`CascadeConfig` fitted from the prediction caches by the `cascade` selector. It decides with
the same numpy code as the selector (`CascadeConfig.accept`, and `pool.average_predictions` for
a stage that decides on the committee so far), so on the same inputs it takes the same decisions
as the selector does from the cache. Of each batch only the undecided images go on.

Images are given as {stage: batch} (each made from the decoded original as the sweep makes it:
exactly what the cache saw), or as one batch: raw images (0..255) that each stage prepares with
its own preprocessing and crop (`StageInput`; a `caffe` and a `tf` model need different inputs),
or, for stages without an input spec, a batch resized (bilinear, antialiased) to each stage.

Saved as one directory: `cascade.json` (the config, each stage's input spec) and
`stage_<j>.keras` (the model of the j-th stage).
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from reswise_tf.cost.flops import count_macs
from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation.engine import top_predictions
from reswise_tf.evaluation.resolution_sweep import DEFAULT_KEPT_CLASSES
from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.models.inspect import input_resolution
from reswise_tf.models.loading import load_model_file
from reswise_tf.models.rescale import rescale
from reswise_tf.runtime.logs import expect_one_trace_per_model
from reswise_tf.runtime.precision import note_if_slow
from reswise_tf.selection.cascade.config import CascadeConfig
from reswise_tf.selection.pool import average_predictions
from reswise_tf.utils.files import atomic_write_text

CONFIG_FILE = "cascade.json"
expect_one_trace_per_model("CascadeClassifier._forward_fn.<locals>.<lambda>")


@dataclasses.dataclass(frozen=True)
class StageInput:
    """How a stage prepares a raw image, as the sweep did: the model's `preprocess_input` mode,
    its centre-crop fraction, and whether images are small (resized directly, no crop)."""

    preprocess: str = "none"
    crop_pct: float = 0.875
    direct: bool = True


@dataclasses.dataclass
class CascadeOutput:
    """What `CascadeClassifier.classify` returns for N images.

    Attributes:
      top_ids: int32 (N, K) class ids by decreasing probability, from the accepting stage
        (or the committee it decided on).
      top_probs: float32 (N, K) their probabilities.
      stage: (N,) the stage whose decision was accepted (a resolution, or a stage name).
      macs: float (N,) MACs spent on each image (every pass that ran).
    """

    top_ids: np.ndarray
    top_probs: np.ndarray
    stage: np.ndarray
    macs: np.ndarray

    @property
    def predictions(self):
        return self.top_ids[:, 0]

    @property
    def resolution(self):
        """The accepting stage of a cascade over one model's resolutions (`stage`)."""
        return self.stage


class CascadeClassifier(tf.Module):
    """Classifies a batch stage by stage, running each costlier stage only on the images the
    previous ones did not accept.

    Args:
      models: one Keras classifier per stage ({stage: model} or a list in the order of
        `config.stages`); a stage keyed by a resolution takes inputs of that size.
      config: a `CascadeConfig` (e.g. from `selection.fit_cascade` or `cascade_fits.json`).
      inputs: {stage: StageInput}: how each stage prepares raw images (None: stages take
        prepared inputs, or a batch resized to them).
      kept_classes: classes kept per image in the output; default `config.kept_classes`, else
        the sweep's (`DEFAULT_KEPT_CLASSES`). The calibrated confidences renormalise over these.
      precision: what the stages compute in (`runtime.precision.PRECISIONS`); fit the config on
        a sweep of the same precision.
    """

    def __init__(self, models, config, *, inputs=None, kept_classes=None, precision="float32",
                 name="cascade_classifier"):
        super().__init__(name=name)
        if not isinstance(config, CascadeConfig):
            raise ValueError(f"`config` should be a CascadeConfig. Received config={config!r}")
        models = _per_stage(models, config)
        self.config, self.precision = config, precision
        self.inputs = {k: inputs[k] for k in config.stages} if inputs else None
        note_if_slow(precision)
        self.stage_models = [with_precision(m, precision) for m in models]
        classes = models[-1].outputs[0].shape[-1]
        self.kept_classes = min(kept_classes or config.kept_classes or DEFAULT_KEPT_CLASSES, classes)
        if config.kept_classes is not None and self.kept_classes < config.kept_classes:
            raise ValueError(
                f"`kept_classes` should be at least config.kept_classes={config.kept_classes}. "
                f"Received kept_classes={kept_classes}"
            )
        self.macs = [float(count_macs(m)) for m in models]
        self.sizes = [input_resolution(m) for m in models]
        self._forwards = [self._forward_fn(m, size) for m, size in zip(self.stage_models, self.sizes)]

    @classmethod
    def from_model(cls, model, config, *, arch=None, kept_classes=None, precision="float32"):
        """Builds every stage of a one-model cascade (stages are resolutions) from one trained
        `model` with `rescale` (weights shared)."""
        native = input_resolution(model)
        models = [model if r == native else rescale(model, r, arch=arch) for r in config.stages]
        return cls(models, config, kept_classes=kept_classes, precision=precision)

    @classmethod
    def from_models(cls, loaded, config, *, small_images=True, kept_classes=None, precision="float32", heads=None):
        """Builds a cascade over several models' stages (`"<name>@<resolution>"`) from
        {name: models.LoadedModel}: each stage is its model rescaled to the resolution (with
        `heads[name]`, e.g. "adaptive_pool", where given), fed as its sweep fed it (its
        preprocessing and crop)."""
        models, inputs = {}, {}
        for key in config.stages:
            name, _, size = str(key).rpartition("@")
            if name not in loaded:
                raise ValueError(f"No model named {name!r} for stage {key!r}. Received models: {', '.join(loaded)}")
            m = loaded[name]
            size = int(size)
            head = (heads or {}).get(name)
            models[key] = m.model if size == m.native_resolution else rescale(m.model, size, arch=m.arch, head=head)
            inputs[key] = StageInput(m.preprocess, m.crop_pct, small_images)
        return cls(models, config, inputs=inputs, kept_classes=kept_classes, precision=precision)

    @property
    def stages(self):
        return self.config.stages

    def _forward_fn(self, model, size):
        channels = model.inputs[0].shape[-1]
        spec = tf.TensorSpec((None, size, size, channels), tf.float32)
        return tf.function(lambda images: top_predictions(model, images, self.kept_classes), input_signature=[spec])

    def _stage_images(self, images, j, rows=None):
        key, size = self.stages[j], self.sizes[j]
        if isinstance(images, dict):
            x = images.get(key, images.get(str(key)))
            if x is None:
                raise ValueError(f"`images` has no batch for stage {key}. Received stages {sorted(map(str, images))}")
        else:
            x = images
        x = tf.convert_to_tensor(x, tf.float32)
        if rows is not None:
            x = tf.gather(x, rows)
        if self.inputs is not None and not isinstance(images, dict):
            spec, channels = self.inputs[key], self.stage_models[j].inputs[0].shape[-1]
            return tf.map_fn(lambda image: prepare(image, size, mode=spec.preprocess, crop_pct=spec.crop_pct,
                                                   direct=spec.direct, channels=channels), x)
        if x.shape[1] != size or x.shape[2] != size:
            x = tf.image.resize(x, (size, size), antialias=True)
        return x

    def stage_predictions(self, images, stage):
        """(top_ids, top_probs) of stage `stage` (index into `stages`) on every image, as the
        sweep caches them."""
        ids, probs = self._forwards[stage](self._stage_images(images, stage))
        return ids.numpy(), probs.numpy()

    def classify(self, images, *, batch_size=None):
        """Runs the cascade on `images` (one batch, or {stage: batch}); returns a
        `CascadeOutput`. With `batch_size`, the images are processed in chunks of that size."""
        n = len(next(iter(images.values())) if isinstance(images, dict) else images)
        if batch_size:
            parts = [self.classify(_slice(images, i, i + batch_size)) for i in range(0, n, batch_size)]
            return CascadeOutput(*(np.concatenate([getattr(p, f.name) for p in parts])
                                   for f in dataclasses.fields(CascadeOutput)))
        top_ids = np.zeros((n, self.kept_classes), np.int32)
        top_probs = np.zeros((n, self.kept_classes), np.float32)
        stage = np.empty(n, object if any(isinstance(k, str) for k in self.stages) else np.int64)
        macs = np.zeros(n, np.float64)
        pending, ran, previous = np.arange(n), [], None  # ran: every stage's predictions of the pending images
        for j, key in enumerate(self.stages):
            ids, probs = self._forwards[j](self._stage_images(images, j, None if j == 0 else pending))
            ran.append((ids.numpy(), probs.numpy()))
            ids, probs = ran[-1]
            if self.config.decide == "committee" and j > 0:
                ids, probs = average_predictions([i for i, _ in ran], [p for _, p in ran], self.kept_classes)
            accept = self.config.accept(probs, j, ids, previous)
            done = pending[accept]
            top_ids[done], top_probs[done], stage[done] = ids[accept], probs[accept], key
            macs[pending] += self.macs[j]
            keep = ~accept
            pending, previous = pending[keep], ran[-1][0][keep, 0]
            ran = [(i[keep], p[keep]) for i, p in ran]
            if not len(pending):
                break
        return CascadeOutput(top_ids, top_probs, stage, macs)

    def __call__(self, images):
        """Top-1 class ids (N,) of `images`."""
        return self.classify(images).predictions

    def save(self, directory):
        """Writes `cascade.json` and one `stage_<j>.keras` per stage into `directory`."""
        os.makedirs(directory, exist_ok=True)
        for j, model in enumerate(self.stage_models):  # by position: a stage name may hold a "/"
            model.save(os.path.join(directory, f"stage_{j}.keras"))
        doc = {"config": self.config.to_dict(), "kept_classes": self.kept_classes, "precision": self.precision}
        if self.inputs is not None:
            doc["inputs"] = {str(k): dataclasses.asdict(v) for k, v in self.inputs.items()}
        atomic_write_text(os.path.join(directory, CONFIG_FILE), json.dumps(doc, indent=2))

    @classmethod
    def load(cls, directory):
        """Loads a cascade written by `save` (models loaded with Keras safe mode)."""
        path = os.path.join(directory, CONFIG_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No {CONFIG_FILE} in {directory!r}: not a saved cascade")
        with open(path) as f:
            doc = json.load(f)
        config = CascadeConfig.from_dict(doc["config"])
        models = [load_model_file(os.path.join(directory, f"stage_{j}.keras")) for j in range(len(config.stages))]
        inputs = {k: StageInput(**doc["inputs"][str(k)]) for k in config.stages} if "inputs" in doc else None
        return cls(models, config, inputs=inputs, kept_classes=doc.get("kept_classes", doc.get("top_k")),
                   precision=doc.get("precision", "float32"))


def _per_stage(models, config):
    """The models in the order of `config.stages`, checked (one per stage; a resolution stage
    takes inputs of its size)."""
    if isinstance(models, dict):
        if sorted(map(str, models)) != sorted(map(str, config.stages)):
            raise ValueError(f"`models` should have one model per stage {list(config.stages)}. "
                             f"Received models for {sorted(models, key=str)}")
        models = [models[k] for k in config.stages]
    models = list(models)
    if len(models) != len(config.stages):
        raise ValueError(f"`models` should have {len(config.stages)} models (one per stage). Received {len(models)}")
    for key, model in zip(config.stages, models):
        if isinstance(key, int) and input_resolution(model) != key:
            raise ValueError(f"The model of stage {key} takes {input_resolution(model)}px inputs, not {key}px")
    return models


def _slice(images, start, stop):
    if isinstance(images, dict):
        return {r: x[start:stop] for r, x in images.items()}
    return images[start:stop]


__all__ = ["CascadeClassifier", "CascadeOutput", "StageInput"]
