"""A deployable resolution cascade: the cheap model on every image, larger ones only when unsure.

`CascadeClassifier` holds one Keras model per stage (the same weights rebuilt at each resolution
by `rescale`) and a `CascadeConfig` fitted from the prediction cache by the `cascade` selector.
It decides with the same numpy code as the selector (`CascadeConfig.accept` on the top-K
softmax probabilities), so on the same inputs it takes the same decisions as the selector does
from the cache.

Images are given either as {resolution: batch} (each resolution made from the decoded original,
as the sweep does; exactly what the cache saw) or as one batch that is resized (bilinear,
antialiased) to each stage; the latter is convenient but not the sweep's pipeline.

Saved as a directory: `cascade.json` (the config) and `stage_<R>.keras` (one model per stage).
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from reswise_tf.cost.flops import count_macs
from reswise_tf.evaluation.engine import top_predictions
from reswise_tf.evaluation.resolution_sweep import DEFAULT_KEPT_CLASSES
from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.models.inspect import input_resolution
from reswise_tf.models.loading import load_model_file
from reswise_tf.models.rescale import rescale
from reswise_tf.runtime.logs import expect_one_trace_per_model
from reswise_tf.runtime.precision import note_if_slow
from reswise_tf.selection.cascade.config import CascadeConfig
from reswise_tf.utils.files import atomic_write_text

CONFIG_FILE = "cascade.json"
expect_one_trace_per_model("CascadeClassifier._forward_fn.<locals>.<lambda>")


@dataclasses.dataclass
class CascadeOutput:
    """What `CascadeClassifier.classify` returns for N images.

    Attributes:
      top_ids: int32 (N, K) class ids by decreasing probability, from the accepting stage.
      top_probs: float32 (N, K) their softmax probabilities.
      resolution: int (N,) the resolution whose prediction was accepted.
      macs: float (N,) MACs spent on each image (every pass that ran).
    """

    top_ids: np.ndarray
    top_probs: np.ndarray
    resolution: np.ndarray
    macs: np.ndarray

    @property
    def predictions(self):
        return self.top_ids[:, 0]


class CascadeClassifier(tf.Module):
    """Classifies a batch stage by stage, running each larger model only on the images whose
    confidence at the previous stage was below its threshold.

    Args:
      models: one Keras classifier per stage, cheapest first ({resolution: model} or a list in
        the order of `config.stages`); each takes `resolution` x `resolution` inputs.
      config: a `CascadeConfig` (e.g. from `selection.fit_cascade` or `cascade_fits.json`).
      kept_classes: classes kept per image in the output; default `config.kept_classes`, else
        the sweep's (`DEFAULT_KEPT_CLASSES`). The calibrated confidences renormalise over these.
      precision: what the stages compute in (`runtime.precision.PRECISIONS`); fit the config on
        a sweep of the same precision.
    """

    def __init__(self, models, config, *, kept_classes=None, precision="float32", name="cascade_classifier"):
        super().__init__(name=name)
        if not isinstance(config, CascadeConfig):
            raise ValueError(f"`config` should be a CascadeConfig. Received config={config!r}")
        if isinstance(models, dict):
            if sorted(models) != list(config.stages):
                raise ValueError(
                    f"`models` should have one model per stage {list(config.stages)}. "
                    f"Received models for {sorted(models)}"
                )
            models = [models[r] for r in config.stages]
        models = list(models)
        if len(models) != len(config.stages):
            raise ValueError(
                f"`models` should have {len(config.stages)} models (one per stage). "
                f"Received {len(models)}"
            )
        for r, model in zip(config.stages, models):
            if input_resolution(model) != r:
                raise ValueError(
                    f"The model of stage {r} takes {input_resolution(model)}px inputs, not {r}px"
                )
        self.config = config
        self.precision = precision
        note_if_slow(precision)
        models = [with_precision(m, precision) for m in models]
        self.stage_models = models
        classes = models[-1].outputs[0].shape[-1]
        self.kept_classes = min(kept_classes or config.kept_classes or DEFAULT_KEPT_CLASSES, classes)
        if config.kept_classes is not None and self.kept_classes < config.kept_classes:
            raise ValueError(
                f"`kept_classes` should be at least config.kept_classes={config.kept_classes}. "
                f"Received kept_classes={kept_classes}"
            )
        self.macs = [float(count_macs(m)) for m in models]
        self.channels = models[0].inputs[0].shape[-1]
        self._forwards = [self._forward_fn(m, r) for m, r in zip(models, config.stages)]

    @classmethod
    def from_model(cls, model, config, *, arch=None, kept_classes=None, precision="float32"):
        """Builds every stage from one trained `model` with `rescale` (weights shared)."""
        native = input_resolution(model)
        models = [model if r == native else rescale(model, r, arch=arch) for r in config.stages]
        return cls(models, config, kept_classes=kept_classes, precision=precision)

    @property
    def stages(self):
        return self.config.stages

    def _forward_fn(self, model, resolution):
        spec = tf.TensorSpec((None, resolution, resolution, self.channels), tf.float32)
        return tf.function(lambda images: top_predictions(model, images, self.kept_classes), input_signature=[spec])

    def _stage_images(self, images, resolution, rows=None):
        if isinstance(images, dict):
            x = images.get(resolution, images.get(str(resolution)))
            if x is None:
                raise ValueError(
                    f"`images` has no batch for stage {resolution}. Received resolutions "
                    f"{sorted(images)}"
                )
        else:
            x = images
        x = tf.convert_to_tensor(x, tf.float32)
        if rows is not None:
            x = tf.gather(x, rows)
        if x.shape[1] != resolution or x.shape[2] != resolution:
            x = tf.image.resize(x, (resolution, resolution), antialias=True)
        return x

    def stage_predictions(self, images, stage):
        """(top_ids, top_probs) of stage `stage` (index into `stages`) on every image, as the
        sweep caches them."""
        ids, probs = self._forwards[stage](self._stage_images(images, self.stages[stage]))
        return ids.numpy(), probs.numpy()

    def classify(self, images, *, batch_size=None):
        """Runs the cascade on `images` (one batch, or {resolution: batch}); returns a
        `CascadeOutput`. With `batch_size`, the images are processed in chunks of that size."""
        n = len(next(iter(images.values())) if isinstance(images, dict) else images)
        if batch_size:
            parts = [
                self.classify(_slice(images, i, i + batch_size)) for i in range(0, n, batch_size)
            ]
            return CascadeOutput(
                *(
                    np.concatenate([getattr(p, f.name) for p in parts])
                    for f in dataclasses.fields(CascadeOutput)
                )
            )
        top_ids = np.zeros((n, self.kept_classes), np.int32)
        top_probs = np.zeros((n, self.kept_classes), np.float32)
        resolution = np.zeros(n, np.int64)
        macs = np.zeros(n, np.float64)
        pending = np.arange(n)
        for j, r in enumerate(self.stages):
            rows = None if j == 0 else pending
            ids, probs = self._forwards[j](self._stage_images(images, r, rows))
            ids, probs = ids.numpy(), probs.numpy()
            accept = self.config.accept(probs, j, ids)
            done = pending[accept]
            top_ids[done], top_probs[done], resolution[done] = ids[accept], probs[accept], r
            macs[pending] += self.macs[j]
            pending = pending[~accept]
            if not len(pending):
                break
        return CascadeOutput(top_ids, top_probs, resolution, macs)

    def __call__(self, images):
        """Top-1 class ids (N,) of `images`."""
        return self.classify(images).predictions

    def save(self, directory):
        """Writes `cascade.json` and one `stage_<R>.keras` per stage into `directory`."""
        os.makedirs(directory, exist_ok=True)
        for r, model in zip(self.stages, self.stage_models):
            model.save(os.path.join(directory, f"stage_{r}.keras"))
        doc = {"config": self.config.to_dict(), "kept_classes": self.kept_classes, "precision": self.precision}
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
        models = [
            load_model_file(os.path.join(directory, f"stage_{r}.keras")) for r in config.stages
        ]
        return cls(models, config, kept_classes=doc.get("kept_classes", doc.get("top_k")),
                   precision=doc.get("precision", "float32"))


def _slice(images, start, stop):
    if isinstance(images, dict):
        return {r: x[start:stop] for r, x in images.items()}
    return images[start:stop]


__all__ = ["CascadeClassifier", "CascadeOutput"]
