"""keras-hub's image classifier families (small random configurations built in the test: presets
need the network): every family rescaled through one rebuilder; exact at native; at a reduced
size equal to the same family built there with the same weights (position tables resampled);
MACs equal to TensorFlow's own count of the graph's products, or to a hand count for the
attention families; a `.keras` round trip; the families' size rules refused naming valid sizes.
Skipped without keras-hub (`pip install -e ".[hub]"`; scripts/setup.sh installs it)."""

import keras
import numpy as np
import pytest

from reswise_tf.cost import count_macs
from reswise_tf.models import RescaleError, rescale
from reswise_tf.models.keras_hub import POSITION_TABLES, copy_in_order
from reswise_tf.models.resample import resample_pos_embed
from tests.profiler_flops import MAC_OP_TYPES, profiler_flops

keras_hub = pytest.importorskip("keras_hub")
M = keras_hub.models
CLASSES = 3


def _backbones(size):
    """One small backbone per family (the configurations of tests: seconds each), at `size`."""
    shape = (size, size, 3)
    return {
        "cspnet": lambda: M.CSPNetBackbone(
            stem_filters=8, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1], stackwise_strides=2,
            stackwise_num_filters=[8, 16], block_type="dark_block", stage_type="csp", expand_ratio=[2.0, 1.0],
            bottle_ratio=[0.5, 1.0], block_ratio=[1.0, 0.5], down_growth=True, image_shape=shape),
        "deit": lambda: M.DeiTBackbone(image_shape=shape, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                       intermediate_dim=32),
        "densenet": lambda: M.DenseNetBackbone(stackwise_num_repeats=[1, 1], growth_rate=4, image_shape=shape),
        "efficientnet": lambda: M.EfficientNetBackbone(
            stackwise_width_coefficients=[1.0] * 3, stackwise_depth_coefficients=[1.0] * 3,
            stackwise_kernel_sizes=[3, 3, 3], stackwise_num_repeats=[1, 1, 1], stackwise_input_filters=[8, 8, 16],
            stackwise_output_filters=[8, 16, 16], stackwise_expansion_ratios=[1, 2, 2],
            stackwise_squeeze_and_excite_ratios=[0.25, 0.0, 0.25], stackwise_strides=[1, 2, 2],
            stackwise_block_types=["v1", "fused", "unfused"], num_features=32, input_shape=shape),
        "hgnetv2": lambda: M.HGNetV2Backbone(
            depths=[1, 1], embedding_size=8, hidden_sizes=[16, 32], stem_channels=[3, 8, 8], hidden_act="relu",
            use_learnable_affine_block=True, stackwise_stage_filters=[(8, 8, 16, 1, 1, 3), (16, 8, 32, 1, 1, 3)],
            apply_downsample=[False, True], use_lightweight_conv_block=[False, True], image_shape=shape),
        "mit": lambda: M.MiTBackbone(layerwise_depths=[1, 1], num_layers=2, layerwise_num_heads=[1, 2],
                                     layerwise_sr_ratios=[2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3],
                                     layerwise_strides=[4, 2], image_shape=shape, hidden_dims=[8, 16]),
        "mobilenet": lambda: M.MobileNetBackbone(
            stackwise_expansion=[[16], [24]], stackwise_num_blocks=[1, 1], stackwise_num_filters=[[16], [24]],
            stackwise_kernel_size=[[3], [5]], stackwise_num_strides=[[2], [2]], stackwise_se_ratio=[[None], [0.25]],
            stackwise_activation=[["relu"], ["hard_swish"]], stackwise_padding=[[1], [2]], output_num_filters=32,
            depthwise_filters=8, depthwise_stride=2, depthwise_residual=False, last_layer_filter=32,
            squeeze_and_excite=0.5, image_shape=shape),
        "mobilenetv5": lambda: M.MobileNetV5Backbone(
            stackwise_block_types=[["er"], ["uir", "mqa"]], stackwise_num_blocks=[1, 2],
            stackwise_num_filters=[[16], [24, 24]], stackwise_strides=[[2], [2, 1]],
            stackwise_act_layers=[["relu"], ["gelu", "gelu"]], stackwise_exp_ratios=[[2.0], [2.0, 0.0]],
            stackwise_se_ratios=[[0.0], [0.0, 0.0]], stackwise_dw_kernel_sizes=[[0], [3, 0]],
            stackwise_dw_start_kernel_sizes=[[0], [3, 0]], stackwise_dw_end_kernel_sizes=[[0], [0, 0]],
            stackwise_exp_kernel_sizes=[[3], [0, 0]], stackwise_pw_kernel_sizes=[[1], [0, 0]],
            stackwise_num_heads=[[0], [0, 2]], stackwise_key_dims=[[0], [0, 8]], stackwise_value_dims=[[0], [0, 8]],
            stackwise_kv_strides=[[0], [0, 2]], stackwise_use_cpe=[[False], [False, False]], stem_size=8,
            num_features=32, use_msfa=True, msfa_indices=(-2, -1), msfa_output_resolution=4,
            layer_scale_init_value=1e-5, image_shape=shape),
        "resnet": lambda: M.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block", image_shape=shape),
        "swin": lambda: M.SwinTransformerBackbone(image_shape=shape, embed_dim=8, depths=[2, 2], num_heads=[1, 2],
                                                  window_size=4, patch_size=2),
        "vgg": lambda: M.VGGBackbone(stackwise_num_repeats=[1, 1], stackwise_num_filters=[8, 16], image_shape=shape),
        "vit": lambda: M.ViTBackbone(image_shape=shape, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                     mlp_dim=32),
        "xception": lambda: M.XceptionBackbone(stackwise_conv_filters=[[8, 16], [16, 32], [32, 32]],
                                               stackwise_pooling=[True, True, False], image_shape=shape),
    }


