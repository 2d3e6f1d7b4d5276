"""Facts read off a built Keras classifier: its input size, whether it ends in a softmax, and
its layers (nested sub-models included)."""

import keras


class RescaleError(ValueError):
    """The model cannot be rebuilt at the requested resolution with the same weights."""


def input_resolution(model):
    """Returns the square spatial input size of `model` (None if undefined)."""
    shape = model.inputs[0].shape
    if len(shape) != 4:
        raise RescaleError(
            f"Expected a model with one image input of shape (batch, height, width, channels). "
            f"Received input shape {tuple(shape)} for model '{model.name}'"
        )
    height, width = shape[1], shape[2]
    if height != width:
        raise RescaleError(
            f"Only square inputs are supported. Model '{model.name}' has input size {height}x{width}"
        )
    return height


def all_layers(model):
    """Every layer of `model`, depth first, the layers of nested sub-models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def outputs_probabilities(model):
    """Whether the model's last layer already applies a softmax (else its outputs are logits)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)  # a function, or a name (keras-hub's tasks)
    return activation is not None and keras.activations.get(activation) is keras.activations.softmax


def classifier_activation(model):
    """The activation of the last layer by name: softmax, linear or sigmoid (else softmax)."""
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", None)
    return name if name in ("softmax", "linear", "sigmoid") else "softmax"


def has_batch_norm(model):
    """Whether `model` (or a sub-model) has a BatchNormalization layer."""
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model))


def is_segmenter(model):
    """Whether `model` outputs a class map (batch, height, width, classes): a segmentation model."""
    return len(model.outputs[0].shape) == 4


def total_stride(model):
    """The factor between a model's input and its smallest feature map (a U-Net's deepest
    level): sizes that are not its multiples do not fit its skip connections. 1 when unknown."""
    side = input_resolution(model)
    smallest = [layer.output.shape[1] for layer in all_layers(model)
                if hasattr(layer, "output") and not isinstance(layer, keras.Model)
                and len(getattr(layer.output, "shape", ())) == 4 and layer.output.shape[1]]
    if not side or not smallest:
        return 1
    stride = side // min(smallest)
    return stride if stride and side % stride == 0 else 1
