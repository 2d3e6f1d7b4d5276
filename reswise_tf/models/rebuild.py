"""Rebuilding a trained Keras image classifier at another input resolution, weights copied exactly.

`rebuild(model, S)` re-runs the model's functional graph on a new `keras.Input((S, S, C))` with
a fresh copy of every layer (`from_config`), calls each one on the new feature maps and copies
its weights after checking that their shapes did not change. A weight whose shape depends on the
input size (a `Dense` after a `Flatten` of a feature map, as in VGG) is refused, naming the layer;
a `Reshape` or `Flatten` after global pooling (squeeze-excite, MobileNet's head) is fine.

What Keras' own builders decide from the feature-map size is redone for the new size, so that
the result equals the builder's model at S with the same weights:

* `imagenet_utils.correct_pad` paddings (the `ZeroPadding2D` before a stride-2 'valid' conv or
  pool in MobileNetV2/V3, EfficientNet and NASNet) are recomputed from the parity of the map they
  pad. They are recognised by Keras' layer names, confirmed by their value at the trained size and
  by their consumer; MobileNet (v1) pads by a fixed ((0, 1), (0, 1)), which equals correct_pad at
  every even size, so values alone cannot tell them apart.
* NASNet's `_adjust_block` builds a reduction branch only where the previous cell's output `p`
  is wider than the cell input; where both are 1 px at S the builder would build another block.
* Nested models (a transfer-learning base, ConvNeXt's `Sequential` stem and downsampling blocks)
  are rebuilt on inputs of the new size: `from_config` would rebuild them at the trained size.

Only channels-last models with one rank-4 image input are handled.
"""

import re

import keras

from reswise_tf.models import vit
from reswise_tf.models.adaptive_pool import pool_to_trained_size
from reswise_tf.models.inspect import RescaleError, all_layers
from reswise_tf.utils.checks import check_resolution

__all__ = ["HEADS", "correct_pad", "rebuild"]

HEADS = (None, "adaptive_pool")

# Layers whose output size is fixed: the model would resize the reduced input back.
_FIXED_SIZE_LAYERS = (keras.layers.Resizing, keras.layers.CenterCrop, keras.layers.RandomCrop)
_SIZE_BOUND_LAYERS = (keras.layers.Flatten, keras.layers.Reshape)

# The ZeroPadding2D layers that Keras' builders size with `imagenet_utils.correct_pad`.
_CORRECT_PAD_NAME = re.compile(
    r"stem_conv_pad|block\d+[a-z]_dwconv_pad"  # EfficientNet
    r"|block_\d+_pad"  # MobileNetV2
    r"|expanded_conv(_\d+)?_depthwise_pad"  # MobileNetV3
    r"|separable_conv_1_pad_.+|reduction_pad_1_.+"  # NASNet
)
_STRIDED = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
_NASNET_ADJUST = re.compile(r"adjust_relu_1_(.+)")


class SizeDependentError(RescaleError):
    """The model's layers depend on the input size: it cannot be built once for every size."""


