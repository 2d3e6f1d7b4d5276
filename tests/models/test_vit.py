"""Vision Transformers at lower resolutions: the resampler against an independent naive
computation, the builders, rescaling (native exact; reduced equal to a model built at that size
with the resampled table; sizes that are not patch multiples refused), standard layers only (a
saved model loads in safe mode in a process that cannot import reswise_tf), and the MACs of
attention (by hand, and against TensorFlow's profiler, which misses the attention products)."""

import json
import math
import os
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest

from reswise_tf.cost import count_macs, count_macs_by_layer
from reswise_tf.cost.attention import einsum_macs, mha_macs
from reswise_tf.models import get_arch, resample, rescale, vit
from tests import profiler_flops

SMALL = dict(patch_size=8, width=48, depth=2, heads=2, mlp_dim=192)


def small(size=64, **kw):
    keras.utils.set_random_seed(1)
    return vit.VisionTransformer(**SMALL, input_shape=(size, size, 3), classes=7, **kw)


def images(n=3, h=64, w=None, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w or h, 3)).astype("float32")


def randomize_pos(model, seed=3):
    """A smooth, large position table (so that resampling errors would show in the outputs)."""
    layer = model.get_layer(vit.POS_EMBED)
    rows, c = layer.input_dim, layer.output_dim
    side = math.isqrt(rows - 1)
    g = np.linspace(-1, 1, side)
    grid = np.sin(2.5 * g[:, None, None] + np.arange(c) * 0.3) * np.cos(1.5 * g[None, :, None] - np.arange(c) * 0.1)
    cls = np.random.default_rng(seed).normal(size=(1, c))
    layer.set_weights([np.concatenate([cls, grid.reshape(-1, c)]).astype("float32")])