CLASSIFIERS = {
    "cspnet": M.CSPNetImageClassifier, "deit": M.DeiTImageClassifier, "densenet": M.DenseNetImageClassifier,
    "efficientnet": M.EfficientNetImageClassifier, "hgnetv2": M.HGNetV2ImageClassifier, "mit": M.MiTImageClassifier,
    "mobilenet": M.MobileNetImageClassifier, "mobilenetv5": M.MobileNetV5ImageClassifier,
    "resnet": M.ResNetImageClassifier, "swin": M.SwinTransformerImageClassifier, "vgg": M.VGGImageClassifier,
    "vit": M.ViTImageClassifier, "xception": M.XceptionImageClassifier,
}
CONVOLUTIONAL = ("cspnet", "densenet", "efficientnet", "hgnetv2", "mobilenet", "resnet", "vgg", "xception")
NATIVE, REDUCED = 32, {"swin": 16, "vgg": 32, "mobilenetv5": 24}  # default reduced size: 24
EXTRA = {"hgnetv2": {"preprocessor": None}, "mobilenet": {"num_features": 16}, "vgg": {"pooling_hidden_dim": 16}}


def classifier(family, size, seed=0):
    keras.utils.set_random_seed(seed)
    return CLASSIFIERS[family](backbone=_backbones(size)[family](), num_classes=CLASSES, **EXTRA.get(family, {}))


