import keras
import pytest

from reswise_tf import architectures


def test_registry_names_the_thesis_architectures():
    assert set(architectures.ARCHITECTURES) == {"resnet50", "resnet101", "resnet152", "mobilenet_v2", "nasnet",
                                                "resnet18_small"}
    spec = architectures.get_arch("resnet50")
    assert (spec.native_resolution, spec.preprocess, spec.crop_pct) == (224, "caffe", 0.875)
    assert architectures.get_arch("nasnet").min_resolution == 19


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown architecture 'vgg'. Available: mobilenet_v2, nasnet, resnet101"):
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
    with pytest.raises(ValueError, match=r">= 19 for architecture 'nasnet'.*resolution=18"):
        architectures.get_arch("nasnet").build(18, classes=10)


def test_default_resolutions():
    assert architectures.default_resolutions(224) == [224, 210, 196, 182, 168, 154, 140]
    assert architectures.default_resolutions(32) == [32, 28, 24, 20, 16, 12]
    assert architectures.default_resolutions(64) == [64, 56, 48, 40, 32]


def test_builder_keyword_signature_matches_keras():
    spec = architectures.get_arch("resnet50")
    assert spec.builder is keras.applications.ResNet50
