import inspect

import keras
import pytest

from reswise_tf.models import registry as architectures


def test_the_registry_holds_every_keras_application_under_its_lower_case_name_and_ours():
    constructors = {n: f for n, f in vars(keras.applications).items() if n[0].isupper() and callable(f)}
    assert len(constructors) == 40
    for name, constructor in constructors.items():
        assert architectures.get_arch(name.lower()).builder is constructor, name
    ours = {"resnet18_small", "unet_small", "vit_ti16", "vit_s16", "vit_b16", "vit_small_p8"}
    assert set(architectures.ARCHITECTURES) == {n.lower() for n in constructors} | ours


def test_the_thesis_names_are_aliases_and_each_architecture_has_timms_settings():
    get_arch = architectures.get_arch
    assert get_arch("nasnet") is get_arch("nasnetmobile") and get_arch("mobilenet_v2") is get_arch("mobilenetv2")
    assert get_arch("nasnet").min_resolution == 19
    facts = {n: (get_arch(n).native_resolution, get_arch(n).preprocess, get_arch(n).crop_pct)
             for n in ("inceptionv3", "xception", "nasnetlarge", "efficientnetb7", "efficientnetv2s", "convnexttiny",
                       "densenet121", "resnet50", "resnet50v2")}
    assert facts == {"inceptionv3": (299, "tf", 0.875), "xception": (299, "tf", 0.8975),
                     "nasnetlarge": (331, "tf", 0.911), "efficientnetb7": (600, "none", 0.949),
                     "efficientnetv2s": (384, "none", 1.0), "convnexttiny": (224, "none", 0.875),
                     "densenet121": (224, "torch", 0.875), "resnet50": (224, "caffe", 0.875),
                     "resnet50v2": (224, "tf", 0.875)}
    assert get_arch("vgg16").fixed_head


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown architecture 'vgg'. Available: convnextbase, .*, mobilenet_v2, .*, nasnet, nasnetlarge"):
        architectures.get_arch("vgg")


def test_builds_below_kerass_32_pixel_floor():
    model = architectures.get_arch("mobilenet_v2").build(12, classes=10)
    assert model.inputs[0].shape[1:] == (12, 12, 3)
    assert model.outputs[0].shape[-1] == 10


@pytest.mark.parametrize("bad", [0, -3, 2.5, "32", True])
def test_bad_resolution_is_named(bad):
    with pytest.raises(ValueError, match="`resolution` should be an integer >= 1"):
        architectures.get_arch("resnet50").build(bad)


def test_below_the_minimum_names_the_smallest_valid_size():
    with pytest.raises(ValueError, match=r">= 19 for architecture 'nasnetmobile'.*resolution=18"):
        architectures.get_arch("nasnet").build(18, classes=10)


def test_default_resolutions():
    assert architectures.default_resolutions(224) == [224, 210, 196, 182, 168, 154, 140]
    assert architectures.default_resolutions(32) == [32, 28, 24, 20, 16, 12]
    assert architectures.default_resolutions(64) == [64, 56, 48, 40, 32]
    # They stop at the architecture's smallest size (NASNetMobile's 19 px: 16 and 12 are below).
    assert architectures.default_resolutions(32, architectures.get_arch("nasnet").min_resolution) == [32, 28, 24, 20]


KERAS_KEYWORDS = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                  "classifier_activation")


SIGNATURE_CASES = ("convnexttiny", "densenet121", "efficientnetb0", "mobilenetv3small", "nasnetmobile", "resnet50",
                   "resnet18_small", "vgg16", "xception")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "nasnetmobile" else n
                                  for n in SIGNATURE_CASES])
def test_builder_keyword_signature_matches_keras(name):
    """Every registered builder takes the Keras applications keywords and honours them: a
    pooled feature extractor without the top, and a classifier with the top."""
    spec = architectures.get_arch(name)
    params = inspect.signature(spec.builder).parameters
    assert all(k in params for k in KERAS_KEYWORDS), sorted(set(KERAS_KEYWORDS) - set(params))
    size = max(spec.min_resolution, 75)  # every Keras builder's own input check accepts 75 (Xception: >= 71)
    features = spec.builder(include_top=False, weights=None, input_tensor=None, input_shape=(size, size, 3),
                            pooling="avg", classes=7, classifier_activation=None)
    assert len(features.outputs[0].shape) == 2
    top = spec.builder(include_top=True, weights=None, input_shape=(size, size, 3), classes=7,
                       classifier_activation="softmax")
    assert top.outputs[0].shape == (None, 7)
    assert top.layers[-1].activation is keras.activations.softmax


def test_register_arch_adds_a_user_architecture_and_refuses_a_duplicate():
    spec = architectures.ArchSpec("my_net", keras.applications.MobileNetV2, native_resolution=96, preprocess="tf")
    architectures.register_arch(spec)
    try:
        assert architectures.get_arch("my_net") is spec
        with pytest.raises(ValueError, match="already registered"):
            architectures.register_arch(spec)
    finally:
        architectures.unregister_arch("my_net")
    with pytest.raises(ValueError, match="Unknown architecture 'my_net'"):
        architectures.get_arch("my_net")
    with pytest.raises(ValueError, match="Unknown preprocess mode 'bgr'"):
        architectures.ArchSpec("x", keras.applications.MobileNetV2, preprocess="bgr")
    with pytest.raises(ValueError, match="`min_resolution` should be at most native_resolution=32"):
        architectures.ArchSpec("x", keras.applications.MobileNetV2, native_resolution=32, min_resolution=40)
