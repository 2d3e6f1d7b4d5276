"""A model computing in another precision, weights unchanged: every layer gets the Keras dtype
policy of the precision (mixed: bfloat16/float16 compute, float32 variables), except the layer
that makes the output, kept in float32 so that the softmax and the top-k probabilities are
float32 (as the Keras mixed-precision guide advises). Its input takes the compute dtype, so the
input pipeline can cast early and the first layer does not cast again."""

import contextlib

import keras

from reswise_tf.runtime.precision import compute_dtype, policy_name


@contextlib.contextmanager
def precision_scope(precision):
    """Layers created inside compute in `precision` (Keras' global dtype policy, restored after)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def model_precision(model):
    """The precision `model` computes in: the compute dtype of its first layer with weights."""
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.Model):
            return str(layer.compute_dtype)
        if isinstance(layer, keras.Model):
            return model_precision(layer)
    return "float32"


def with_precision(model, precision):
    """`model` rebuilt to compute in `precision` (`runtime.precision.PRECISIONS`), every weight
    copied; `model` itself when it already does (a float32 model at "float32")."""
    policy = policy_name(precision)
    if _all_policies(model) == {policy} or (precision == "float32" and _all_policies(model) <= {"float32"}):
        return model
    last = model.outputs[0]._keras_history.operation

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32" if layer is last else policy
        return type(layer).from_config(config)

    shape = model.inputs[0].shape[1:]
    image = keras.Input(shape, dtype=compute_dtype(precision), name=model.inputs[0].name)
    new = keras.models.clone_model(model, input_tensors=image, clone_function=clone, recursive=True)
    new.set_weights(model.get_weights())
    return new


def _all_policies(model):
    found = set()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found |= _all_policies(layer)
        elif not isinstance(layer, keras.layers.InputLayer) and layer is not model.outputs[0]._keras_history.operation:
            found.add(layer.dtype_policy.name)
    return found
