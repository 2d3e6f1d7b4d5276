"""Analytic MAC/FLOP counting for Keras 3 models, and TF-profiler FLOPs.

Two independent ways of measuring the compute cost of a model are offered:

* `count_macs()` / `count_flops()` / `count_macs_by_layer()`: an exact
  analytic count from the layer configurations and the input/output shapes of
  every call of every layer in a functional (or `Sequential`) model.
  Only the multiply-accumulates (MACs) of convolutions and dense layers are
  counted; FLOPs are defined as `2 x MACs`.
* `profiler_flops()`: the total `float_ops` of TensorFlow's own profiler
  (`tf.compat.v1.profiler`) on the frozen inference graph of the model at
  batch size 1. This is what the `keras-flops` package reports. Unlike the
  analytic count, it also counts bias adds, batch-norm arithmetic, residual
  additions, pooling, softmax, etc. (one float op per output element), so it
  is slightly larger than `count_flops()`. Pass `op_types=MAC_OP_TYPES` to
  restrict it to convolution / matmul ops, which equals `count_flops()`
  exactly, except for grouped convolutions, which the profiler cannot see.

Measured (Keras 3.15, TF 2.21): `count_flops()` reproduces the FLOPs-drop
percentages of keras.applications ResNet50/101 (with their ImageNet top)
reported by a 2023 thesis to within 0.01 points; the profiler's total does
not (e.g. ResNet50 at 210x210: 3.904% ours, 3.921% profiler, 3.90% thesis).

Example:

```python
model = keras.applications.ResNet50(weights=None)  # 224x224, include_top
count_macs(model)         # 3_857_973_248 MACs (3.858 GMACs)
count_flops(model)        # 7_715_946_496 FLOPs
count_macs(model, resolution=160)  # MACs at 160x160, without rebuilding
profiler_flops(model)     # 7_755_299_312 FLOPs (also BN, bias, adds, ...)
profiler_flops(model, op_types=MAC_OP_TYPES)  # 7_715_946_496 FLOPs
```
"""

import contextlib
import io
import math
import re
import warnings

import keras
import tensorflow as tf

__all__ = [
    "MAC_OP_TYPES",
    "count_flops",
    "count_macs",
    "count_macs_by_layer",
    "inference_graph",
    "profiler_flops",
    "profiler_flops_by_op_type",
]

# TensorFlow op types that implement the layers counted by `count_macs()`.
# Their profiler FLOPs are exactly 2 x MACs of the corresponding layers.
MAC_OP_TYPES = (
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
)

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

    Bias additions are not counted. Other layers that own a `kernel`
    variable (e.g. `Conv2DTranspose`, `EinsumDense`) are not counted and
    trigger a warning.

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
            else:
                same = len(in_specs) == len(node.input_tensors) and all(
                    tuple(a.shape) == tuple(b.shape) for a, b in zip(in_specs, node.input_tensors)
                )
                if same:
                    outputs = list(node.outputs)
                else:
                    outputs = keras.tree.flatten(op.compute_output_spec(*args, **kwargs))
                macs = _layer_macs(op, name, in_specs, outputs)
                if macs is not None:
                    counts[name] = counts.get(name, 0) + macs
            for x, y in zip(node.outputs, outputs):
                tensor_dict[id(x)] = y
    return [tensor_dict[id(x)] for x in functional.outputs]


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


def _layer_macs(layer, name, in_specs, out_specs):
    """MACs of one call of `layer`, or `None` if the layer is not counted."""
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


# ---------------------------------------------------------------------------
# TensorFlow profiler
# ---------------------------------------------------------------------------