def _randomise(model, seed=1):
    """Every weight drawn anew (a trained model's weights are not the initialiser's zeros and ones)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        positive = "variance" in w.path
        value = rng.uniform(0.5, 1.5, tuple(w.shape)) if positive else rng.normal(0, 0.2, tuple(w.shape))
        w.assign(value.astype("float32"))
    return model


def _x(size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (2, size, size, 3)).astype("float32")


def _independent(original, family, size):
    """The family built at `size` and given `original`'s weights, the position table resampled
    here (not by the code under test)."""
    new = classifier(family, size)
    table = POSITION_TABLES.get(type(original.backbone).__name__)
    grid, old_grid = size // 8, NATIVE // 8

    def adapt(weight, value, shape):
        rows = value.reshape(-1, value.shape[-1])
        tokens = table[1] or rows.shape[0] - old_grid**2
        return resample_pos_embed(rows, grid, old_size=old_grid, num_prefix_tokens=tokens).reshape(shape)

    copy_in_order(original.weights, new.weights, adapt)
    return new


@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
def test_every_family_is_exact_at_native_and_equal_to_a_build_at_the_reduced_size(family):
    original = _randomise(classifier(family, NATIVE))
    np.testing.assert_array_equal(np.asarray(rescale(original, NATIVE)(_x(NATIVE))), np.asarray(original(_x(NATIVE))))
    size = REDUCED.get(family, 24)
    reduced = rescale(original, size)
    assert type(reduced) is type(original)
    got, expected = np.asarray(reduced(_x(size))), np.asarray(_independent(original, family, size)(_x(size)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    if family in CONVOLUTIONAL:  # TensorFlow's profiler counts their convolutions and matmuls as we do
        assert 2 * count_macs(reduced) == profiler_flops(reduced, op_types=MAC_OP_TYPES)


def _hand_macs(family, size):
    """MACs of the attention families by hand: projections, both attention products, MLPs,
    patch embeddings and heads (tokens t or n, width c)."""
    if family in ("vit", "deit"):  # patch 8, width 16, one block of 2 heads, MLP 32
        n, c = (size // 8) ** 2, 16
        t = n + (1 if family == "vit" else 2)  # the class (and distillation) tokens
        return n * 8 * 8 * 3 * c + 4 * t * c * c + 2 * t * t * c + 2 * t * c * 32 + c * CLASSES
    if family == "swin":  # patch 2, window 4, widths 8 and 16, two blocks per stage, MLP x4
        grid, total = size // 2, (size // 2) ** 2 * 2 * 2 * 3 * 8
        for c in (8, 16):
            n, w = grid * grid, min(4, grid)
            total += 2 * (4 * n * c * c + 2 * n * w * w * c + 8 * n * c * c)  # qkv+proj, windowed QK and AV, MLP
            if c == 8:
                grid //= 2
                total += grid * grid * (4 * c) * (2 * c)  # patch merging
        return total + 16 * CLASSES
    if family == "mit":  # strides 4, 2; widths 8, 16; spatial reduction 2, 1; MixFFN x4
        h, total = size // 4, (size // 4) ** 2 * 7 * 7 * 3 * 8
        for c, sr in ((8, 2), (16, 1)):
            n, nkv = h * h, (h // sr) ** 2
            total += 2 * n * c * c + 2 * nkv * c * c + 2 * n * nkv * c  # q, proj; k, v; QK and AV
            total += nkv * sr * sr * c * c if sr > 1 else 0  # the reduction's convolution
            total += 2 * n * c * 4 * c + n * 9 * 4 * c  # MixFFN: two Dense, a 3x3 depthwise
            if c == 8:
                h //= 2
                total += h * h * 3 * 3 * 8 * 16  # the next overlapping patch embedding
        return total + 16 * CLASSES
    raise KeyError(family)


@pytest.mark.parametrize("family", ["vit", "deit", "swin", "mit"])
def test_attention_macs_equal_a_hand_count(family):
    """Swin's windowed attention and SegFormer's spatial-reduction attention are written with
    `ops.matmul` and `@` inside custom layers: counted where the products happen."""
    model = classifier(family, NATIVE)
    for size in (NATIVE, REDUCED.get(family, 24)):
        assert count_macs(rescale(model, size)) == _hand_macs(family, size), size


def test_saved_and_loaded_then_rescaled(tmp_path):
    original = _randomise(classifier("deit", NATIVE))
    path = str(tmp_path / "deit.keras")
    original.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(rescale(loaded, 24)(_x(24))), np.asarray(rescale(original, 24)(_x(24))))


@pytest.mark.parametrize("family, size, message", [
    ("swin", 12, r"every grid at least the window \(4\).*Nearest valid: 16"),
    ("mit", 28, r"multiples of its total stride 8.*Nearest valid: 24, 32"),
    ("deit", 20, r"multiple of 8 \(the patch size.*Nearest valid: 16, 24"),
    ("vgg", 16, r"(Computed output size would be zero or negative|adaptive_pool)"),
])
def test_sizes_a_family_cannot_run_are_refused(family, size, message):
    with pytest.raises((RescaleError, ValueError), match=message):
        rescale(classifier(family, NATIVE), size)


def test_vgg_runs_smaller_with_its_map_pooled_to_the_trained_grid():
    original = _randomise(classifier("vgg", NATIVE))
    np.testing.assert_array_equal(np.asarray(rescale(original, NATIVE, head="adaptive_pool")(_x(NATIVE))),
                                  np.asarray(original(_x(NATIVE))))
    assert rescale(original, 16, head="adaptive_pool")(_x(16)).shape == (2, CLASSES)


def test_a_rebuild_with_other_layers_is_refused():
    """EfficientNet's config drops `stackwise_nores_option` (the EdgeTPU variants): rebuilt from
    it the model would gain residual connections; refused instead of silently different."""
    keras.utils.set_random_seed(0)
    backbone = _backbones(NATIVE)["efficientnet"]()
    nores = M.EfficientNetBackbone(**{**backbone.get_config(), "stackwise_nores_option": [False, True, True]})
    with pytest.raises(RescaleError, match="other layers"):
        rescale(nores, 24)


def test_a_saved_classifier_is_normalised_by_its_own_converter_then_rescaled(tmp_path):
    """A classifier's call skips its preprocessor: the loaded model applies the converter's scale
    and offset itself (as `predict` does), not its resizing; its native size is the converter's."""
    from reswise_tf.models import load_user_model

    keras.utils.set_random_seed(0)
    converter = keras_hub.layers.ResNetImageConverter(image_size=(NATIVE, NATIVE), scale=1 / 127.5, offset=-1.0)
    original = M.ResNetImageClassifier(backbone=_backbones(NATIVE)["resnet"](), num_classes=CLASSES,
                                       preprocessor=M.ResNetImageClassifierPreprocessor(converter))
    _randomise(original)
    path = str(tmp_path / "resnet.keras")
    original.save(path)
    loaded = load_user_model(path)
    raw = np.random.default_rng(0).uniform(0, 255, (2, NATIVE, NATIVE, 3)).astype("float32")
    assert loaded.native_resolution == NATIVE and loaded.preprocess == "none"
    np.testing.assert_allclose(np.asarray(loaded.model(raw)), original.predict(raw, verbose=0), rtol=1e-5, atol=1e-5)
    reduced = rescale(loaded.model, 24)
    np.testing.assert_allclose(np.asarray(reduced(raw[:, :24, :24])),
                               np.asarray(rescale(original, 24)(raw[:, :24, :24] / 127.5 - 1.0)), rtol=1e-5, atol=1e-5)


