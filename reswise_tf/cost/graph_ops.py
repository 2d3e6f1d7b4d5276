"""MACs of a custom layer (keras_hub's blocks, a user's subclassed layer), counted where the
products happen: its `call` is traced by TensorFlow at batch size 1, and every matrix product
and convolution of the traced graph is counted from its operands' shapes.

Layer-call counting sees only the layers a custom layer calls; attention written as
`ops.matmul(q, k.T)` or `q @ k` inside the layer (Swin's windowed attention, SegFormer's
spatial-reduction attention, MobileNetV5's multi-query attention) would be missed. The graph
sees every one: `MatMul` (m x n x k), `BatchMatMul` (batch x m x n x k), `Einsum` (the product
of the sizes of its distinct letters, `attention.einsum_macs`), `Conv2D`/`Conv3D` (output
elements x kernel size x input channels per group; a dilated one by its real output, not the
padded blocks TensorFlow lowers it to), `DepthwiseConv2dNative` (output elements x kernel size)
and `Conv2DBackpropInput` (a transposed convolution: input elements x kernel size x output
channels). Bias adds, normalisation, activations, softmax and resizing (bilinear upsampling:
about 4 multiply-adds per output element, not counted) are not counted, as for the other layers.
"""

import math

import keras
import tensorflow as tf

from reswise_tf.cost import attention

_BATCH_MATMUL = ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_CONV = ("Conv2D", "Conv3D")


def graph_macs(fn, args, kwargs):
    """(MACs per example, output specs) of calling `fn(*args, **kwargs)`, where the tensors
    among `args` and `kwargs` are `keras.KerasTensor` specs (a `None` batch counts as 1). The
    output specs are the traced graph's (every size defined but the batch, which is `None`)."""
    flat = keras.tree.flatten((args, kwargs))
    where = [i for i, x in enumerate(flat) if isinstance(x, keras.KerasTensor)]
    specs = [tf.TensorSpec([1 if d is None else d for d in flat[i].shape], flat[i].dtype) for i in where]

    def call(*tensors):
        values = list(flat)
        for i, t in zip(where, tensors):
            values[i] = t
        a, k = keras.tree.pack_sequence_as((args, kwargs), values)
        return fn(*a, **k)

    concrete = tf.function(call).get_concrete_function(*specs)
    outputs = [keras.KerasTensor((None, *o.shape[1:]), dtype=o.dtype.name)
               for o in keras.tree.flatten(concrete.structured_outputs)]
    return sum(op_macs(op) for op in concrete.graph.get_operations()), outputs


def op_macs(op):
    """MACs of one TensorFlow op (0 for ops that are not products or convolutions)."""
    kind = op.type
    if kind == "MatMul":
        a, b = (x.shape.as_list() for x in op.inputs)
        m = a[1] if op.get_attr("transpose_a") else a[0]
        k = a[0] if op.get_attr("transpose_a") else a[1]
        n = b[0] if op.get_attr("transpose_b") else b[1]
        return m * n * k
    if kind in _BATCH_MATMUL:
        a = op.inputs[0].shape.as_list()
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return math.prod(op.outputs[0].shape.as_list()) * k
    if kind == "Einsum":
        equation = op.get_attr("equation").decode()
        return attention.einsum_macs(equation, *(tuple(x.shape.as_list()) for x in op.inputs))
    if kind in _CONV:
        kernel = op.inputs[1].shape.as_list()
        return math.prod(_conv_output(op)) * math.prod(kernel[:-1])
    if kind == "DepthwiseConv2dNative":
        kernel = op.inputs[1].shape.as_list()
        return math.prod(_conv_output(op)) * kernel[0] * kernel[1]
    if kind == "Conv2DBackpropInput":  # a transposed convolution: every input pixel times the kernel
        kernel, grad = op.inputs[1].shape.as_list(), op.inputs[2].shape.as_list()
        return math.prod(grad) * math.prod(kernel[:-1])
    return 0


def _conv_output(op):
    """The output shape a convolution computes: a dilated one is lowered to SpaceToBatchND ->
    convolution -> BatchToSpaceND, whose blocks are padded to a multiple of the rate; its real
    output is the BatchToSpaceND's (counting the padded blocks would overcount up to 8x)."""
    consumers = op.outputs[0].consumers()
    if len(consumers) == 1 and consumers[0].type == "BatchToSpaceND":
        return consumers[0].outputs[0].shape.as_list()
    return op.outputs[0].shape.as_list()