def inference_graph(model, resolution=None, freeze=True):
    """Traces a Keras model at batch size 1 into a `tf.Graph` for profiling.

    The model is wrapped in a `tf.function` with a fixed input signature of
    batch size 1 (called with `training=False`) and its concrete function is
    traced. With `freeze=True` (what `keras-flops` does) the variables are
    then frozen into constants with `convert_variables_to_constants_v2` and
    the resulting `GraphDef` is imported into a fresh `tf.Graph`.

    Tracing is the expensive part of `profiler_flops()`; trace once with this
    function and pass the graph to `profiler_flops()` /
    `profiler_flops_by_op_type()` to profile it several ways.

    Args:
        model: A built Keras model whose non-batch input dimensions are all
            defined, or defined by `resolution`.
        resolution: Optional int or `(height, width)` tuple giving the
            spatial size of a single rank-4 image input. The model must have
            been built with undefined spatial dimensions
            (`input_shape=(None, None, C)`) or with this very size: Keras 3
            refuses to call a model on another input shape. Defaults to
            `None` (use the model's own input shape).
        freeze: Whether to freeze the variables into constants. Freezing
            does not change the profiler's count (the profiler only needs
            static shapes; measured identical on ResNets, MobileNetV2 and
            NASNetMobile) but is slow (about 10 s for ResNet50 on 2 CPU
            cores). Defaults to `True`.

    Returns:
        A `tf.Graph`.

    Raises:
        ValueError: if an input has an undefined non-batch dimension, or
            `resolution` conflicts with the model's defined input size.
    """
    functional = _as_functional(model, "model")
    if resolution is not None:
        _single_image_input(functional, resolution)
    specs = []
    for x in functional.inputs:
        shape = tuple(x.shape)
        if resolution is not None:
            wanted = _with_resolution(shape, resolution)
            if any(s is not None and s != w for s, w in zip(shape, wanted)):
                raise ValueError(
                    f"`resolution` conflicts with the input shape {shape} of "
                    f"model '{model.name}': Keras 3 models cannot be called "
                    "on another shape than the one they were built with. "
                    "Build the model with `input_shape=(None, None, C)` or at "
                    f"this resolution. Received: resolution={resolution!r}"
                )
            shape = wanted
        shape = (1, *shape[1:])
        if any(d is None for d in shape):
            raise ValueError(
                f"Cannot trace model '{model.name}': its input '{x.name}' has "
                f"an undefined (None) non-batch dimension. Pass `resolution=` "
                f"or build it with a fully defined shape. Received: input "
                f"shape={tuple(x.shape)}"
            )
        specs.append(tf.TensorSpec(shape, x.dtype))

    single = len(specs) == 1

    @tf.function(autograph=False)
    def forward(*xs):
        return model(xs[0] if single else list(xs), training=False)

    concrete = forward.get_concrete_function(*specs)
    if not freeze:
        return concrete.graph
    # Private TF module (as used by keras-flops); only needed here.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(concrete)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph.as_graph_def(), name="")
    return graph


def _graph_of(model_or_graph, resolution, freeze):
    if isinstance(model_or_graph, tf.Graph):
        if resolution is not None:
            raise ValueError(
                f"`resolution` cannot be used with an already traced `tf.Graph`. Received: resolution={resolution!r}"
            )
        return model_or_graph
    return inference_graph(model_or_graph, resolution, freeze)


@contextlib.contextmanager
def _quiet():
    """Silences the profiler's stderr line and TF deprecation warnings."""
    from tensorflow.python.util import deprecation

    with deprecation.silence(), contextlib.redirect_stderr(io.StringIO()):
        yield


