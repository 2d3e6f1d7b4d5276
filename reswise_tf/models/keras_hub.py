"""keras-hub's image classifiers (and backbones) at another resolution, every family through one
rebuilder.

keras-hub (0.32) builds its models from custom layers whose configs fix the image size, and for
some of them (DeiT's embeddings, Swin's layer norms, SegFormer's encoder blocks) the per-layer
`get_config`/`from_config` round trip is broken, so the graph rebuild of `rebuild.py` cannot
re-create them. Instead the backbone is rebuilt from its class and constructor arguments (its own
`get_config`, which works) with the new `image_shape`, the task (classifier) from its
constructor arguments around it, and every weight is copied in order, checked by shape. A
family's weight adapter handles what depends on the size: the position tables of ViT (class
token) and DeiT (class and distillation tokens) are resampled as timm does
(`resample.resample_pos_embed`). Size rules are checked first and refused naming the sizes that
work: ViT and DeiT need patch multiples; Swin needs every stage's grid at least its window (the
window is shrunk when a grid equals it, but keras-hub builds the attention with the original
window: a grid below the window cannot run) and even below the last stage, which for the presets
(patch 4, window 7) leaves no size below 224; MiT needs multiples of its total stride.
MobileNetV5's fusion block brings its maps to a fixed grid (`msfa_output_resolution`) at any
size, as keras-hub builds it: below the preset's size the fused map is upsampled to that grid,
so the layers after the fusion cost the same at every size. VGG's 7x7 head runs at larger sizes,
and at smaller ones with
`head="adaptive_pool"` (the map average-pooled to its trained grid first). A rebuilt model with
other layers than the original (EfficientNet's config drops `stackwise_nores_option`) is refused.

keras-hub is optional (`pip install -e ".[hub]"`); nothing here imports it unless a model is one
of its (loading one imported it).
"""

import math
import sys

import keras
import numpy as np

from reswise_tf.models import vit
from reswise_tf.models.adaptive_pool import adaptive_avg_pool
from reswise_tf.models.inspect import RescaleError, all_layers
from reswise_tf.models.resample import resample_pos_embed

# The weight that holds a position table, and the tokens before its grid, per backbone class.
POSITION_TABLES = {"ViTBackbone": ("position_embedding/embeddings", None),
                   "DeiTBackbone": ("position_embedding", 2)}


def _hub():
    return sys.modules.get("keras_hub")


def _tasks(hub):
    """The keras-hub tasks rebuilt here: image classifiers and segmenters."""
    return hub.models.ImageClassifier, hub.models.ImageSegmenter


def contains_hub(model):
    """Whether `model` is or contains a keras-hub backbone (keras-hub already imported)."""
    hub = _hub()
    if hub is None:
        return False
    kinds = (hub.models.Backbone, *_tasks(hub))
    return isinstance(model, kinds) or any(isinstance(layer, kinds) for layer in all_layers(model))


def is_hub_classifier(model):
    """Whether `model` is a keras-hub image classifier or segmenter (a task with a backbone)."""
    hub = _hub()
    return hub is not None and isinstance(model, _tasks(hub))


def rescale_hub(model, resolution, head=None, antialias=True):
    """`model` (a keras-hub backbone or image classifier, or a user model around a backbone)
    rebuilt for `resolution` px inputs, every weight copied (see the module docstring)."""
    hub = _hub()
    if isinstance(model, hub.models.Backbone):
        return backbone_at(model, resolution, antialias)
    if isinstance(model, _tasks(hub)):
        if head == "adaptive_pool":
            return _pooled_head_at(model, resolution, antialias)
        return task_at(model, resolution, antialias)
    return _functional_at(model, resolution, antialias)


