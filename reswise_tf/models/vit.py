"""Vision Transformers (ViT, Dosovitskiy et al. 2021) built from standard Keras 3 layers.

Layout as in timm's `VisionTransformer` / big_vision (the "augreg" ViTs): a `patch_size` x
`patch_size` stride-`patch_size` convolution embeds the patches, a learned class token is
prepended, a learned absolute position embedding (one row per token, class token first) is
added, then `depth` pre-norm blocks

    x = x + MHA(LN(x), LN(x));   x = x + Dense(width)(GELU(Dense(mlp_dim)(LN(x))))

(LayerNormalization epsilon 1e-6, exact erf GELU, biases everywhere as timm's `qkv_bias=True`),
a final LayerNormalization and, with the top, a Dense head on the class token.

Free weights from standard layers
---------------------------------
The class token and the position table are weights that are no layer's output. Both are
`keras.layers.Embedding` layers looked up with integer index tensors that the graph makes from
the patch tokens with `keras.ops` (`zeros_like`, `ones_like`, `cumsum`, slicing):

    cls = Embedding(1, C, name="cls_token")(zeros_like(tokens[:, :1, 0], int32))   # (B, 1, C)
    x   = Concatenate(axis=1)([cls, tokens])                                       # (B, N+1, C)
    ids = cumsum(ones_like(x[:, :, 0], int32), axis=1) - 1                         # 0 .. N
    x   = Add()([x, Embedding(N + 1, C, name="pos_embed")(ids)])

Keras 3 records `keras.ops` calls on KerasTensors as graph nodes (`GetItem`, `ZerosLike`,
`OnesLike`, `Cumsum`, `Subtract`, module `keras.src.ops.numpy`) that serialize and deserialize
with `safe_mode=True` (checked in a fresh process, see `test_vit.py`). The `Embedding` tables
are exactly timm's `cls_token` (1, 1, C) and `pos_embed` (1, N+1, C) without the leading 1,
and the index tensors carry no size: the only size-dependent config is `pos_embed.input_dim`.
Rejected alternatives (tried while this module was written): a `Dense` called on a constant array runs
eagerly while the graph is built, so its output is frozen into the config as a constant and its
weights are not weights of the model (silently untrainable, unsaved); a `Dense` on
`zeros_like(...)` works (output = bias) but carries a dead kernel; `Lambda` layers are refused
by `safe_mode=True`; a custom layer fails the "loads without our module" requirement.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from reswise_tf.models.resample import resample_pos_embed
from reswise_tf.utils.checks import check_multiple

__all__ = ["VisionTransformer", "ViTTi16", "ViTS16", "ViTB16", "ViTSmallP8", "CONFIGS"]

LAYER_NORM_EPSILON = 1e-6

# name: (patch_size, width, depth, heads, mlp_dim, native size).
CONFIGS = {
    "vit_tiny_patch16_224": (16, 192, 12, 3, 768, 224),
    "vit_small_patch16_224": (16, 384, 12, 6, 1536, 224),
    "vit_base_patch16_224": (16, 768, 12, 12, 3072, 224),
    # For training from scratch on a CPU at 64 px: 64 patches of 8x8 and the class token, 6 blocks
    # of width 96 (3 heads, MLP 192): 35 MMACs per image, as much as resnet18_small at 64 px.
    "vit_small_patch8_64": (8, 96, 6, 3, 192, 64),
}

# Names the rebuild relies on (`rebuild.py`): the patch embedding and the position table.
PATCH_EMBED = "patch_embed"
CLS_TOKEN = "cls_token"
POS_EMBED = "pos_embed"
NUM_PREFIX_TOKENS = 1  # the class token, the first row of the position table


def is_patch_embedding(layer):
    """Whether `layer` is a ViT patch embedding (a Conv2D named `patch_embed` with kernel =
    stride and no padding)."""
    return (isinstance(layer, layers.Conv2D) and layer.name == PATCH_EMBED
            and tuple(layer.kernel_size) == tuple(layer.strides) and layer.padding == "valid")


def is_position_table(layer):
    """Whether `layer` is a ViT position table (the Embedding named `pos_embed`)."""
    return isinstance(layer, layers.Embedding) and layer.name == POS_EMBED


def resampled_table(layer, rows, antialias=True):
    """The position table of `layer` (an `is_position_table` Embedding) resampled to `rows` rows
    (the class token and a square grid), as timm's `resample_abs_pos_embed` does."""
    table = np.asarray(keras.ops.convert_to_numpy(layer.embeddings))
    return resample_pos_embed(table, grid_side(rows), num_prefix_tokens=NUM_PREFIX_TOKENS, antialias=antialias)


def grid_side(rows):
    """The side of the square patch grid of a position table with `rows` rows."""
    side = math.isqrt(rows - NUM_PREFIX_TOKENS)
    if side * side != rows - NUM_PREFIX_TOKENS:
        raise ValueError(f"A position table of {rows} rows is not a square grid plus the class token")
    return side