def rebuild(model, resolution, head=None, antialias=True):
    """Returns `model` rebuilt for `resolution` x `resolution` inputs with all weights copied.

    Args:
      model: a functional (or Sequential) Keras classifier with one NHWC image input, e.g. one
        loaded with `keras.models.load_model(path, safe_mode=True)`; nested sub-models allowed.
      resolution: new input height and width in pixels; None builds one model that runs at every
        size, when the graph allows it (else `SizeDependentError`): each correct_pad padding and
        the stride-2 convolution it feeds become one 'same' convolution (TensorFlow's 'same' is
        what correct_pad emulates: bitwise the same outputs, tested).
      head: `None`, or `"adaptive_pool"` to pool every feature map that a `Flatten`/`Reshape`
        flattens to the size it had in the trained model (torchvision's `AdaptiveAvgPool2d`), so
        that a Flatten + Dense head (VGG) keeps its weights. Nothing is inserted where the map
        already has its trained size, so the trained resolution stays bitwise exact.
      antialias: how a ViT's position table is resampled (`resample.resample_pos_embed`):
        True, timm's default, or False (plain bicubic).

    Returns:
      A new `keras.Model`; `model` is not modified. At the trained resolution its outputs equal
      the model's bitwise.

    Raises:
      RescaleError (a ValueError) naming the layer: a layer that resizes or crops to a fixed
      size, a weight whose shape would change at `resolution`, or a layer that cannot run there.
    """
    if head not in HEADS:
        raise ValueError(f"`head` should be one of {HEADS}. Received head={head!r}")
    any_size = resolution is None
    if not any_size:
        check_resolution(resolution)
    if any_size and head is not None:
        raise SizeDependentError(f"Model '{model.name}' with head={head!r} pools to its trained grid: one size at a time")
    functional = _functional(model)
    if len(functional.inputs) != 1 or len(functional.inputs[0].shape) != 4:
        shapes = [tuple(x.shape) for x in functional.inputs]
        raise RescaleError(f"Model '{model.name}' should have one image input (batch, height, "
                           f"width, channels). Received input shapes {shapes}")
    trained = tuple(functional.inputs[0].shape[1:3])
    segmenter = len(functional.outputs[0].shape) == 4
    _refuse_fixed_size_layers(model, trained if segmenter else None)
    channels = functional.inputs[0].shape[-1]
    name = functional.inputs[0]._keras_history.operation.name
    image = keras.Input((resolution, resolution, channels), name=name)
    context = {"resolution": resolution, "head": head, "antialias": antialias, "input_sized": trained if segmenter else None}
    outputs = _run_graph(functional, [image], context)
    return keras.Model(image, outputs[0] if len(outputs) == 1 else outputs, name=model.name)


def _functional(model):
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            raise RescaleError(f"Sequential model '{model.name}' has no input shape: build it first")
        return model._functional
    if not hasattr(model, "_nodes_by_depth"):
        raise RescaleError(f"Model '{model.name}' ({type(model).__name__}) is not a functional "
                           "or Sequential model: a subclassed model has no graph to rebuild")
    return model


def _refuse_fixed_size_layers(model, input_size=None):
    """Refuses a layer that resizes to a fixed size; a segmenter's `Resizing` to its own input
    size (`input_size`: it brings the class map back to the image) is re-derived instead."""
    for layer in all_layers(model):
        if input_size is not None and isinstance(layer, keras.layers.Resizing) and \
                (layer.height, layer.width) == tuple(input_size):
            continue
        if isinstance(layer, _FIXED_SIZE_LAYERS):
            raise RescaleError(
                f"Model '{model.name}' has layer '{layer.name}' ({type(layer).__name__}), whose "
                f"output size is fixed ({layer.height}x{layer.width}): it would resize the reduced "
                "input back and undo the reduction. Remove it from the model before rebuilding"
            )


def _run_graph(functional, inputs, context):
    """Calls a fresh copy of every operation of `functional` on `inputs` in graph order and
    copies the weights. Returns the new output tensors (flat list)."""
    tensors = {id(x): y for x, y in zip(functional.inputs, inputs)}
    nodes = [node for depth in sorted(functional._nodes_by_depth, reverse=True)
             for node in functional._nodes_by_depth[depth] if not node.is_input]
    consumers = {}
    for node in nodes:
        for x in node.input_tensors:
            consumers.setdefault(id(x), []).append(node.operation)
    fresh, in_shapes = {}, {}
    for node in nodes:
        args, kwargs = node.arguments.fill_in(tensors)
        new_inputs = [x for x in keras.tree.flatten((args, kwargs)) if isinstance(x, keras.KerasTensor)]
        in_shapes.setdefault(node.operation.name, [tuple(x.shape) for x in new_inputs])
        if id(node.operation) not in fresh:
            fresh[id(node.operation)] = _fresh_copy(node, new_inputs, consumers, context)
        outputs = _call(fresh[id(node.operation)], node, args, kwargs, context)
        for x, y in zip(node.outputs, keras.tree.flatten(outputs)):
            tensors[id(x)] = y
    _check_nasnet_adjust(in_shapes, context)
    return [tensors[id(x)] for x in functional.outputs]


