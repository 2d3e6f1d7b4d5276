"""keras_hub's Vision Transformer (`ViTBackbone`, `ViTImageClassifier`) at another resolution.

keras_hub (0.32) builds its ViT from custom layers whose configs fix the image size: the
backbone is rebuilt from its config at the new `image_shape`, every variable copied, and the
position table resampled as for our ViT (`resample.resample_pos_embed`, timm's bicubic; the
class-token row kept). Handles a `ViTBackbone`, a `ViTImageClassifier` and a user functional
model that calls a `ViTBackbone` on (a function of) its image. keras_hub is optional
(`pip install -e ".[hub]"`); nothing here imports it unless the model is one of its.
"""

import sys

import keras
import numpy as np

from reswise_tf.models import vit
from reswise_tf.models.inspect import RescaleError, all_layers
from reswise_tf.models.resample import resample_pos_embed

POSITION_PATH = "position_embedding/embeddings"


def _hub():
    return sys.modules.get("keras_hub")


def contains_hub_vit(model):
    """Whether `model` is or contains a keras_hub ViT (keras_hub already imported by loading it)."""
    hub = _hub()
    if hub is None:
        return False
    kinds = (hub.models.ViTBackbone, hub.models.ViTImageClassifier)
    return isinstance(model, kinds) or any(isinstance(layer, kinds) for layer in all_layers(model))


def rescale_hub_vit(model, resolution, antialias=True):
    """`model` rebuilt for `resolution` px inputs, every weight copied, the table resampled."""
    hub = _hub()
    if isinstance(model, hub.models.ViTBackbone):
        return _backbone_at(model, resolution, antialias)
    if isinstance(model, hub.models.ViTImageClassifier):
        return _classifier_at(model, resolution, antialias)
    return _functional_at(model, resolution, antialias)


def _backbone_at(backbone, resolution, antialias):
    config = backbone.get_config()
    patch = config["patch_size"]
    patch = patch if isinstance(patch, int) else patch[0]
    vit.check_size(resolution, patch, what="resolution")
    config["image_shape"] = (resolution, resolution, config["image_shape"][-1])
    new = type(backbone).from_config(config)
    old_grid, new_grid = backbone.image_shape[0] // patch, resolution // patch
    if [w.path for w in backbone.weights] != [w.path for w in new.weights]:
        raise RescaleError(f"keras_hub backbone '{backbone.name}' has other variables at resolution={resolution}")
    for a, b in zip(backbone.weights, new.weights):
        value = np.asarray(keras.ops.convert_to_numpy(a))
        if a.path.endswith(POSITION_PATH):
            prefix = value.shape[0] - old_grid * old_grid
            value = resample_pos_embed(value, new_grid, old_size=old_grid, num_prefix_tokens=prefix, antialias=antialias)
        b.assign(value)
    return new


def _classifier_at(model, resolution, antialias):
    backbone = _backbone_at(model.backbone, resolution, antialias)
    preprocessor = model.preprocessor
    converter = getattr(preprocessor, "image_converter", None)
    if converter is not None and getattr(converter, "image_size", None) is not None:
        converter = type(converter).from_config({**converter.get_config(), "image_size": (resolution, resolution)})
        preprocessor = type(preprocessor)(image_converter=converter)
    new = type(model)(backbone=backbone, num_classes=model.num_classes, preprocessor=preprocessor,
                      pooling=model.pooling, intermediate_dim=model.intermediate_dim, activation=model.activation,
                      dropout=model.dropout, name=model.name)
    heads = zip([x for x in model.layers if x.weights and x is not model.backbone],
                [x for x in new.layers if x.weights and x is not new.backbone], strict=True)
    for a, b in heads:
        b.set_weights(a.get_weights())
    return new


def _functional_at(model, resolution, antialias):
    """A user model around a ViTBackbone: its graph cloned on a new input, the backbone
    replaced by its rescaled copy, every other weight copied."""
    hub = _hub()
    rescaled = {}

    def clone(layer):
        if isinstance(layer, hub.models.ViTBackbone):
            rescaled[id(layer)] = _backbone_at(layer, resolution, antialias)
            return rescaled[id(layer)]
        return type(layer).from_config(layer.get_config())

    image = keras.Input((resolution, resolution, model.inputs[0].shape[-1]), name=model.inputs[0].name)
    new = keras.models.clone_model(model, input_tensors=image, clone_function=clone)
    for a, b in zip(model.layers, new.layers, strict=True):
        if a.weights and not isinstance(a, hub.models.ViTBackbone):
            b.set_weights(a.get_weights())
    return new