def direct_with_resampled(model, size, antialias=True):
    """Built directly at `size`; every weight copied, the position table resampled."""
    new = small(size)
    for a, b in zip([x for x in model.layers if x.weights], [x for x in new.layers if x.weights], strict=True):
        if a.name == vit.POS_EMBED:
            b.set_weights([resample.resample_pos_embed(a.get_weights()[0], size // 8, antialias=antialias)])
        else:
            b.set_weights(a.get_weights())
    return new


def _keys(d, a):
    d = abs(d)
    if d <= 1.0:
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    if d < 2.0:
        return (((d - 5.0) * d + 8.0) * d - 4.0) * a
    return 0.0


def naive_resize(grid, out_h, out_w, antialias):
    """Per output pixel, 2-D: torch's bicubic (antialias=False: A=-0.75, 4x4 taps, clamped
    indices) or its antialiased variant (A=-0.5 stretched by the scale, renormalised)."""
    in_h, in_w, c = grid.shape
    out = np.zeros((out_h, out_w, c))

    def taps(i, n_in, n_out):
        scale = n_in / n_out
        if not antialias:
            src = (i + 0.5) * scale - 0.5
            f = math.floor(src)
            return [(min(max(f + d, 0), n_in - 1), _keys(src - (f + d), -0.75)) for d in (-1, 0, 1, 2)]
        stretch = max(scale, 1.0)
        center = (i + 0.5) * scale
        ws = [(k, _keys((k + 0.5 - center) / stretch, -0.5)) for k in range(n_in)]
        total = sum(w for _, w in ws)
        return [(k, w / total) for k, w in ws]

    for i in range(out_h):
        ty = taps(i, in_h, out_h)
        for j in range(out_w):
            tx = taps(j, in_w, out_w)
            acc = np.zeros(c)
            for y, wy in ty:
                for x, wx in tx:
                    acc += wy * wx * grid[y, x]
            out[i, j] = acc
    return out


CASES = [((14, 14), (10, 10)), ((14, 14), (7, 7)), ((14, 14), (20, 20)), ((8, 8), (4, 4)),
         ((8, 8), (12, 12)), ((4, 4), (8, 8)), ((14, 14), (13, 13)), ((5, 5), (1, 1)), ((8, 6), (5, 9))]


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("old,new", CASES)
def test_resampler_matches_naive_reference(old, new, antialias):
    grid = np.random.default_rng(0).normal(size=(*old, 5))
    ours = resample.resize_grid(grid, new, antialias=antialias)
    ref = naive_resize(grid, *new, antialias)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("antialias", [False, True])
def test_bicubic_matrix_identity_and_partition_of_unity(antialias):
    np.testing.assert_array_equal(resample.bicubic_matrix(14, 14, antialias), np.eye(14))
    for n_in, n_out in [(14, 10), (14, 20), (8, 3), (3, 8)]:
        m = resample.bicubic_matrix(n_in, n_out, antialias)
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)


def test_antialias_modes_differ():
    # timm's default (antialias=True) and plain bicubic are different kernels.
    assert not np.allclose(resample.bicubic_matrix(14, 10, True), resample.bicubic_matrix(14, 10, False))


def test_resample_pos_embed_layout_and_class_row():
    table = np.random.default_rng(0).normal(size=(1 + 14 * 14, 6)).astype("float32")
    out = resample.resample_pos_embed(table, 10)
    assert out.shape == (101, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], table[0])
    grid = resample.resize_grid(table[1:].reshape(14, 14, 6), 10)
    np.testing.assert_array_equal(out[1:], grid.reshape(100, 6))
    np.testing.assert_array_equal(resample.resample_pos_embed(table, 14), table)
    lead = resample.resample_pos_embed(table[None], 10)
    np.testing.assert_array_equal(lead[0], out)
    with pytest.raises(ValueError, match="square grid"):
        resample.resample_pos_embed(table[:51], 5)  # 50 rows: not square


def test_builders_signature_and_shapes():
    m = small(include_top=False, pooling=None)
    assert m.output.shape == (None, 65, 48)
    assert small(include_top=False, pooling="avg").output.shape == (None, 48)
    assert small(include_top=False, pooling="token").output.shape == (None, 48)
    assert small().output.shape == (None, 7)
    with pytest.raises(ValueError, match="weights"):
        vit.ViTTi16(weights="imagenet")
    with pytest.raises(ValueError, match="multiple of 16 \\(the patch size"):
        vit.ViTTi16(input_shape=(200, 200, 3))
    inp = keras.Input((32, 32, 3))
    m = vit.VisionTransformer(**SMALL, input_tensor=inp, classes=3)
    assert m.inputs[0] is inp and m.get_layer(vit.POS_EMBED).input_dim == 17


@pytest.mark.parametrize("builder,params", [(vit.ViTTi16, 5_717_416), (vit.ViTS16, 22_050_664),
                                            (vit.ViTB16, 86_567_656)])
def test_named_vits_parameter_counts(builder, params):
    # timm: vit_tiny 5.72 M, vit_small 22.05 M, vit_base 86.57 M parameters (1000 classes).
    assert builder().count_params() == params


def test_free_weights_are_trainable():
    m = small()
    m.compile(optimizer=keras.optimizers.AdamW(1e-2), loss="sparse_categorical_crossentropy")
    before = {n: m.get_layer(n).get_weights()[0].copy() for n in (vit.CLS_TOKEN, vit.POS_EMBED)}
    m.train_on_batch(images(4), np.arange(4))
    for n, w in before.items():
        assert not np.array_equal(m.get_layer(n).get_weights()[0], w), n




def test_native_size_is_bitwise_exact():
    m = small()
    randomize_pos(m)
    x = images()
    np.testing.assert_array_equal(np.asarray(rescale(m, 64)(x)), np.asarray(m(x)))


@pytest.mark.parametrize("size", [48, 32, 8, 80])
def test_reduced_size_equals_direct_build_with_resampled_table(size):
    m = small()
    randomize_pos(m)
    r = rescale(m, size)
    x = images(h=size)
    np.testing.assert_array_equal(np.asarray(r(x)), np.asarray(direct_with_resampled(m, size)(x)))
    np.testing.assert_array_equal(r.get_layer(vit.CLS_TOKEN).get_weights()[0],
                                  m.get_layer(vit.CLS_TOKEN).get_weights()[0])
    assert r.get_layer(vit.POS_EMBED).input_dim == (size // 8) ** 2 + 1


def test_the_registry_rebuilds_the_same():
    spec = get_arch("vit_small_p8")
    keras.utils.set_random_seed(2)
    m = spec.build(64, classes=10)
    randomize_pos(m)
    x = images(h=40)
    np.testing.assert_array_equal(np.asarray(rescale(m, 40, arch=spec)(x)), np.asarray(rescale(m, 40)(x)))


@pytest.mark.parametrize("size,nearest", [(50, "48, 56"), (4, "8"), (63, "56, 64")])
def test_refuses_sizes_that_are_not_multiples_of_the_patch(size, nearest):
    with pytest.raises(ValueError, match=f"multiple of 8 \\(the patch size.*Nearest valid: {nearest}$"):
        rescale(small(), size)


def test_refusal_message_vit_b():
    with pytest.raises(ValueError) as e:
        vit.check_size(170, 16)
    assert "resolution should be a multiple of 16 (the patch size" in str(e.value)
    assert str(e.value).endswith("Nearest valid: 160, 176")


def test_vit_inside_user_model():
    m = small()
    randomize_pos(m)
    inp = keras.Input((64, 64, 3))
    z = keras.layers.Dense(4, name="user_head")(m(keras.layers.Rescaling(0.5)(inp)))
    user = keras.Model(inp, z)
    x = images()
    np.testing.assert_array_equal(np.asarray(rescale(user, 64)(x)), np.asarray(user(x)))
    d = direct_with_resampled(m, 32)
    inp2 = keras.Input((32, 32, 3))
    head = keras.layers.Dense(4)
    z2 = head(d(keras.layers.Rescaling(0.5)(inp2)))
    head.set_weights(user.get_layer("user_head").get_weights())
    x32 = images(h=32)
    np.testing.assert_array_equal(np.asarray(rescale(user, 32)(x32)), np.asarray(keras.Model(inp2, z2)(x32)))


def test_rescale_after_safe_mode_load(tmp_path):
    m = small()
    randomize_pos(m)
    m.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = images(h=40)
    np.testing.assert_array_equal(np.asarray(rescale(loaded, 40)(x)), np.asarray(rescale(m, 40)(x)))


_CHILD = """
import importlib.abc, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


class NoReswise(importlib.abc.MetaPathFinder):  # reswise_tf is installed: make it unimportable
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "reswise_tf":
            raise ImportError("reswise_tf is blocked in this process")
        return None


sys.meta_path.insert(0, NoReswise())
import keras, numpy as np
m = keras.models.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))
assert not any(n.startswith("reswise_tf") for n in sys.modules)
print("OK", sorted({type(l).__module__.split(".")[0] for l in m.layers}))
"""


def _modules(config):
    if isinstance(config, dict):
        if "module" in config and isinstance(config["module"], str):
            yield config["module"]
        for v in config.values():
            yield from _modules(v)
    elif isinstance(config, list):
        for v in config:
            yield from _modules(v)


@pytest.mark.parametrize("size", [pytest.param(64, marks=pytest.mark.slow), 48])  # a subprocess each
def test_safe_mode_load_in_fresh_process(tmp_path, size):
    m = small()
    randomize_pos(m)
    if size != 64:
        m = rescale(m, size)
    path, xpath, ypath = tmp_path / "vit.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    m.save(path)
    with zipfile.ZipFile(path) as z:
        modules = set(_modules(json.loads(z.read("config.json"))))
    assert modules and all(mod.startswith("keras") for mod in modules), modules
    x = images(h=size)
    np.save(xpath, x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(path), str(xpath), str(ypath)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OK ['keras']" in r.stdout
    np.testing.assert_array_equal(np.load(ypath), np.asarray(m(x)))




def vit_macs_by_hand(size, patch, width, depth, heads, mlp, classes=1000, channels=3):
    n = (size // patch) ** 2
    t = n + 1
    per_block = (3 * t * width * width          # Q, K, V projections
                 + 2 * heads * t * t * (width // heads)  # QK^T and attention x V
                 + t * width * width             # output projection
                 + 2 * t * width * mlp)          # MLP
    return n * width * patch * patch * channels + depth * per_block + width * classes


def test_vit_b16_macs_by_hand():
    m = vit.ViTB16()
    assert vit_macs_by_hand(224, 16, 768, 12, 12, 3072) == 17_563_828_224  # 17.56 G (timm: 17.58)
    assert count_macs(m) == 17_563_828_224
    assert vit_macs_by_hand(160, 16, 768, 12, 12, 3072) == 8_826_175_488  # 8.83 G, 101 tokens
    assert count_macs(m, resolution=160) == 8_826_175_488
    by_layer = count_macs_by_layer(m)
    assert by_layer["block0_attn"] == mha_macs_closed_form(197, 197, 768, 768, 12, 64)
    assert by_layer["patch_embed"] == 196 * 768 * 768 and by_layer["predictions"] == 768_000


def test_rescaled_macs_equal_resolution_argument():
    m = small()
    assert count_macs(rescale(m, 32)) == count_macs(m, resolution=32)
    assert count_macs(m) == vit_macs_by_hand(64, 8, 48, 2, 2, 192, classes=7)


def test_mha_macs_layer_based_equals_closed_form():
    mha = keras.layers.MultiHeadAttention(4, 16, value_dim=8, output_shape=40)
    q, v = keras.Input((10, 24)), keras.Input((7, 32))
    mha(q, v)
    parts = mha_macs(mha, (None, 10, 24), (None, 7, 32))
    assert parts["scores"] == 4 * 10 * 7 * 16 and parts["context"] == 4 * 10 * 7 * 8
    assert parts["total"] == mha_macs_closed_form(10, 7, 24, 32, 4, 16, value_dim=8, output_dim=40)


def test_mha_macs_2d_attention_axes():
    mha = keras.layers.MultiHeadAttention(2, 8, attention_axes=(1, 2))
    x = keras.Input((5, 6, 12))
    mha(x, x)
    parts = mha_macs(mha, (None, 5, 6, 12), (None, 5, 6, 12))
    t = 30
    assert parts["scores"] == parts["context"] == 2 * t * t * 8
    assert parts["query"] == t * 12 * 2 * 8 and parts["output"] == t * 2 * 8 * 12


def test_einsum_macs():
    assert einsum_macs("btd,dhk->bthk", (None, 197, 768), (768, 12, 64)) == 197 * 768 * 768
    assert einsum_macs("...d,de->...e", (None, 5, 7, 3), (3, 4)) == 5 * 7 * 3 * 4
    assert einsum_macs("ab,bc->ac", (2, 3), (3, 4)) == 24
    layer = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 6), bias_axes="d")
    x = keras.Input((9, 5))
    layer(x)
    m = keras.Model(x, layer(x))
    assert count_macs(m) == 9 * 5 * 6


def mha_macs_closed_form(tq, tk, dq, dkv, heads, key_dim, value_dim=None, output_dim=None):
    """Tq*Dq*H*dk + Tk*Dkv*H*dk + Tk*Dkv*H*dv + H*Tq*Tk*dk + H*Tq*Tk*dv + Tq*H*dv*Dout."""
    value_dim = key_dim if value_dim is None else value_dim
    output_dim = dq if output_dim is None else output_dim
    return (tq * dq * heads * key_dim + tk * dkv * heads * key_dim + tk * dkv * heads * value_dim
            + heads * tq * tk * key_dim + heads * tq * tk * value_dim + tq * heads * value_dim * output_dim)


def test_count_macs_against_tf_profiler():
    """The profiler counts the projections, MLPs and patch embedding (MatMul, Conv2D) but not
    Keras' dot-product attention, which stays two Einsum ops a layer; with those ops' MACs read
    from the graph the two counts are equal."""
    m = small()
    graph = profiler_flops.inference_graph(m, freeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiled = profiler_flops.profiler_flops(graph, op_types=profiler_flops.MAC_OP_TYPES)
    einsum = profiler_flops.graph_einsum_macs(graph)
    assert set(einsum) == {"BTNH,BSNH->BNTS", "BNTS,BSNH->BTNH"}
    assert profiled // 2 + sum(einsum.values()) == count_macs(m)
    assert sum(einsum.values()) == 2 * 2 * 65 * 65 * 24 * 2


@pytest.mark.slow  # a subprocess; the flops command is in the default run with MobileNetV2
def test_experiments_flops_prints_the_vit_b16_counts():
    from tests.helpers import run_module

    result = run_module("experiments.flops", "--arch=vit_b16", "--resolutions=224,160")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("224,17563828224,") and lines[2].startswith("160,8826175488,")
