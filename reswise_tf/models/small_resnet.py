"""A small ResNet for training from scratch on CPU at 32-64 px (Fashion-MNIST, CIFAR-10).

The Keras applications ResNets are built for 224-px ImageNet: a 7x7 stride-2 stem and a max
pool shrink a 64-px image to 16x16 before the first residual stage, and ResNet50 costs
~0.3 GMACs per 64-px image, too slow to train on a CPU. `SmallResNet` is the CIFAR ResNet
layout (He et al. 2016): a 3x3 stem, stages of basic blocks (two 3x3 convolutions) whose first
block halves the size, global average pooling and one Dense layer. `ResNet18Small` is the
ResNet-18 depth (2, 2, 2, 2) at a quarter of its widths (16, 32, 64, 128) with a stride-2 stem,
so at 64 px it costs 35 MMACs per image (0.70 M parameters; ResNet50 at 64 px: 315 MMACs).

Every builder has the Keras applications keyword signature (`include_top, weights,
input_tensor, input_shape, pooling, classes, classifier_activation`) and ends in global
pooling, so `rescale` runs it at any resolution with the same weights.
"""

import keras

# Faster-adapting BatchNorm statistics than Keras' 0.99: short CPU trainings (a few hundred
# steps) would otherwise evaluate with moving averages still close to their initial values.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def SmallResNet(
    depths=(2, 2, 2, 2),
    widths=(16, 32, 64, 128),
    stem_stride=2,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="small_resnet",
):
    """Instantiates a ResNet of basic blocks (v1: convolution, BatchNorm, ReLU).

    Args:
      depths: basic blocks per stage; every stage after the first starts with stride 2.
      widths: channels of each stage (same length as `depths`).
      stem_stride: stride of the 3x3 stem convolution (1 for 32-px inputs as in the CIFAR
        ResNets, 2 to train at 64 px for the cost of 32).
      include_top: whether to end with global average pooling and the Dense classifier.
      weights: must be `None` (random initialisation): there are no pretrained weights.
      input_tensor: optional `keras.Input` (any square size, also below 32 px).
      input_shape: shape without the batch axis when `input_tensor` is not given.
        Defaults to `(None, None, 3)` (any size).
      pooling: without the top, `None` (4D feature map), `"avg"` or `"max"`.
      classes: number of classes of the classifier.
      classifier_activation: activation of the Dense layer (`"softmax"` or `None` for logits).
      name: model name.
    """
    if weights is not None:
        raise ValueError(
            f"`weights` should be None: {name} has no pretrained weights. Received weights={weights!r}"
        )
    if len(depths) != len(widths) or not depths:
        raise ValueError(
            "`depths` and `widths` should have the same non-zero length. "
            f"Received depths={depths!r}, widths={widths!r}"
        )
    if stem_stride not in (1, 2):
        raise ValueError(f"`stem_stride` should be 1 or 2. Received stem_stride={stem_stride!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` should be None, 'avg' or 'max'. Received pooling={pooling!r}")
    if input_tensor is not None and input_shape is not None:
        raise ValueError(
            "Pass at most one of `input_tensor` and `input_shape`. "
            f"Received input_shape={input_shape!r} with an input_tensor"
        )
    if input_tensor is None:
        image = keras.Input(shape=input_shape or (None, None, 3))
    else:
        image = input_tensor

    x = _conv_bn(image, widths[0], 3, stem_stride, name="stem")
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (depth, width) in enumerate(zip(depths, widths), start=1):
        for block in range(1, depth + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(x, width, stride, name=f"stage{stage}_block{block}")

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = keras.utils.get_source_inputs(image) if input_tensor is not None else image
    return keras.Model(inputs, x, name=name)


def ResNet18Small(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet18_small",
):
    """ResNet-18 depths (2, 2, 2, 2) at quarter widths (16, 32, 64, 128), stride-2 3x3 stem.

    Meant for 64-px training (e.g. Fashion-MNIST upsampled from 28 px) and evaluation down to
    a few pixels; 11 weighted convolutions + 3 projection shortcuts, 0.70 M parameters.
    """
    return SmallResNet(
        depths=(2, 2, 2, 2),
        widths=(16, 32, 64, 128),
        stem_stride=2,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


def _conv_bn(x, filters, kernel_size, stride, name):
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(
        momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=f"{name}_bn"
    )(x)


def _basic_block(x, filters, stride, name):
    """Two 3x3 convolutions plus the input (a 1x1 projection when the shape changes)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, name=f"{name}_proj")
    x = _conv_bn(x, filters, 3, stride, name=f"{name}_1")
    x = keras.layers.ReLU(name=f"{name}_1_relu")(x)
    x = _conv_bn(x, filters, 3, 1, name=f"{name}_2")
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)