def VisionTransformer(
    patch_size,
    width,
    depth,
    heads,
    mlp_dim,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vit",
    default_size=224,
):
    """Instantiates a Vision Transformer with a class token and learned position embeddings.

    Args:
      patch_size: side of the square patches (the stride of the patch embedding).
      width: token dimension (hidden size).
      depth: number of transformer blocks.
      heads: attention heads; `width` must be a multiple of `heads`.
      mlp_dim: hidden units of each block's MLP (4 x width in the standard ViTs).
      include_top: whether to end with the Dense classifier on the class token.
      weights: must be `None` (random initialisation): there are no pretrained weights.
      input_tensor: optional `keras.Input` with a defined square-or-not spatial size.
      input_shape: `(height, width, channels)` when `input_tensor` is not given; both sides
        must be defined multiples of `patch_size`. Defaults to
        `(default_size, default_size, 3)`.
      pooling: without the top: `None` (the final-normed tokens, `(B, N + 1, width)`, class
        token first), `"token"` (the class token), `"avg"` (mean of the patch tokens, class
        token excluded, as timm's `global_pool="avg"`) or `"max"`.
      classes: number of classes of the classifier.
      classifier_activation: activation of the head (`"softmax"`, or `None` for logits).
      name: model name.
      default_size: input side when neither `input_tensor` nor `input_shape` is given.
    """
    if weights is not None:
        raise ValueError(
            f"`weights` should be None: {name} has no pretrained weights. Received weights={weights!r}"
        )
    if pooling not in (None, "token", "avg", "max"):
        raise ValueError(
            f"`pooling` should be None, 'token', 'avg' or 'max'. Received pooling={pooling!r}"
        )
    if width % heads:
        raise ValueError(
            f"`width` should be a multiple of `heads`. Received width={width}, heads={heads}"
        )
    if input_tensor is not None and input_shape is not None:
        raise ValueError(
            "Pass at most one of `input_tensor` and `input_shape`. "
            f"Received input_shape={input_shape!r} with an input_tensor"
        )
    if input_tensor is None:
        image = keras.Input(shape=tuple(input_shape or (default_size, default_size, 3)))
    else:
        image = input_tensor
    shape = tuple(image.shape)
    if len(shape) != 4:
        raise ValueError(
            f"Expected an image input of shape (batch, height, width, channels). Received {shape}"
        )
    for side, what in ((shape[1], "height"), (shape[2], "width")):
        check_size(side, patch_size, what=what)
    grid_h, grid_w = shape[1] // patch_size, shape[2] // patch_size

    tokens = layers.Conv2D(
        width, patch_size, strides=patch_size, padding="valid", name=PATCH_EMBED
    )(image)
    tokens = layers.Reshape((-1, width), name="patch_flatten")(tokens)  # (B, N, C), row-major
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    cls = layers.Embedding(1, width, embeddings_initializer=init, name=CLS_TOKEN)(
        ops.zeros_like(tokens[:, :1, 0], dtype="int32")
    )
    x = layers.Concatenate(axis=1, name="prepend_cls")([cls, tokens])
    positions = ops.cumsum(ops.ones_like(x[:, :, 0], dtype="int32"), axis=1) - 1
    pos = layers.Embedding(grid_h * grid_w + 1, width, embeddings_initializer=init, name=POS_EMBED)(
        positions
    )
    x = layers.Add(name="add_pos")([x, pos])

    for i in range(depth):
        x = _block(x, width, heads, mlp_dim, name=f"block{i}")
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)

    if include_top or pooling == "token":
        x = x[:, 0]
    elif pooling == "avg":
        x = layers.GlobalAveragePooling1D(name="avg_pool")(x[:, 1:])
    elif pooling == "max":
        x = layers.GlobalMaxPooling1D(name="max_pool")(x[:, 1:])
    if include_top:
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)

    inputs = keras.utils.get_source_inputs(image) if input_tensor is not None else image
    return keras.Model(inputs, x, name=name)


def _block(x, width, heads, mlp_dim, name):
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_ln1")(x)
    y = layers.MultiHeadAttention(heads, width // heads, name=f"{name}_attn")(y, y)
    x = layers.Add(name=f"{name}_add1")([x, y])
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_ln2")(x)
    y = layers.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp_fc1")(y)
    y = layers.Dense(width, name=f"{name}_mlp_fc2")(y)
    return layers.Add(name=f"{name}_add2")([x, y])


def check_size(size, patch_size, what="resolution"):
    """Raises ValueError unless `size` is a positive multiple of `patch_size`."""
    if size is None:
        raise ValueError(
            f"A ViT needs a defined input {what} (its position table has one row per patch). "
            f"Received {what}=None"
        )
    check_multiple(size, patch_size, what, "the patch size: the patch grid must tile the image")


def _named(config_name, function_name, default_name):
    patch, width, depth, heads, mlp, native = CONFIGS[config_name]

    def builder(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=default_name,
    ):
        return VisionTransformer(
            patch, width, depth, heads, mlp,
            include_top=include_top, weights=weights, input_tensor=input_tensor,
            input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation, name=name, default_size=native,
        )

    builder.__name__ = function_name
    builder.native_size, builder.patch_size = native, patch  # read by the registry
    builder.__doc__ = (
        f"ViT {config_name}: patch {patch}, width {width}, depth {depth}, heads {heads}, "
        f"MLP {mlp}; {native} px native. Keras applications keyword signature; see "
        "`VisionTransformer` for the arguments."
    )
    return builder


ViTTi16 = _named("vit_tiny_patch16_224", "ViTTi16", "vit_ti16")
ViTS16 = _named("vit_small_patch16_224", "ViTS16", "vit_s16")
ViTB16 = _named("vit_base_patch16_224", "ViTB16", "vit_b16")
ViTSmallP8 = _named("vit_small_patch8_64", "ViTSmallP8", "vit_small_p8")
