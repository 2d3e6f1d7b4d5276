"""Loading the model to study (a classifier or a segmenter): a registered architecture, any user
`.keras`/`.h5` file, or a keras-hub preset."""

import dataclasses
import hashlib
import os

import keras
import numpy as np

from reswise_tf.data.preprocessing import check_crop_pct, check_preprocess
from reswise_tf.models import keras_hub
from reswise_tf.models.inspect import input_resolution, is_segmenter, total_stride
from reswise_tf.models.registry import ArchSpec, get_arch

MODEL_EXTENSIONS = (".keras", ".h5")


@dataclasses.dataclass
class LoadedModel:
    """A model (a classifier or a segmenter) and the facts a sweep needs about it.

    Attributes:
      model: the Keras model at its native resolution.
      arch: the `ArchSpec` when built from the registry (used to rebuild it), else None.
      native_resolution: the size it was trained at (pixels).
      preprocess: the `preprocess_input` mode its inputs get (the sweep's, unless it overrides).
      crop_pct: the centre-crop fraction of ImageNet-size images (likewise).
      identity: JSON description (what model, which weights), stored with its predictions.
    """

    model: keras.Model
    arch: ArchSpec | None
    native_resolution: int
    preprocess: str
    crop_pct: float
    identity: dict

    @classmethod
    def from_model(cls, model, *, arch=None, native_resolution=None, preprocess=None, crop_pct=None):
        """An in-memory `model` (e.g. in a notebook). Its identity is its name, size and a
        digest of its weights, so a cache directory of another model is refused. `preprocess`
        and `crop_pct` default to the architecture's (`arch`), else `none` and 0.875."""
        spec = get_arch(arch) if arch is not None else None
        native = native_resolution or input_resolution(model)
        if native is None:
            raise ValueError(
                f"Model '{model.name}' has an undefined input size: pass `native_resolution` "
                "(the size it was trained at)"
            )
        identity = {"model": model.name, "params": int(model.count_params()), "weights_sha1": weights_digest(model)}
        if spec is not None:
            identity["arch"] = spec.name
        preprocess = preprocess or (spec.preprocess if spec is not None else "none")
        crop_pct = crop_pct or (spec.crop_pct if spec is not None else 0.875)
        check_preprocess(preprocess)
        check_crop_pct(crop_pct)
        return cls(model, spec, native, preprocess, crop_pct, identity)

    @property
    def min_resolution(self):
        """The smallest size its architecture builds with the same weights (1 when unknown)."""
        return self.arch.min_resolution if self.arch is not None else 1

    @property
    def size_multiple(self):
        """Sizes must be multiples of this: the architecture's, else a segmentation model's total
        stride (its skip connections), else 1."""
        if self.arch is not None:
            return self.arch.size_multiple
        return total_stride(self.model) if is_segmenter(self.model) else 1

    @property
    def num_outputs(self):
        """Classes the model predicts (its output's last dimension)."""
        return int(self.model.outputs[0].shape[-1])

    def with_settings(self, *, preprocess=None, crop_pct=None):
        """This model with its preprocessing and crop replaced where given (None keeps them)."""
        if preprocess is not None:
            check_preprocess(preprocess)
        if crop_pct is not None:
            check_crop_pct(crop_pct)
        return dataclasses.replace(
            self, preprocess=self.preprocess if preprocess is None else preprocess,
            crop_pct=self.crop_pct if crop_pct is None else crop_pct)


def weights_digest(model):
    """SHA-1 of every weight of `model`, in order (its identity when it has no file)."""
    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()


def load_model_file(path):
    """Loads a whole Keras model with safe mode on (no arbitrary code from the file)."""
    if not isinstance(path, str) or not path.endswith(MODEL_EXTENSIONS):
        raise ValueError(
            f"`model_path` should be a .keras or .h5 model file. Received model_path={path!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path!r}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad file
        raise ValueError(f"Cannot load a Keras model from {path!r}: {e}") from e


def load_arch(name, weights="imagenet", *, classes=None, native_resolution=None):
    """A registered architecture with `weights`: `imagenet`, `none`, or a checkpoint path.

    A checkpoint is a whole model (`.keras`, `.h5`, e.g. one trained at 32x32 by
    `experiments.train`; its input size is the native resolution) or a `.weights.h5` file
    (loaded into the architecture built with `classes` outputs at `native_resolution`).
    """
    spec = get_arch(name)
    if weights is None or weights == "none":
        resolution = native_resolution or spec.native_resolution
        model = spec.build(resolution, classes=classes or 1000)
        weights = "none"
    elif weights == "imagenet":
        resolution = spec.native_resolution
        if native_resolution not in (None, resolution):
            raise ValueError(
                f"ImageNet weights of '{name}' are at {resolution} px. "
                f"Received native_resolution={native_resolution}"
            )
        try:
            model = spec.build(resolution, weights="imagenet")
        except Exception as e:
            raise ValueError(
                f"Cannot get the ImageNet weights of '{name}' (they are downloaded on first use "
                f"into ~/.keras/models; is there a network?): {e}"
            ) from e
    elif isinstance(weights, str) and weights.endswith(".weights.h5"):
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"`weights` file not found: {weights!r}")
        resolution = native_resolution or spec.native_resolution
        model = spec.build(resolution, classes=classes or 1000)
        model.load_weights(weights)
    elif isinstance(weights, str) and weights.endswith(MODEL_EXTENSIONS):
        model = load_model_file(weights)
        resolution = native_resolution or input_resolution(model)
    else:
        raise ValueError(
            "`weights` should be 'imagenet', 'none', or a .keras/.h5/.weights.h5 file. "
            f"Received weights={weights!r}"
        )
    return LoadedModel(
        model=model,
        arch=spec,
        native_resolution=resolution,
        preprocess=spec.preprocess,
        crop_pct=spec.crop_pct,
        identity={"arch": spec.name, "weights": _describe(weights)},
    )


def load_user_model(path, *, native_resolution=None, preprocess="none", crop_pct=0.875):
    """Any user model file (a classifier or a segmenter); rebuilt for other resolutions by
    cloning its graph (a saved keras-hub image classifier: with its image converter's
    normalisation, `keras_hub`)."""
    model = load_model_file(path)
    if keras_hub.is_hub_classifier(model):
        model, _ = keras_hub.with_converter(model)
    resolution = input_resolution(model)
    if native_resolution is None:
        if resolution is None:
            raise ValueError(
                f"Model {path!r} has an undefined input size: pass --native_resolution"
            )
        native_resolution = resolution
    return LoadedModel(
        model=model,
        arch=None,
        native_resolution=native_resolution,
        preprocess=preprocess,
        crop_pct=crop_pct,
        identity={"model_path": _describe(path)},
    )


def load_hub_preset(name, *, crop_pct=0.875):
    """A keras-hub image classifier preset (downloaded on first use), normalised by its own
    image converter inside the model; its native size is the preset's image size."""
    model, native = keras_hub.load_preset(name)
    return LoadedModel(model=model, arch=None, native_resolution=native, preprocess="none", crop_pct=crop_pct,
                       identity={"hub_preset": name})


def _describe(path):
    if path in ("imagenet", "none"):
        return path
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": stat.st_size}
