"""Exact analytic MAC/FLOP counting for Keras 3 models.

`count_macs()` / `count_flops()` / `count_macs_by_layer()` count exactly, from the layer
configurations and the input/output shapes of every call of every layer in a functional (or
`Sequential`) model. Only the multiply-accumulates (MACs) of convolutions and dense layers are
counted; FLOPs are defined as `2 x MACs` (papers count MACs and often call them FLOPs).

The tests cross-check the count with TensorFlow's own profiler (`tests/profiler_flops.py`, what
the `keras-flops` package reports): its Conv/MatMul float ops equal `2 x count_macs()` exactly;
its total is slightly larger (it also counts bias adds, batch-norm arithmetic, residual
additions, pooling, softmax). Measured (Keras 3.15, TF 2.21): `count_flops()` reproduces the
FLOPs-drop percentages of keras.applications ResNet50/101 reported by a 2023 thesis to within
0.01 points; the profiler's total does not (ResNet50 at 210x210: 3.904% ours, 3.921% profiler,
3.90% thesis).

Example:

```python
model = keras.applications.ResNet50(weights=None)  # 224x224, include_top
count_macs(model)         # 3_857_973_248 MACs (3.858 GMACs)
count_flops(model)        # 7_715_946_496 FLOPs
count_macs(model, resolution=160)  # MACs at 160x160, without rebuilding
```
"""

import math
import warnings

import keras

from reswise_tf.cost import attention, graph_ops

__all__ = ["count_flops", "count_macs", "count_macs_by_layer"]

# Checked in this order: no class below is a subclass of another one in
# Keras 3, but the separable/depthwise tests must not be shadowed by a
# generic convolution test should that ever change.
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DENSE = (keras.layers.Dense,)


# ---------------------------------------------------------------------------
# Analytic count
# ---------------------------------------------------------------------------


def count_macs(model, resolution=None):
    """Counts the multiply-accumulates (MACs) of one forward pass of a model.

    The count is exact and analytic: it is derived from the layer
    configurations and the actual input/output shapes of every call of every
    layer in the model's graph. Every call counts (a layer or sub-model called
    twice counts twice), nested functional/`Sequential` sub-models are
    counted recursively. The batch dimension is excluded: the result is the
    cost **per example** (per image).

    Only the following layers are counted, since elementwise operations,
    batch normalization, activations, pooling, padding and bias additions are
    negligible next to them:

    * `Conv1D`, `Conv2D`, `Conv3D`:
      `prod(out_spatial) * out_channels * prod(kernel_size)
      * in_channels / groups` MACs.
    * `DepthwiseConv1D`, `DepthwiseConv2D`:
      `prod(out_spatial) * in_channels * depth_multiplier
      * prod(kernel_size)` MACs.
    * `SeparableConv1D`, `SeparableConv2D`: the depthwise part as above plus
      the pointwise part
      `prod(out_spatial) * in_channels * depth_multiplier * filters` MACs.
    * `Dense`: `prod(input_shape[1:-1]) * input_units * units` MACs.
    * `EinsumDense`: the product of the sizes of its equation's letters.
    * `MultiHeadAttention`: the query/key/value and output projections and
      the two attention products QK^T and attention x V (quadratic in the
      number of tokens), see `attention.mha_macs`.

    Bias additions are not counted. Other layers that own a `kernel`
    variable (e.g. `Conv2DTranspose`) are not counted and trigger a warning.

    Args:
        model: A built Keras 3 functional `keras.Model` or `keras.Sequential`
            (subclassed models have no inspectable graph and are rejected).
        resolution: Optional int or `(height, width)` tuple. If given, the
            count is done as if the model's (single, rank-4) image input had
            this spatial size instead of the one it was built with; shapes
            are propagated through the graph with `compute_output_spec()`.
            Works for models built with an undefined `(None, None, C)` input
            and, as long as every layer accepts the new shape (e.g. global
            pooling before `Dense`; a `Flatten` + `Dense` head raises), for
            models built at another resolution, which gives the same count
            as rebuilding them at `resolution`. Defaults to `None` (use the
            model's own input shapes).

    Returns:
        The number of MACs per example, as a Python `int`.

    Raises:
        ValueError: if `model` is not a functional/`Sequential` model, or if
            a counted layer has an undefined (`None`) dimension that the
            count needs (the error names the layer and echoes the shape).
    """
    return sum(count_macs_by_layer(model, resolution=resolution).values())