def plain(value):
    """A config with Keras' tracked lists and dicts made plain (they refer back to the model,
    so copying them would copy the whole model)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if isinstance(value, tuple) else [plain(v) for v in value]
    return value


def backbone_at(backbone, resolution, antialias=True):
    """A keras-hub backbone rebuilt at `resolution` from its constructor arguments, weights copied."""
    config = plain(backbone.get_config())
    if "image_encoder" in config:  # a segmenter's backbone around an image backbone (DeepLabV3, SegFormer)
        config["image_encoder"] = backbone_at(backbone.image_encoder, resolution, antialias)
    key = "input_shape" if "input_shape" in config else "image_shape"
    old = tuple(config[key]) if key in config else tuple(backbone.input.shape[1:])
    if key in config:
        config[key] = (resolution, resolution, old[-1])
    config.update(_family_arguments(backbone, config, resolution))
    new = type(backbone).from_config(config)
    _check_same_layers(backbone, new, resolution)
    copy_in_order(backbone.weights, new.weights, _adapter(backbone, old, resolution, antialias))
    return new


def task_at(model, resolution, antialias=True):
    """A keras-hub task (an image classifier or segmenter) rebuilt around its backbone rebuilt at
    `resolution` (a segmenter's final resizing follows the new input); its preprocessor's image
    size (when it has one) set to `resolution`."""
    backbone = backbone_at(model.backbone, resolution, antialias)
    config = plain(model.get_config())
    config["backbone"] = backbone
    new = type(model).from_config(config)
    converter = getattr(new.preprocessor, "image_converter", None)
    if converter is not None and getattr(converter, "image_size", None) is not None:
        converter.image_size = (resolution, resolution)
    old_grid = tuple(model.backbone.input.shape[1:3])
    copy_in_order(model.weights, new.weights, _adapter(model.backbone, (*old_grid, 3), resolution, antialias))
    return new


def copy_in_order(old_weights, new_weights, adapt):
    """Assigns every weight of `old_weights` to `new_weights` in order (keras-hub names some
    layers anew at every build), each checked by shape; `adapt(old_weight, value, new_shape)`
    returns a size-dependent weight's value at the new size, else None."""
    if len(old_weights) != len(new_weights):
        raise RescaleError(f"The rebuilt model has {len(new_weights)} weights, the original {len(old_weights)}")
    for a, b in zip(old_weights, new_weights):
        value = np.asarray(keras.ops.convert_to_numpy(a))
        if value.shape != tuple(b.shape):
            adapted = adapt(a, value, tuple(b.shape))
            if adapted is None:
                raise RescaleError(f"Weight '{a.path}' has shape {value.shape} in the original and {tuple(b.shape)} "
                                   "in the rebuilt model: it depends on the image size and has no adapter")
            value = adapted
        b.assign(value)


def _adapter(backbone, old_shape, resolution, antialias):
    """The position-table resampler of `backbone`'s family (None for other weights)."""
    table = POSITION_TABLES.get(type(backbone).__name__)
    if table is None:
        return lambda weight, value, shape: None
    suffix, prefix = table
    patch = _patch(backbone)
    old_grid, new_grid = old_shape[0] // patch, resolution // patch

    def adapt(weight, value, shape):
        if not weight.path.endswith(suffix):
            return None
        rows = value.reshape(-1, value.shape[-1])
        tokens = prefix if prefix is not None else rows.shape[0] - old_grid * old_grid
        out = resample_pos_embed(rows, new_grid, old_size=old_grid, num_prefix_tokens=tokens, antialias=antialias)
        return out.reshape(shape)

    return adapt


def _patch(backbone):
    patch = backbone.get_config()["patch_size"]
    return patch if isinstance(patch, int) else patch[0]


def _family_arguments(backbone, config, resolution):
    """The constructor arguments a family derives from the size, checked (see the module
    docstring); raises RescaleError naming the sizes that work."""
    family = type(backbone).__name__
    if family in POSITION_TABLES:
        vit.check_size(resolution, _patch(backbone), what="resolution")
    elif family == "SwinTransformerBackbone":
        _check_sizes(resolution, lambda s: _swin_ok(config, s), "Swin's stages need every grid at least the window "
                     f"({config['window_size']}) and even grids before the last")
    elif family == "MiTBackbone":
        stride = math.prod(config["layerwise_strides"])
        _check_sizes(resolution, lambda s: _mit_ok(config, s), f"SegFormer's MiT needs multiples of its total stride "
                     f"{stride}, a last grid of at least 2 and every grid at least its reduction ratio")
    elif family == "DeepLabV3Backbone":
        stride = 2 ** int(config["spatial_pyramid_pooling_key"][-1])
        _check_sizes(resolution, lambda s: s % stride == 0, f"DeepLabV3 needs multiples of the stride {stride} of its "
                     "pyramid-pooling level (else its maps are rounded and the output is not the image's size)")
    elif family == "EfficientNetBackbone":
        return {"num_features": backbone.get_layer("top_conv").filters}  # its get_config drops it
    return {}


def _mit_ok(config, size):
    grid = size
    for stride, ratio in zip(config["layerwise_strides"], config["layerwise_sr_ratios"]):
        if grid % stride:
            return False
        grid //= stride
        if grid < ratio:
            return False
    return grid >= 2


def _swin_ok(config, size):
    grid = size // config["patch_size"]
    for stage in range(len(config["depths"])):
        if grid < config["window_size"] or (stage < len(config["depths"]) - 1 and grid % 2):
            return False
        grid //= 2
    return True


def _check_sizes(resolution, ok, rule, span=512):
    """Raises RescaleError when `ok(resolution)` fails, naming the nearest sizes that work."""
    if ok(resolution):
        return
    below = next((s for s in range(resolution - 1, 0, -1) if ok(s)), None)
    above = next((s for s in range(resolution + 1, resolution + span) if ok(s)), None)
    nearest = ", ".join(str(s) for s in (below, above) if s is not None) or "none"
    raise RescaleError(f"{rule}: resolution={resolution} does not fit. Nearest valid: {nearest}")


# Layer config keys that legitimately follow the image size (keras-hub derives them from it).
_SIZE_KEYS = {"name", "batch_shape", "batch_input_shape", "image_shape", "input_shape", "image_size",
              "input_resolution", "num_patches", "num_positions", "window_size", "shift_size", "target_shape", "height", "width", "dtype",
              "trainable"}


def _check_same_layers(old, new, resolution):
    """Refuses a rebuild whose layers differ from the original's other than in their size (a
    constructor argument its config does not keep: EfficientNet's `stackwise_nores_option`
    lives on in its blocks' `nores`, but the backbone's config drops it)."""
    old_layers, new_layers = list(all_layers(old)), list(all_layers(new))
    problem = None
    if len(old_layers) != len(new_layers):
        problem = f"{len(new_layers)} layers instead of {len(old_layers)}"
    for a, b in zip(old_layers, new_layers):
        if problem:
            break
        if isinstance(a, keras.Model):  # a nested model: its layers are compared one by one
            continue
        ca, cb = _comparable(_config(a)), _comparable(_config(b))
        differ = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
        if type(a) is not type(b) or differ:
            problem = f"layer '{a.name}' differs ({', '.join(differ) or 'its type'})"
    if problem:
        raise RescaleError(f"keras-hub backbone '{old.name}' rebuilt at resolution={resolution} from its config has "
                           f"other layers: {problem}. Its config does not keep every constructor argument "
                           "(EfficientNet's drops stackwise_nores_option), so it cannot be rebuilt the same")


def _comparable(config):
    """`config` without the keys that follow the size or name the layer, nested ones included."""
    if isinstance(config, dict):
        return {k: _comparable(v) for k, v in config.items() if k not in _SIZE_KEYS}
    if isinstance(config, (list, tuple)):
        return [_comparable(v) for v in config]
    return config


def _config(layer):
    """`layer.get_config()`, or {} where keras-hub's own is broken (Swin's LayerNormalization)."""
    try:
        return layer.get_config()
    except Exception:  # noqa: BLE001 (any error: the config cannot be compared)
        return {}


def _pooled_head_at(model, resolution, antialias):
    """A keras-hub classifier whose head needs its trained feature map (VGG): the backbone at
    `resolution`, its map average-pooled to the trained grid, then the original head (copied)."""
    backbone = backbone_at(model.backbone, resolution, antialias)
    trained = tuple(model.backbone.output.shape[1:3])
    image = keras.Input((resolution, resolution, model.backbone.input.shape[-1]), name="image")
    features = backbone(image)
    if tuple(features.shape[1:3]) != trained:
        features = adaptive_avg_pool(features, trained, name="adaptive_pool")
    head = [layer for layer in model.layers if layer is not model.backbone and layer.weights]
    if len(head) != 1:
        raise RescaleError(f"head='adaptive_pool' needs one head after the backbone of '{model.name}'")
    new_head = head[0].__class__.from_config(head[0].get_config())
    outputs = new_head(features)
    new_head.set_weights(head[0].get_weights())
    return keras.Model(image, outputs, name=f"{model.name}_adaptive_pool")


def _functional_at(model, resolution, antialias):
    """A user model around a keras-hub backbone, classifier or segmenter: its graph cloned on a
    new input, the keras-hub part replaced by its rescaled copy, every other weight copied."""
    hub = _hub()
    kinds = (hub.models.Backbone, *_tasks(hub))

    def clone(layer):
        if isinstance(layer, hub.models.Backbone):
            return backbone_at(layer, resolution, antialias)
        if isinstance(layer, _tasks(hub)):
            return task_at(layer, resolution, antialias)
        return type(layer).from_config(layer.get_config())

    image = keras.Input((resolution, resolution, model.inputs[0].shape[-1]), name=model.inputs[0].name)
    new = keras.models.clone_model(model, input_tensors=image, clone_function=clone)
    for a, b in zip(model.layers, new.layers, strict=True):
        if a.weights and not isinstance(a, kinds):
            b.set_weights(a.get_weights())
    return new


def with_converter(classifier):
    """(a functional model: the classifier after its preset's normalisation, native size) of a
    keras-hub image classifier. Its call skips its preprocessor: the sweep resizes and crops the
    images as for every model, and this model then applies the image converter's own scale and
    offset (not its resizing, which would undo the reduction); the native size is the
    converter's `image_size` (else the backbone's input size)."""
    converter = getattr(classifier.preprocessor, "image_converter", None)
    size = tuple(getattr(converter, "image_size", None) or classifier.backbone.input.shape[1:3])
    if None in size or size[0] != size[1]:
        raise RescaleError(f"keras-hub classifier '{classifier.name}' has no square image size: {size}")
    if size[0] != classifier.backbone.input.shape[1]:
        classifier = task_at(classifier, size[0])
    image = keras.Input((size[0], size[1], classifier.backbone.input.shape[-1]), name="image")
    x = image
    scale, offset = getattr(converter, "scale", None), getattr(converter, "offset", None)
    if scale is not None or offset is not None:
        x = keras.layers.Rescaling(_plain_number(scale, 1.0), _plain_number(offset, 0.0), name="image_converter")(x)
    return keras.Model(image, classifier(x), name=classifier.name), size[0]


def _plain_number(value, default):
    if value is None:
        return default
    value = np.asarray(value, np.float32)
    return float(value) if value.ndim == 0 else value.tolist()


def load_preset(name):
    """(the model, its native size) of a keras-hub image classifier preset
    (`ImageClassifier.from_preset`; downloaded on first use), as `with_converter` gives them."""
    hub = _hub()
    if hub is None:
        try:
            import keras_hub as hub
        except ImportError:
            raise ValueError(f"--hub_preset={name!r} needs keras-hub: pip install -e '.[hub]'") from None
    try:
        classifier = hub.models.ImageClassifier.from_preset(name)
    except Exception as e:  # noqa: BLE001 (keras-hub raises many kinds for a missing or unreachable preset)
        raise ValueError(f"Cannot load the keras-hub preset {name!r} (downloaded on first use; is there a "
                         f"network?): {e}") from e
    return with_converter(classifier)