def _call(new, node, args, kwargs, context):
    """Calls the fresh copy `new` of `node.operation` on the new tensors; on its first call,
    copies the weights of the original into it."""
    op = node.operation
    first = not new._inbound_nodes if isinstance(new, keras.layers.Layer) else False
    if context["head"] == "adaptive_pool" and isinstance(op, _SIZE_BOUND_LAYERS):
        args = (pool_to_trained_size(args[0], node.input_tensors[0], op.name), *args[1:])
    try:
        outputs = new(*args, **kwargs)
    except Exception as e:
        shapes = [tuple(x.shape) for x in keras.tree.flatten(args) if isinstance(x, keras.KerasTensor)]
        raise RescaleError(
            f"Layer '{op.name}' ({type(op).__name__}) cannot run at resolution="
            f"{context['resolution']} (input shapes {shapes}): {e}"
        ) from e
    if first and not isinstance(op, keras.Model):
        _copy_weights(op, new, node, context)
    return outputs


def _fresh_copy(node, new_inputs, consumers, context):
    """A new instance of `node.operation` for the new inputs: a nested model is rebuilt on an
    input of the new size, a correct_pad padding gets the padding of the new map, anything else
    is made from its config (an operation that cannot be is reused: it has no weights)."""
    op = node.operation
    if isinstance(op, keras.Model):
        return _rebuild_nested(op, new_inputs, context)
    if not isinstance(op, keras.layers.Layer):
        try:
            return type(op).from_config(op.get_config())
        except Exception:
            return op
    config = op.get_config()
    kernel = _correct_pad_kernel(op, node, consumers)
    if kernel is not None and context["resolution"] is None:
        return _fused_padding(op, node, consumers, context)
    if kernel is not None:
        config["padding"] = correct_pad(new_inputs[0].shape, kernel)
    if context["resolution"] is None and _fed_by_correct_pad(node, context):
        config["padding"] = "same"
    if context["resolution"] is None and (vit.is_patch_embedding(op) or vit.is_position_table(op)
                                          or _NASNET_ADJUST.fullmatch(op.name)):
        raise SizeDependentError(f"Layer '{op.name}' depends on the input size: one size at a time")
    if vit.is_patch_embedding(op):
        for side in new_inputs[0].shape[1:3]:
            vit.check_size(side, op.kernel_size[0], what="resolution")
    if vit.is_position_table(op):
        config["input_dim"] = new_inputs[0].shape[1]  # one row per token at the new size
    if context.get("input_sized") and isinstance(op, keras.layers.Resizing) and \
            (op.height, op.width) == tuple(context["input_sized"]):
        if context["resolution"] is None:
            raise SizeDependentError(f"Layer '{op.name}' resizes to the input size: one size at a time")
        config["height"] = config["width"] = context["resolution"]  # a segmenter's map back to its image
    return type(op).from_config(config)