def count_flops(model, resolution=None):
    """Counts the FLOPs of one forward pass of a model, per example.

    FLOPs are defined as **2 x multiply-accumulates (MACs)**: one multiply
    and one add per MAC. Only `Conv1D`/`Conv2D`/`Conv3D`,
    `DepthwiseConv1D`/`DepthwiseConv2D`, `SeparableConv1D`/`SeparableConv2D`
    and `Dense` layers are counted; elementwise operations, batch
    normalization, bias additions and pooling are negligible and ignored.
    See `count_macs()` for the exact formulas and arguments.

    Args:
        model: A built functional `keras.Model` or `keras.Sequential`.
        resolution: Optional int or `(height, width)`; see `count_macs()`.

    Returns:
        `2 * count_macs(model, resolution)` FLOPs per example, as an `int`.
    """
    return 2 * count_macs(model, resolution=resolution)


def count_macs_by_layer(model, resolution=None):
    """Counts the MACs of each counted layer of a model, per example.

    Same counting rules as `count_macs()`, which is the sum of this
    dictionary's values. A layer called several times gets the sum over its
    calls. Layers of nested sub-models are keyed by their path, e.g.
    `"outer_block/conv"`, so that equally named layers in different
    sub-models do not collide.

    Args:
        model: A built functional `keras.Model` or `keras.Sequential`.
        resolution: Optional int or `(height, width)`; see `count_macs()`.

    Returns:
        A dict mapping layer names (paths for nested layers) to `int` MACs,
        in graph order. Only counted layer types (convolutions and `Dense`)
        appear.
    """
    functional = _as_functional(model, "model")
    inputs = list(functional.inputs)
    if resolution is not None:
        inputs = [
            keras.KerasTensor(shape=_with_resolution(x.shape, resolution), dtype=x.dtype)
            for x in _single_image_input(functional, resolution)
        ]
    counts = {}
    _walk(functional, inputs, prefix="", counts=counts)
    return counts


def _as_functional(model, what):
    """Returns the `Functional` graph that implements `model`."""
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(
                f"`{what}` is a Sequential model ('{model.name}') that has no "
                "defined input shape yet. Build it with an `keras.Input` or "
                "`model.build(input_shape)` before counting. "
                f"Received: {what}={model}"
            )
        return functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(
            f"`{what}` must be a functional `keras.Model` or a "
            "`keras.Sequential` model (subclassed models have no graph to "
            f"inspect). Received: {what}={model!r} of type "
            f"{type(model).__name__}"
        )
    return model


def _single_image_input(functional, resolution):
    if len(functional.inputs) != 1 or len(functional.inputs[0].shape) != 4:
        raise ValueError(
            "`resolution` can only be used with models that have a single "
            "rank-4 image input. Received: resolution="
            f"{resolution!r} for a model with input shapes "
            f"{[tuple(x.shape) for x in functional.inputs]}"
        )
    return functional.inputs


def _resolution_hw(resolution):
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        hw = (resolution, resolution)
    else:
        try:
            hw = tuple(int(v) for v in resolution)
        except (TypeError, ValueError):
            hw = ()
    if len(hw) != 2 or min(hw) <= 0:
        raise ValueError(
            "`resolution` must be a positive int or a (height, width) tuple "
            f"of positive ints. Received: resolution={resolution!r}"
        )
    return hw


