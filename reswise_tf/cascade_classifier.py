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

from reswise_tf.flops import count_macs
from reswise_tf.models import load_model_file
from reswise_tf.rescale import input_resolution, rescale
from reswise_tf.selectors.cascade import CascadeConfig
from reswise_tf.sweep import outputs_probabilities

CONFIG_FILE = "cascade.json"


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
      config: a `CascadeConfig` (e.g. from `selectors.fit_cascade` or `cascade_fits.json`).
      top_k: classes kept per image in the output; default `config.kept_classes`, else up to 10
        (the sweep's cache size). The calibrated confidences renormalise over these classes.
    """

    def __init__(self, models, config, *, top_k=None, name="cascade_classifier"):
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
        self.stage_models = models
        classes = models[-1].outputs[0].shape[-1]
        self.top_k = min(top_k or config.kept_classes or 10, classes)
        if config.kept_classes is not None and self.top_k < config.kept_classes:
            raise ValueError(
                f"`top_k` should be at least config.kept_classes={config.kept_classes}. "
                f"Received top_k={top_k}"
            )
        self.macs = [float(count_macs(m)) for m in models]
        self.channels = models[0].inputs[0].shape[-1]
        self._forwards = [self._forward_fn(m, r) for m, r in zip(models, config.stages)]

    @classmethod
    def from_model(cls, model, config, *, arch=None, top_k=None):
        """Builds every stage from one trained `model` with `rescale` (weights shared)."""
        native = input_resolution(model)
        models = [model if r == native else rescale(model, r, arch=arch) for r in config.stages]
        return cls(models, config, top_k=top_k)

    @property
    def stages(self):
        return self.config.stages

    def _forward_fn(self, model, resolution):
        softmax = not outputs_probabilities(model)
        spec = tf.TensorSpec((None, resolution, resolution, self.channels), tf.float32)

        @tf.function(input_signature=[spec])
        def forward(images):
            outputs = model(images, training=False)
            if softmax:
                outputs = tf.nn.softmax(outputs, axis=-1)
            probs, ids = tf.math.top_k(outputs, k=self.top_k)
            return tf.cast(ids, tf.int32), probs

        return forward

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
        top_ids = np.zeros((n, self.top_k), np.int32)
        top_probs = np.zeros((n, self.top_k), np.float32)
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
        doc = {"config": self.config.to_dict(), "top_k": self.top_k}
        tmp = os.path.join(directory, CONFIG_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, os.path.join(directory, CONFIG_FILE))

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
        return cls(models, config, top_k=doc.get("top_k"))


def _slice(images, start, stop):
    if isinstance(images, dict):
        return {r: x[start:stop] for r, x in images.items()}
    return images[start:stop]


__all__ = ["CascadeClassifier", "CascadeOutput"]
