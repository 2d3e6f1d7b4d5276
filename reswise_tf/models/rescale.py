"""Rebuilding a trained classifier at another input resolution, weights unchanged.

A CNN that ends in global pooling has no weight whose shape depends on the input size, so the
same weights serve any resolution. `rescale` builds the same layers for the new input size and
copies every weight; at the original size its outputs are exactly the original model's.
"""

import keras

from reswise_tf.models.inspect import RescaleError, all_layers, classifier_activation, input_resolution
from reswise_tf.models.registry import get_arch
from reswise_tf.utils.checks import check_resolution

__all__ = ["RescaleError", "copy_weights", "input_resolution", "rescale"]

# Layers whose output size grows with the input: a Dense after them fixes the resolution.
_SIZE_BOUND_LAYERS = (keras.layers.Flatten, keras.layers.Reshape)


def rescale(model, resolution, arch=None):
    """Returns `model` rebuilt for `resolution` x `resolution` inputs with all weights copied.

    Args:
      model: a trained Keras functional classifier with one image input (NHWC).
      resolution: new input height and width in pixels.
      arch: optional `ArchSpec` or registry name. When given, the model is rebuilt with the
        architecture's own builder (which may place shape-dependent layers differently, as
        NASNet's cropping does); otherwise the functional graph is cloned onto a new input.

    Returns:
      A new `keras.Model`; the original is not modified.

    Raises:
      RescaleError: the model has no global pooling before its classifier (a Flatten or
        Reshape fixes the input size), or the weights do not fit at this resolution (the message
        names the first layer that differs and the smallest valid size where it is known).
    """
    spec = get_arch(arch) if arch is not None else None
    min_resolution = spec.min_resolution if spec else 1
    check_resolution(
        resolution, min_resolution, arg="resolution", arch=spec.name if spec else None
    )
    _check_global_pooling(model)
    channels = model.inputs[0].shape[-1]
    if spec is not None:
        new = spec.build(
            resolution,
            classes=model.outputs[0].shape[-1],
            channels=channels,
            classifier_activation=classifier_activation(model),
        )
    else:
        new = _clone_at(model, resolution)
    copy_weights(model, new, resolution=resolution, min_resolution=min_resolution)
    return new


def _clone_at(model, resolution):
    """Clones a functional graph onto a new input; nested sub-models that take the image at the
    same size are cloned at the new size too (their weights are copied with the outer model's)."""
    native = input_resolution(model)
    channels = model.inputs[0].shape[-1]

    def clone_layer(layer):
        if isinstance(layer, keras.Model) and len(layer.inputs[0].shape) == 4:
            if input_resolution(layer) == native:
                return _clone_at(layer, resolution)
        return layer.__class__.from_config(layer.get_config())

    image = keras.Input((resolution, resolution, channels), name="image")
    try:
        return keras.models.clone_model(
            model,
            input_tensors=keras.tree.pack_sequence_as(model.input, [image]),
            clone_function=clone_layer,
        )
    except ValueError as e:
        raise RescaleError(f"Model '{model.name}' cannot be built at resolution={resolution}: {e}") from e


def copy_weights(source, target, *, resolution=None, min_resolution=None):
    """Copies the weights of `source` into `target`, layer by layer, after checking that both
    have the same weighted layers (class, and the shape of every weight) in the same order."""
    src = [layer for layer in source.layers if layer.weights]
    dst = [layer for layer in target.layers if layer.weights]
    hint = f" The smallest valid resolution is {min_resolution}." if min_resolution else ""
    at = f" at resolution={resolution}" if resolution is not None else ""
    for a, b in zip(src, dst):
        shapes_a = [tuple(w.shape) for w in a.weights]
        shapes_b = [tuple(w.shape) for w in b.weights]
        if type(a) is not type(b) or shapes_a != shapes_b:
            raise RescaleError(
                f"The weights of model '{source.name}' do not fit its architecture{at}: layer "
                f"'{a.name}' ({type(a).__name__}, weights {shapes_a}) meets layer '{b.name}' "
                f"({type(b).__name__}, weights {shapes_b}).{hint}"
            )
    if len(src) != len(dst):
        raise RescaleError(
            f"The weights of model '{source.name}' do not fit its architecture{at}: "
            f"{len(src)} weighted layers against {len(dst)}.{hint}"
        )
    for a, b in zip(src, dst):
        b.set_weights(a.get_weights())


def _check_global_pooling(model):
    for layer in all_layers(model):
        if isinstance(layer, _SIZE_BOUND_LAYERS):
            raise RescaleError(
                f"Model '{model.name}' has no global pooling before its classifier: layer "
                f"'{layer.name}' ({type(layer).__name__}) ties the classifier's weights to the "
                f"input size, so the model cannot run at another resolution"
            )