def _with_resolution(shape, resolution):
    """Replaces the spatial dims of a rank-4 image shape."""
    h, w = _resolution_hw(resolution)
    shape = list(shape)
    if keras.config.image_data_format() == "channels_first":
        shape[2:4] = [h, w]
    else:
        shape[1:3] = [h, w]
    return tuple(shape)


def _is_model(op):
    return isinstance(op, keras.Sequential) or (isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth"))


def _walk(functional, inputs, prefix, counts):
    """Propagates `inputs` specs through `functional`'s graph, counting MACs.

    Mirrors `Functional._run_through_graph()`: nodes are visited in
    topological order (decreasing depth). When the inputs of a node have the
    shapes recorded at graph construction, the recorded outputs are reused;
    otherwise (e.g. `resolution` given) the outputs are recomputed with
    `compute_output_spec()`. Returns the flat list of output specs.
    """
    tensor_dict = {id(x): y for x, y in zip(functional.inputs, inputs)}
    nodes_by_depth = functional._nodes_by_depth
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input:
                continue
            if any(id(x) not in tensor_dict for x in node.input_tensors):
                continue  # Not computable from `inputs` (as Keras does).
            args, kwargs = node.arguments.fill_in(tensor_dict)
            in_specs = [x for x in keras.tree.flatten((args, kwargs)) if isinstance(x, keras.KerasTensor)]
            name = prefix + op.name
            if _is_model(op):
                inner = _as_functional(op, f"layer '{name}'")
                outputs = _walk(inner, in_specs, name + "/", counts)
            elif _is_traced(op):
                outputs = _count_traced(op, name, args, kwargs, counts)
            else:
                same = len(in_specs) == len(node.input_tensors) and all(
                    tuple(a.shape) == tuple(b.shape) for a, b in zip(in_specs, node.input_tensors)
                )
                if same:
                    outputs = list(node.outputs)
                else:
                    outputs = keras.tree.flatten(op.compute_output_spec(*args, **kwargs))
                macs = _layer_macs(op, name, in_specs, outputs, args, kwargs)
                if macs is not None:
                    counts[name] = counts.get(name, 0) + macs
            for x, y in zip(node.outputs, outputs):
                tensor_dict[id(x)] = y
    return [tensor_dict[id(x)] for x in functional.outputs]


COUNTED = (*_SEPARABLE, *_DEPTHWISE, *_CONV, *_DENSE, keras.layers.EinsumDense, keras.layers.MultiHeadAttention)
# Keras layers with products but no rule of their own: counted from their traced graph.
_TRACED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
           keras.layers.Attention, keras.layers.AdditiveAttention)


def _is_traced(op):
    """A layer counted from its traced graph (`graph_ops`): a custom layer (not Keras' own:
    keras_hub's blocks, a user's subclassed layer), or a Keras layer of `_TRACED`."""
    if not isinstance(op, keras.layers.Layer) or isinstance(op, COUNTED) or _is_model(op):
        return False
    return isinstance(op, _TRACED) or not type(op).__module__.startswith("keras.")


def _count_traced(op, name, args, kwargs, counts):
    """Counts the MACs of `op` from its traced graph; returns its output specs."""
    macs, outputs = graph_ops.graph_macs(op.call, args, kwargs)
    if macs:
        counts[name] = counts.get(name, 0) + macs
    elif any(v.name == "kernel" for v in op.weights):
        warnings.warn(f"Layer '{name}' ({type(op).__name__}) has a kernel but computes no product or convolution "
                      "that can be counted: its MACs are 0 here", stacklevel=4)
    return outputs


def _dims(layer_name, shape, axes, what):
    """Returns `shape[axes]` as ints; raises if any of them is `None`."""
    dims = [shape[a] for a in axes]
    if any(d is None for d in dims):
        raise ValueError(
            f"Cannot count the MACs of layer '{layer_name}': its {what} has "
            f"an undefined (None) dimension that the count needs. Received: "
            f"{what} shape={tuple(shape)}. Build the model with a fully "
            "defined input shape, e.g. `keras.Input((224, 224, 3))`, or pass "
            "`resolution=`."
        )
    return dims