def profiler_flops(model, resolution=None, op_types=None, freeze=True):
    """FLOPs of one forward pass as counted by TensorFlow's profiler.

    The model is traced at batch size 1 and (by default) frozen, see
    `inference_graph()`, then
    `tf.compat.v1.profiler.profile(graph, options=float_operation())` is run
    on the graph, with its printed output suppressed, and its
    `total_float_ops` is returned. This reproduces the `keras-flops`
    package (`get_flops(model, batch_size=1)`), minus the 10 FLOPs it
    registers per `FusedBatchNormV3` op, which Keras 3 graphs do not have.

    Units are FLOPs as defined by TensorFlow's registered op statistics:
    2 per multiply-accumulate for `Conv2D`, `DepthwiseConv2dNative` and
    `MatMul` (so these equal `2 x count_macs()` exactly), and about 1 per
    output element for elementwise ops (`BiasAdd`, `Mul`, `AddV2`, `Sub`,
    `Rsqrt`), `MaxPool` (1 per window element), `Mean`, `Softmax`, ... Ops
    without registered statistics (`Relu`, `Relu6`, `Pad`,
    `FusedBatchNormV3`, ...) count 0. Keras 3 implements inference batch
    normalization with `Mul`/`AddV2`/`Sub`/`Rsqrt` ops, which are counted.
    The total is therefore larger than `count_flops()`: measured +0.4% to
    +0.6% for ResNet50/101/152, but +1.8% to +2.6% for MobileNetV2 and
    NASNetMobile (thin layers, many BN). `op_types=MAC_OP_TYPES` gives the
    profiler's count of convolutions and matmuls only, which equals
    `count_flops()`.

    Blind spot: Keras 3's TensorFlow backend runs grouped convolutions
    (`groups > 1`) and channels-first 3D convolutions inside a nested
    XLA-compiled `tf.function`, whose ops the profiler does not see (0
    FLOPs, even after freezing). `count_flops()` counts them.

    Args:
        model: A built Keras model, or a `tf.Graph` from `inference_graph()`
            (then `resolution` and `freeze` are not used).
        resolution: Optional int or `(height, width)`; see
            `inference_graph()`. Defaults to `None`.
        op_types: Optional sequence of TensorFlow op type names (exact
            names, e.g. `MAC_OP_TYPES`) to restrict the count to. Defaults
            to `None`: all op types (the profiler's `total_float_ops`).
        freeze: Whether to freeze the variables before profiling; see
            `inference_graph()`. Defaults to `True`.

    Returns:
        The profiler's `total_float_ops` for one example, as an `int`.
    """
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output()
    if op_types is not None:
        if isinstance(op_types, str):
            op_types = [op_types]
        op_types = list(op_types)
        if not op_types or not all(isinstance(t, str) for t in op_types):
            raise ValueError(
                "`op_types` must be None or a non-empty sequence of "
                f"TensorFlow op type names. Received: op_types={op_types!r}"
            )
        options = options.with_accounted_types([f"^{re.escape(t)}$" for t in op_types])
    graph = _graph_of(model, resolution, freeze)
    with _quiet():
        result = tf.compat.v1.profiler.profile(graph, cmd="scope", options=options.build())
    return int(result.total_float_ops)


def profiler_flops_by_op_type(model, resolution=None, freeze=False):
    """Profiler FLOPs of one forward pass, broken down by TF op type.

    Sums, per op type, TensorFlow's registered `"flops"` statistics: the
    per-op values that `tf.compat.v1.profiler` accumulates into
    `total_float_ops`. The values sum to `profiler_flops()` of the same
    graph.

    Args:
        model: A built Keras model, or a `tf.Graph` from `inference_graph()`.
        resolution: Optional int or `(height, width)`; see
            `inference_graph()`. Defaults to `None`.
        freeze: Whether to freeze the graph first; the breakdown is the
            same either way. Defaults to `False` (faster).

    Returns:
        A dict mapping TF op type names (e.g. `"Conv2D"`, `"BiasAdd"`) to
        FLOPs (`int`), largest first; op types with 0 FLOPs are omitted.
    """
    # Private TF module: the function the profiler's logger calls per op.
    from tensorflow.python.framework import ops as tf_ops

    graph = _graph_of(model, resolution, freeze)
    totals = {}
    with _quiet():
        for op in graph.get_operations():
            try:
                stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
            except ValueError:  # Incomplete shape: the profiler skips it too.
                continue
            if stats.value:
                totals[op.type] = totals.get(op.type, 0) + int(stats.value)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
