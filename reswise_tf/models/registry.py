"""The architecture registry: every fact about an architecture, declared once.

Each `ArchSpec` names a builder with the Keras applications keyword signature, the resolution its
weights were trained at, the smallest input size whose weights still fit the same layer
structure, the `preprocess_input` mode and the crop fraction used for ImageNet-size data. Users
add their own with `register_arch`.
"""

import dataclasses
from collections.abc import Callable

import keras

from reswise_tf.data.preprocessing import check_crop_pct, check_preprocess
from reswise_tf.data.source import TASKS
from reswise_tf.models import unet, vit
from reswise_tf.models.small_resnet import ResNet18Small
from reswise_tf.utils.checks import check_choice, check_multiple, check_resolution


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Metadata of one architecture (the analogue of timm's pretrained config).

    Attributes:
      name: registry key, e.g. `"resnet50"`.
      builder: builder with the Keras applications keyword signature (`include_top, weights,
        input_tensor, input_shape, pooling, classes, classifier_activation`).
      native_resolution: input size (pixels, square) its weights were trained at.
      min_resolution: smallest input size at which the same layers (and so the same weights)
        exist. Measured: ResNets and MobileNetV2 have no lower limit above 1 px; NASNetMobile
        changes its reduction cells below 19 px.
      preprocess: `preprocess_input` mode, one of `data.preprocessing.PREPROCESS_MODES`.
      crop_pct: fraction of the resized image kept by the centre crop for ImageNet-size data.
      fixed_head: its classifier takes a flattened feature map (VGG), so other sizes need
        `head="adaptive_pool"` (the map pooled to its trained grid).
      aliases: other names it is registered under (the names of earlier versions).
      size_multiple: sizes must be multiples of this (a U-Net's total stride), 1 for any size.
      task: "classification" or "segmentation" (per-pixel classes: its output is a class map).
    """

    name: str
    builder: Callable[..., keras.Model]
    native_resolution: int = 224
    min_resolution: int = 1
    preprocess: str = "caffe"
    crop_pct: float = 0.875
    fixed_head: bool = False
    aliases: tuple = ()
    size_multiple: int = 1
    task: str = "classification"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`name` should be a non-empty string. Received name={self.name!r}")
        if not callable(self.builder):
            raise ValueError(f"`builder` should be callable. Received builder={self.builder!r}")
        check_resolution(self.native_resolution, arg="native_resolution")
        check_resolution(self.min_resolution, arg="min_resolution")
        if self.min_resolution > self.native_resolution:
            raise ValueError(
                f"`min_resolution` should be at most native_resolution={self.native_resolution}. "
                f"Received min_resolution={self.min_resolution}"
            )
        check_preprocess(self.preprocess)
        check_crop_pct(self.crop_pct)
        check_choice(self.task, TASKS, "task")

    def check(self, resolution, arg="resolution"):
        """Raises ValueError unless the architecture runs at `resolution` with its weights: at
        least its smallest size, and a multiple of its `size_multiple`."""
        check_resolution(resolution, self.min_resolution, arg=arg, arch=self.name)
        if self.size_multiple > 1:
            check_multiple(resolution, self.size_multiple, arg, f"the total stride of '{self.name}'")
        return resolution

    def build(self, resolution, *, weights=None, classes=1000, channels=3, classifier_activation="softmax"):
        """Builds the architecture for `resolution` x `resolution` inputs.

        The input is given as `input_tensor=keras.Input(...)`, which (unlike `input_shape`)
        also accepts sizes below Keras' 32-pixel floor.

        Args:
          resolution: input height and width in pixels.
          weights: `None` (random) or `"imagenet"` (downloads; only at the native size).
          classes: number of output classes.
          channels: input channels.
          classifier_activation: activation of the last Dense layer.
        """
        self.check(resolution)
        if weights not in (None, "imagenet"):
            raise ValueError(
                f"`weights` should be None or 'imagenet' for ArchSpec.build. Received weights={weights!r}"
            )
        image = keras.Input((resolution, resolution, channels), name="image")
        model = self.builder(
            include_top=True,
            weights=weights,
            input_tensor=image,
            classes=classes,
            classifier_activation=classifier_activation,
        )
        # Keras lists an `input_tensor` input as `[image]`; a single input avoids structure
        # warnings on every call and matches models built with `input_shape`.
        return keras.Model(image, model.output, name=model.name)


ARCHITECTURES = {}  # name -> ArchSpec (each spec once, under its own name)
ALIASES = {}  # alias -> name


def register_arch(spec, *, replace=False):
    """Adds `spec` (an `ArchSpec`) to the registry under `spec.name` and its aliases; returns it.

    A name already registered is refused unless `replace=True`.
    """
    if not isinstance(spec, ArchSpec):
        raise ValueError(f"`spec` should be an ArchSpec. Received spec={spec!r}")
    for name in (spec.name, *spec.aliases):
        if (name in ARCHITECTURES or name in ALIASES) and not replace:
            raise ValueError(f"Architecture {name!r} is already registered; pass replace=True to replace it")
    ARCHITECTURES[spec.name] = spec
    ALIASES.update({alias: spec.name for alias in spec.aliases})
    return spec


def unregister_arch(name):
    """Removes the architecture registered as `name` (e.g. one a test registered)."""
    spec = get_arch(name)
    del ARCHITECTURES[spec.name]
    for alias in spec.aliases:
        ALIASES.pop(alias, None)


def arch_names():
    """Every name an architecture can be asked for (names and aliases), sorted."""
    return sorted([*ARCHITECTURES, *ALIASES])


def get_arch(name):
    """Returns the `ArchSpec` registered as `name` (or an alias); the error lists the names."""
    if isinstance(name, ArchSpec):
        return name
    try:
        return ARCHITECTURES[ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown architecture {name!r}. Available: {', '.join(arch_names())}") from None


def _keras(constructor, native=224, min_resolution=1, preprocess="caffe", crop_pct=0.875, **kw):
    """The spec of `keras.applications.<constructor>`, registered under its name in lower case."""
    return ArchSpec(constructor.lower(), getattr(keras.applications, constructor), native, min_resolution, preprocess,
                    crop_pct, **kw)


def _vit(name, builder, **kw):
    """The spec of one of our ViTs: native size and patch (its smallest size) from `models.vit`."""
    return ArchSpec(name, builder, builder.native_size, builder.patch_size, preprocess="tf", **kw)


# Every keras.applications constructor. native: the `default_size` of its builder (Keras 3.15
# source); preprocess: what its module's `preprocess_input` does ("none": the model has its own
# Rescaling/Normalization layers); crop_pct: timm's evaluation crop for the same weights
# (0.875 where timm's cfg keeps its default; EfficientNetV2 S/M/L are evaluated uncropped);
# min_resolution: measured, the smallest size at which the builder builds the same weight shapes
# (one below: a feature map reaches zero, or NASNet's reduction cells change). VGG's convolutions
# run down to 32 px but its Flatten + Dense head only at 224 (`fixed_head`).
for _spec in (
    _keras("ConvNeXtTiny", min_resolution=32, preprocess="none"),
    _keras("ConvNeXtSmall", min_resolution=32, preprocess="none"),
    _keras("ConvNeXtBase", min_resolution=32, preprocess="none"),
    _keras("ConvNeXtLarge", min_resolution=32, preprocess="none"),
    _keras("ConvNeXtXLarge", min_resolution=32, preprocess="none"),
    _keras("DenseNet121", min_resolution=29, preprocess="torch"),
    _keras("DenseNet169", min_resolution=29, preprocess="torch"),
    _keras("DenseNet201", min_resolution=29, preprocess="torch"),
    _keras("EfficientNetB0", preprocess="none"),
    _keras("EfficientNetB1", 240, preprocess="none", crop_pct=0.882),
    _keras("EfficientNetB2", 260, preprocess="none", crop_pct=0.890),
    _keras("EfficientNetB3", 300, preprocess="none", crop_pct=0.904),
    _keras("EfficientNetB4", 380, preprocess="none", crop_pct=0.922),
    _keras("EfficientNetB5", 456, preprocess="none", crop_pct=0.934),
    _keras("EfficientNetB6", 528, preprocess="none", crop_pct=0.942),
    _keras("EfficientNetB7", 600, preprocess="none", crop_pct=0.949),
    _keras("EfficientNetV2B0", preprocess="none"),
    _keras("EfficientNetV2B1", 240, preprocess="none", crop_pct=0.882),
    _keras("EfficientNetV2B2", 260, preprocess="none", crop_pct=0.890),
    _keras("EfficientNetV2B3", 300, preprocess="none", crop_pct=0.904),
    _keras("EfficientNetV2S", 384, preprocess="none", crop_pct=1.0),
    _keras("EfficientNetV2M", 480, preprocess="none", crop_pct=1.0),
    _keras("EfficientNetV2L", 480, preprocess="none", crop_pct=1.0),
    _keras("InceptionResNetV2", 299, min_resolution=75, preprocess="tf", crop_pct=0.8975),
    _keras("InceptionV3", 299, min_resolution=75, preprocess="tf"),
    _keras("MobileNet", min_resolution=31, preprocess="tf"),
    _keras("MobileNetV2", preprocess="tf", aliases=("mobilenet_v2",)),
    _keras("MobileNetV3Large", min_resolution=32, preprocess="none"),
    _keras("MobileNetV3Small", min_resolution=32, preprocess="none"),
    _keras("NASNetLarge", 331, min_resolution=19, preprocess="tf", crop_pct=0.911),
    _keras("NASNetMobile", min_resolution=19, preprocess="tf", aliases=("nasnet",)),
    _keras("ResNet50"),
    _keras("ResNet101"),
    _keras("ResNet152"),
    _keras("ResNet50V2", preprocess="tf"),
    _keras("ResNet101V2", preprocess="tf"),
    _keras("ResNet152V2", preprocess="tf"),
    _keras("VGG16", min_resolution=32, fixed_head=True),
    _keras("VGG19", min_resolution=32, fixed_head=True),
    _keras("Xception", 299, min_resolution=7, preprocess="tf", crop_pct=0.8975),
    # Vision Transformers (ours, standard Keras layers; timm's ViT-Ti/S/B layout, evaluated as
    # timm's augreg weights: [-1, 1] inputs, crop 0.9). Sizes are multiples of the patch.
    _vit("vit_ti16", vit.ViTTi16, crop_pct=0.9),
    _vit("vit_s16", vit.ViTS16, crop_pct=0.9),
    _vit("vit_b16", vit.ViTB16, crop_pct=0.9),
    # Ours, for training from scratch on CPU at 32-64 px; no ImageNet weights exist.
    ArchSpec("resnet18_small", ResNet18Small, native_resolution=64, preprocess="tf"),
    _vit("vit_small_p8", vit.ViTSmallP8),
    # Ours: a small U-Net for the segmentation study (per-pixel classes; sizes multiples of 8).
    ArchSpec("unet_small", unet.UNetSmall, native_resolution=64, min_resolution=unet.total_stride(), preprocess="tf",
             size_multiple=unet.total_stride(), task="segmentation"),
):
    register_arch(_spec)


# The resolutions the thesis tried: ImageNet models (native 224) and CIFAR-10 models (native 32).
THESIS_RESOLUTIONS = {
    224: (224, 210, 196, 182, 168, 154, 140),
    32: (32, 28, 24, 20, 16, 12),
}


def default_resolutions(native_resolution, min_resolution=1, multiple=1):
    """The thesis's sweep for a 224- or 32-px model, else the native size with 7/8, 3/4, 5/8
    and 1/2 of it (e.g. 64 -> 64, 56, 48, 40, 32); sizes below `min_resolution` left out; with
    a `multiple` (a total stride), each rounded to its nearest multiple."""
    if native_resolution in THESIS_RESOLUTIONS and multiple == 1:
        sizes = THESIS_RESOLUTIONS[native_resolution]
    else:
        fractions = (1, 7 / 8, 3 / 4, 5 / 8, 1 / 2)
        sizes = {max(multiple, multiple * round(native_resolution * f / multiple)) for f in fractions}
    return sorted((r for r in sizes if r >= min_resolution), reverse=True)