def _conv_dims(layer, name, in_shape, out_shape):
    """Returns (out_spatial_size, in_channels, out_channels) of a conv."""
    rank = len(out_shape)
    if layer.data_format == "channels_first":
        spatial, channel = list(range(2, rank)), 1
    else:
        spatial, channel = list(range(1, rank - 1)), rank - 1
    out_spatial = math.prod(_dims(name, out_shape, spatial, "output"))
    (in_c,) = _dims(name, in_shape, [channel], "input")
    (out_c,) = _dims(name, out_shape, [channel], "output")
    return out_spatial, in_c, out_c


def _layer_macs(layer, name, in_specs, out_specs, args=(), kwargs=None):
    """MACs of one call of `layer`, or `None` if the layer is not counted."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _attention_macs(layer, name, args, kwargs or {})
    if isinstance(layer, keras.layers.EinsumDense):
        shape = tuple(in_specs[0].shape)
        _dims(name, shape, range(1, len(shape)), "input")
        return attention.einsum_dense_macs(layer, shape)
    if isinstance(layer, (*_SEPARABLE, *_DEPTHWISE, *_CONV, *_DENSE)):
        in_shape, out_shape = tuple(in_specs[0].shape), tuple(out_specs[0].shape)
    if isinstance(layer, _SEPARABLE):
        out_spatial, in_c, out_c = _conv_dims(layer, name, in_shape, out_shape)
        mid_c = in_c * layer.depth_multiplier
        k = math.prod(layer.kernel_size)
        return out_spatial * mid_c * k + out_spatial * mid_c * out_c
    if isinstance(layer, _DEPTHWISE):
        out_spatial, in_c, _ = _conv_dims(layer, name, in_shape, out_shape)
        k = math.prod(layer.kernel_size)
        return out_spatial * in_c * layer.depth_multiplier * k
    if isinstance(layer, _CONV):
        out_spatial, in_c, out_c = _conv_dims(layer, name, in_shape, out_shape)
        k = math.prod(layer.kernel_size)
        return out_spatial * out_c * k * in_c // layer.groups
    if isinstance(layer, _DENSE):
        rows = math.prod(_dims(name, in_shape, range(1, len(in_shape)), "input")[:-1])
        if layer.built and layer.kernel.shape[0] != in_shape[-1]:
            raise ValueError(
                f"Layer '{name}' (Dense) has a kernel for {layer.kernel.shape[0]} input units but would be called on "
                f"an input of shape {in_shape}: the requested `resolution` is incompatible with the model. "
                f"Received: input shape={in_shape}"
            )
        return rows * in_shape[-1] * layer.units
    if isinstance(layer, keras.layers.Layer) and any(v.name == "kernel" for v in layer.weights):
        warnings.warn(
            f"Layer '{name}' of type {type(layer).__name__} has a kernel but "
            "its MACs are not counted: only Conv1D/2D/3D, DepthwiseConv1D/2D, "
            "SeparableConv1D/2D and Dense layers (and functional/Sequential "
            "sub-models) are.",
            stacklevel=4,
        )
    return None


def _attention_macs(layer, name, args, kwargs):
    """MACs of one MultiHeadAttention call (projections and both attention products)."""
    given = dict(zip(("query", "value", "key"), args))
    given.update({k: v for k, v in kwargs.items() if k in ("query", "value", "key")})
    shapes = {k: tuple(v.shape) for k, v in given.items() if v is not None}
    for what, shape in shapes.items():
        _dims(name, shape, range(1, len(shape)), what)
    return attention.mha_macs(layer, shapes["query"], shapes["value"], shapes.get("key"))["total"]