def _fused_padding(op, node, consumers, context):
    """For a model of every size: a correct_pad padding is dropped and its consumers (stride-2
    'valid' convolutions) pad 'same' instead; a pooling consumer cannot (it would not see zeros)."""
    for consumer in consumers.get(id(node.outputs[0]), []):
        if not isinstance(consumer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
            raise SizeDependentError(f"Layer '{op.name}' pads for a {type(consumer).__name__}: one size at a time")
    context.setdefault("fused", set()).add(op.name)
    return keras.layers.Identity(name=op.name)


def _fed_by_correct_pad(node, context):
    """Whether `node`'s input is the output of a correct_pad padding of this graph (fused)."""
    if not node.input_tensors:
        return False
    producer = node.input_tensors[0]._keras_history.operation
    return isinstance(producer, keras.layers.ZeroPadding2D) and bool(_CORRECT_PAD_NAME.fullmatch(producer.name)) \
        and producer.name in context.setdefault("fused", set())


def _rebuild_nested(model, new_inputs, context):
    """Rebuilds a nested functional or Sequential model for the shape of its new input."""
    if len(new_inputs) != 1 or len(_functional(model).inputs) != 1:
        raise RescaleError(f"Nested model '{model.name}' should take one tensor input")
    shape, dtype = new_inputs[0].shape[1:], new_inputs[0].dtype
    image = keras.Input(shape, dtype=dtype)
    outputs = _run_graph(_functional(model), [image], context)
    if isinstance(model, keras.Sequential):
        layers = [out._keras_history.operation for out in _chain(outputs[0], image)]
        return keras.Sequential([keras.Input(shape, dtype=dtype), *layers], name=model.name)
    return keras.Model(image, outputs[0] if len(outputs) == 1 else outputs, name=model.name)


def _chain(output, image):
    """The tensors of a single-path graph from `image` (excluded) to `output`, in order."""
    chain = []
    while output is not image:
        chain.append(output)
        output = output._keras_history.operation._inbound_nodes[0].input_tensors[0]
    return chain[::-1]


def correct_pad(shape, kernel_size):
    """`keras.applications.imagenet_utils.correct_pad` for an NHWC shape: the ZeroPadding2D
    padding that Keras' builders put before a stride-2 'valid' convolution."""
    height, width = shape[1:3]
    adjust = (1, 1) if height is None else (1 - height % 2, 1 - width % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def _correct_pad_kernel(layer, node, consumers):
    """The kernel size of the stride-2 'valid' layers that a correct_pad `ZeroPadding2D` feeds,
    or None for any other layer (fixed paddings are kept as they are)."""
    if not isinstance(layer, keras.layers.ZeroPadding2D) or not _CORRECT_PAD_NAME.fullmatch(layer.name):
        return None
    kernels = set()
    for op in consumers.get(id(node.outputs[0]), []):
        if not isinstance(op, _STRIDED) or tuple(op.strides) != (2, 2) or op.padding != "valid":
            return None
        kernels.add(tuple(getattr(op, "kernel_size", None) or op.pool_size))
    if len(kernels) != 1:
        return None
    (kernel,) = kernels
    trained = correct_pad(node.input_tensors[0].shape, kernel)
    return kernel if tuple(map(tuple, layer.padding)) == trained else None


def _copy_weights(old, new, node, context):
    """Copies the weights of `old` into its fresh copy `new`, which was built at the new size
    (a ViT's position table is resampled to the new patch grid)."""
    trained = [tuple(w.shape) for w in old.weights]
    now = [tuple(w.shape) for w in new.weights]
    if vit.is_position_table(old) and trained != now:
        new.set_weights([vit.resampled_table(old, now[0][0], antialias=context["antialias"])])
        return
    if trained != now:
        culprit = _upstream_size_bound(node)
        if culprit is not None:
            raise RescaleError(
                f"The model has no global pooling before its classifier: the weights of layer '{old.name}' "
                f"({type(old).__name__}) take layer '{culprit.name}' ({type(culprit).__name__}) of a feature map "
                f"whose size depends on the input (trained shapes {trained}, at resolution={context['resolution']} "
                f"{now}). Pass --head=adaptive_pool (head='adaptive_pool') to pool that map to its trained size"
            )
        raise RescaleError(
            f"The weights of layer '{old.name}' ({type(old).__name__}) depend on the input size: "
            f"trained shapes {trained}, at resolution={context['resolution']} {now}"
        )
    new.set_weights(old.get_weights())


def _upstream_size_bound(node, hops=8):
    """The Flatten/Reshape of a spatial feature map shortly before `node`, if any."""
    for _ in range(hops):
        if not node.input_tensors:
            return None
        history = node.input_tensors[0]._keras_history
        op = history.operation
        if isinstance(op, _SIZE_BOUND_LAYERS) and len(op._inbound_nodes[0].input_tensors[0].shape) == 4:
            return op
        node = op._inbound_nodes[history.node_index]
    return None


def _check_nasnet_adjust(in_shapes, context):
    """NASNet's `_adjust_block(p, ip)` builds its reduction branch (weights `adjust_conv_1/2_*`)
    only if `p` and `ip` differ in width, else a projection block or nothing."""
    for name, shapes in in_shapes.items():
        match = _NASNET_ADJUST.fullmatch(name)
        if not match:
            continue
        block = match.group(1)
        cell = in_shapes.get(f"normal_conv_1_{block}") or in_shapes.get(f"reduction_conv_1_{block}")
        if cell and shapes[0][2] == cell[0][2]:
            raise RescaleError(
                f"At resolution={context['resolution']} the inputs of NASNet cell '{block}' are "
                f"both {shapes[0][2]} px wide: Keras' NASNet builder would replace its reduction "
                f"branch (layer '{name}' and the adjust_conv_*_{block} weights) by another block, "
                "so the trained weights do not fit. Use a larger resolution"
            )


