"""Multiply-accumulates of attention: `EinsumDense` calls and `keras.layers.MultiHeadAttention`.

Per example (batch excluded); biases, softmax, scaling, LayerNorm and GELU are not counted, as
for the convolutions of `flops.py`:

* `einsum_macs(equation, *shapes)`: a contraction costs the product of the sizes of all its
  distinct index letters (each output element is a sum over the contracted letters), e.g.
  "btd,dhk->bthk" costs T*D*H*K. Batch axes given as `None` count as 1.
* `einsum_dense_macs(layer, input_shape)`: an `EinsumDense` call, its equation on (input, kernel).
* `mha_macs(layer, query_shape, value_shape, key_shape=None)`: one MultiHeadAttention call =
  the query/key/value projections and the output projection (EinsumDense layers), plus QK^T and
  attention x V, each `heads * T_query * T_key * head_dim`: the two terms quadratic in the
  number of tokens. ViT-B/16 at 224 px (197 tokens) is 17.56 GMACs with its patch embedding,
  MLPs and head; at 160 px (101 tokens) 8.83 (checked in tests/cost).

TensorFlow's profiler does not count the two attention products (they stay `Einsum` ops, which
it scores 0): it under-counts ViT-B/16 by 4 % at 224 px, ViT-Ti by 14 %.
"""

import math
import string

__all__ = ["einsum_dense_macs", "einsum_macs", "einsum_output_shape", "mha_macs"]


def _parse(equation, shapes):
    """Returns (input letter strings, output letters, {letter: size}) with '...' expanded."""
    equation = equation.replace(" ", "")
    if "->" not in equation:
        raise ValueError(f"Only explicit einsum equations ('...->...') are supported. Received {equation!r}")
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"Equation {equation!r} has {len(terms)} operands, received {len(shapes)} shapes")
    used = set(equation)
    spare = [c for c in string.ascii_letters if c not in used]
    ranks = [len(shape) - (len(term) - 3) for term, shape in zip(terms, shapes) if "..." in term]
    ell = "".join(spare[: max(ranks, default=0)])  # '...' dims, right-aligned (broadcasting)
    expanded = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            term = term.replace("...", ell[len(ell) - n:] if n > 0 else "")
        expanded.append(term)
    out = out.replace("...", ell)
    sizes = {}
    for term, shape in zip(expanded, shapes):
        if len(term) != len(shape):
            raise ValueError(f"Operand {term!r} of {equation!r} does not match shape {tuple(shape)}")
        for letter, dim in zip(term, shape):
            dim = 1 if dim is None else int(dim)
            old = sizes.get(letter)
            if old is not None and old != dim and 1 not in (old, dim):
                raise ValueError(f"Letter {letter!r} of {equation!r} has sizes {old} and {dim}")
            sizes[letter] = max(dim, old or 1)
    return expanded, out, sizes


def einsum_macs(equation, *shapes):
    """MACs of `einsum(equation, *operands)` for operands of the given shapes.

    The product of the sizes of all distinct letters (after '...' expansion). `None` dims
    (batch) count as 1, so shapes with a `None` batch give the per-example cost.
    """
    _, _, sizes = _parse(equation, shapes)
    return math.prod(sizes.values())


def einsum_output_shape(equation, *shapes):
    """Output shape of `einsum(equation, *operands)` from the operand shapes."""
    _, out, sizes = _parse(equation, shapes)
    return tuple(sizes[c] for c in out)


def _einsum_dense_output(layer, input_shape):
    # Not layer.compute_output_shape: it echoes the `output_shape` given at construction,
    # whose free (None) axes stay None.
    return einsum_output_shape(layer.equation, _batch1(input_shape), tuple(layer.kernel.shape))


def einsum_dense_macs(layer, input_shape):
    """MACs of one `keras.layers.EinsumDense` call on an input of `input_shape` (batch
    `None` or 1 for per example): `einsum_macs(layer.equation, input_shape, kernel_shape)`."""
    kernel_shape = tuple(layer.kernel.shape)
    return einsum_macs(layer.equation, _batch1(input_shape), kernel_shape)


def mha_macs(layer, query_shape, value_shape, key_shape=None):
    """MACs of one `keras.layers.MultiHeadAttention` call, per example, by part.

    Uses the layer's own projection layers and einsum equations, so any `attention_axes`,
    `key_dim`, `value_dim` and `output_shape` are handled. The layer must be built.

    Returns:
      dict with "query", "key", "value", "output" (projections), "scores" (QK^T) and
      "context" (attention x V) MACs, and "total".
    """
    key_shape = value_shape if key_shape is None else key_shape
    if not layer.built:
        raise ValueError(f"MultiHeadAttention layer '{layer.name}' must be built to count its MACs")
    q_shape, k_shape, v_shape = (_batch1(s) for s in (query_shape, key_shape, value_shape))
    q_proj = _einsum_dense_output(layer._query_dense, q_shape)
    k_proj = _einsum_dense_output(layer._key_dense, k_shape)
    v_proj = _einsum_dense_output(layer._value_dense, v_shape)
    parts = {
        "query": einsum_dense_macs(layer._query_dense, q_shape),
        "key": einsum_dense_macs(layer._key_dense, k_shape),
        "value": einsum_dense_macs(layer._value_dense, v_shape),
    }
    # scores = einsum(dot_product_equation, key, query); context = einsum(combine, scores, value)
    parts["scores"] = einsum_macs(layer._dot_product_equation, k_proj, q_proj)
    scores_shape = einsum_output_shape(layer._dot_product_equation, k_proj, q_proj)
    parts["context"] = einsum_macs(layer._combine_equation, scores_shape, v_proj)
    context_shape = einsum_output_shape(layer._combine_equation, scores_shape, v_proj)
    parts["output"] = einsum_dense_macs(layer._output_dense, context_shape)
    parts["total"] = sum(parts.values())
    return parts


def _batch1(shape):
    shape = tuple(shape)
    return (1, *shape[1:]) if shape and shape[0] is None else shape