def _segmenters(size):
    """Small random DeepLabV3+ (on a ResNet) and SegFormer (on a MiT), 11 classes."""
    shape = (size, size, 3)
    encoder = M.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
                               stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
                               image_shape=shape)
    deeplab = M.DeepLabV3ImageSegmenter(backbone=M.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P3", upsampling_size=2, dilation_rates=[2, 4],
        low_level_feature_key="P2", projection_filters=8, image_shape=shape), num_classes=11)
    mit = M.MiTBackbone(layerwise_depths=[1, 1], num_layers=2, layerwise_num_heads=[1, 2], layerwise_sr_ratios=[2, 1],
                        max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3], layerwise_strides=[4, 2],
                        image_shape=shape, hidden_dims=[8, 16])
    segformer = M.SegFormerImageSegmenter(backbone=M.SegFormerBackbone(image_encoder=mit, projection_filters=16),
                                          num_classes=11)
    return {"deeplabv3": deeplab, "segformer": segformer}


@pytest.mark.parametrize("family", ["deeplabv3", "segformer"])
def test_segmenters_rebuild_their_encoder_and_resize_their_maps_to_the_new_input(family):
    keras.utils.set_random_seed(0)
    original = _randomise(_segmenters(32)[family])
    np.testing.assert_array_equal(np.asarray(rescale(original, 32)(_x(32), training=False)),
                                  np.asarray(original(_x(32), training=False)))
    reduced = rescale(original, 16)
    direct = _segmenters(16)[family]
    copy_in_order(original.weights, direct.weights, lambda *args: None)
    got = np.asarray(reduced(_x(16), training=False))
    assert got.shape == (2, 16, 16, 11)  # the class map at the input's size
    np.testing.assert_allclose(got, np.asarray(direct(_x(16), training=False)), rtol=1e-5, atol=1e-5)
    with pytest.raises(RescaleError, match="Nearest valid"):
        rescale(original, 20 if family == "deeplabv3" else 12)


# The preset architectures built offline from their published configurations (random weights,
# 1000 classes): (classifier, backbone arguments, published GMACs at 224 px, tolerance).
PUBLISHED = {
    "deit_small": (M.DeiTImageClassifier, dict(patch_size=16, num_layers=12, num_heads=6, hidden_dim=384,
                                                intermediate_dim=1536, backbone=M.DeiTBackbone), 4.6, 0.02),
    "swin_tiny": (M.SwinTransformerImageClassifier, dict(patch_size=4, window_size=7, embed_dim=96, depths=[2, 2, 6, 2],
                                                          num_heads=[3, 6, 12, 24],
                                                          backbone=M.SwinTransformerBackbone), 4.5, 0.02),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_architectures_have_their_published_macs(name):
    """DeiT-S 4.6 GMACs (Touvron et al. 2021), Swin-T 4.5 GMACs (Liu et al. 2021) at 224 px."""
    task, kwargs, published, tolerance = PUBLISHED[name]
    kwargs = dict(kwargs)
    backbone = kwargs.pop("backbone")(image_shape=(224, 224, 3), **kwargs)
    macs = count_macs(task(backbone=backbone, num_classes=1000)) / 1e9
    assert macs == pytest.approx(published, rel=tolerance), macs
