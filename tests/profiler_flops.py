"""TensorFlow's own profiler FLOPs of a Keras model: the independent cross-check of
`reswise_tf.cost.flops.count_macs` (a test helper, not part of the product).

`profiler_flops()` is the total `float_ops` of `tf.compat.v1.profiler` on the frozen inference
graph of the model at batch size 1, what the `keras-flops` package reports. Unlike the analytic
count it also counts bias adds, batch-norm arithmetic, residual additions, pooling, softmax,
etc. (one float op per output element). `op_types=MAC_OP_TYPES` restricts it to convolution /
matmul ops, which equals `2 x count_macs()` exactly, except for grouped convolutions, which the
profiler cannot see. It uses private TensorFlow modules, as keras-flops does.
"""

import contextlib
import io
import re

import keras
import tensorflow as tf

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


def _as_functional(model):
    return getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model


def _single_image_input(functional, resolution):
    if len(functional.inputs) != 1 or len(functional.inputs[0].shape) != 4:
        raise ValueError(
            f"`resolution` needs a model with a single rank-4 image input. Received: resolution={resolution!r}"
        )


def _with_resolution(shape, resolution):
    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    shape = list(shape)
    shape[1:3] = [h, w]
    return tuple(shape)


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
    functional = _as_functional(model)
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


def graph_einsum_macs(graph):
    """MACs of the `Einsum` ops of a traced `tf.Graph` (batch 1), by equation: the profiler
    registers no FLOPs for them (Keras' dot-product attention), so `profiler_flops` misses them."""
    from reswise_tf.cost.attention import einsum_macs

    totals = {}
    for op in graph.get_operations():
        if op.type == "Einsum":
            equation = op.get_attr("equation").decode()
            shapes = [tuple(x.shape.as_list()) for x in op.inputs]
            totals[equation] = totals.get(equation, 0) + einsum_macs(equation, *shapes)
    return totals
