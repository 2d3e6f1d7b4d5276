"""run_reduce: the sweep plus reports, with measured latency and BatchNorm re-estimation, on a
hand-built model and on registered architectures."""

import os

import numpy as np
import pytest

from reswise_tf import data
from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation import BN_VARIANT, SweepConfig, load_tables
from reswise_tf.models import load_arch, recalibrate_bn, rescale
from reswise_tf.report import tables
from reswise_tf.workflows import run_reduce
from tests.helpers import array_source, generated_source, loaded, tiny_classifier, write_image_folder


def _loaded():
    return loaded(tiny_classifier(16), preprocess="tf")


def test_latency_columns_and_figure(tmp_path):
    config = SweepConfig(resolutions=[16, 8], preprocess="tf", batch_size=4)
    rows = run_reduce(_loaded(), array_source(8), config, str(tmp_path), verbose=0,
                      measure_latency=True, latency_repeats=3)
    assert rows[0]["speedup_b1"] == 1.0 and rows[0]["speedup_b32"] == 1.0
    for row in rows:  # the speed-ups are the latencies' ratios (rounded to 3 decimals)
        assert row["speedup_b32"] == pytest.approx(rows[0]["latency_b32_ms"] / row["latency_b32_ms"], abs=2e-3)
    assert os.path.exists(tmp_path / "flops_drop_vs_speedup.png")
    assert "latency_b32_ms" in tables.read_csv(str(tmp_path / "results.csv"))[0]
    assert "Speed-up, batch 1" in (tmp_path / "results.md").read_text()


def test_bn_columns_come_from_a_second_cache(tmp_path):
    config = SweepConfig(resolutions=[16, 8], preprocess="tf", batch_size=4)
    rows = run_reduce(_loaded(), array_source(8), config, str(tmp_path), verbose=0,
                      bn_source=array_source(12, split="train", seed=1), bn_images=12)
    assert {"top1_bn", "top5_bn", "top1_bn_drop", "top5_bn_drop"} <= set(rows[0])
    assert sorted(os.listdir(tmp_path / BN_VARIANT / "predictions")) == ["res_16.npz", "res_8.npz", "sweep.json"]


def test_bn_never_reads_the_evaluation_split(tmp_path):
    config = SweepConfig(resolutions=[16], preprocess="tf")
    with pytest.raises(ValueError, match="must not read the evaluation split"):
        run_reduce(_loaded(), array_source(8), config, str(tmp_path), verbose=0,
                   bn_source=array_source(8), bn_images=4)
    assert not os.path.exists(tmp_path / "predictions")


def test_registered_architecture_sweep_and_bn_reestimation(tmp_path):
    """ResNet-18 small (registered, random weights, 10 classes) swept 32 -> 24, 16 on
    Fashion-MNIST-like images with BatchNorm re-estimated: the native row equals running the
    model directly, and the BN variant's table equals `recalibrate_bn` applied by hand."""
    arch = load_arch("resnet18_small", "none", classes=10, native_resolution=32)
    head = arch.model.get_layer("predictions")  # sharper outputs than random weights give
    head.set_weights([head.get_weights()[0] * 50.0, head.get_weights()[1]])
    source, bn_source = generated_source(24), generated_source(40, seed=1)
    bn_source = data.DataSource("generated", "train", bn_source.dataset, 40, 2, small_images=True, label_kind="ids")
    source = data.DataSource("generated", "test", source.dataset, 24, 2, small_images=True, label_kind="ids")
    config = SweepConfig(resolutions=[32, 24, 16], preprocess="tf", batch_size=8)
    rows = run_reduce(arch, source, config, str(tmp_path), verbose=0, bn_source=bn_source, bn_images=40)
    assert [row["resolution"] for row in rows] == [32, 24, 16]
    assert rows[0]["macs"] > rows[1]["macs"] > rows[2]["macs"]
    def batch(src, r, n):
        return np.stack([prepare(ex["image"], r, mode="tf", direct=True).numpy() for ex in src.dataset.take(n)])

    def assert_table_is(table, probs):
        ordered = -np.sort(-probs, axis=1)
        np.testing.assert_allclose(table.top_probs, ordered, atol=1e-5)
        clear = ordered[:, 0] - ordered[:, 1] > 1e-3  # no near-tie at the top
        assert clear.sum() > len(probs) // 2
        np.testing.assert_array_equal(table.top_ids[clear, 0], probs.argmax(1)[clear])

    assert_table_is(load_tables(str(tmp_path))[32], arch.model(batch(source, 32, 24), training=False).numpy())
    fixed = recalibrate_bn(rescale(arch.model, 24, arch=arch.arch), batch(bn_source, 24, 40), batch_size=8)
    assert_table_is(load_tables(str(tmp_path / BN_VARIANT))[24], fixed(batch(source, 24, 24), training=False).numpy())


def test_skipped_images_are_listed_and_counted_in_the_tables(tmp_path):
    root = tmp_path / "images"
    paths = write_image_folder(str(root), [0, 1], per_class=2)
    with open(paths[1], "wb") as f:
        f.write(b"broken")
    source = data.load_source(f"folder:{root}", skip_bad_images=True)
    config = SweepConfig(resolutions=[16, 8], preprocess="tf", batch_size=4)
    out = tmp_path / "out"
    rows = run_reduce(loaded(tiny_classifier(16, classes=2), preprocess="tf"), source, config, str(out), verbose=0)
    assert rows[0]["num_skipped"] == 1 and rows[0]["num_examples"] == 3
    assert (out / "skipped.txt").read_text() == paths[1] + "\n"
    assert "1 unreadable image(s) skipped (listed in skipped.txt)" in (out / "results.md").read_text()


def test_bn_reestimation_of_a_vit_says_it_does_not_apply(tmp_path):
    from reswise_tf.models import vit

    model = loaded(vit.VisionTransformer(8, 24, 1, 2, 48, input_shape=(16, 16, 3), classes=10), preprocess="tf")
    config = SweepConfig(resolutions=[16, 8], preprocess="tf", batch_size=4)
    with pytest.warns(UserWarning, match="--recalibrate_bn does not apply.*LayerNorm"):
        rows = run_reduce(model, array_source(8), config, str(tmp_path), verbose=0,
                          bn_source=array_source(8, split="train", seed=1), bn_images=8)
    assert "top1_bn" not in rows[0] and not os.path.exists(tmp_path / BN_VARIANT)
    assert [row["resolution"] for row in rows] == [16, 8]  # a ViT swept end to end


def test_a_folder_of_native_size_images_is_not_cropped(tmp_path):
    """CIFAR-10-like 16-px PNGs in class folders: the native row is `model.predict` on the same
    images (as they are, only normalised), not on a resized-and-cropped copy; the table says so."""
    root = tmp_path / "images"
    paths = write_image_folder(str(root), [0, 1, 2], per_class=4, size=(16, 16))
    model = tiny_classifier(16, classes=3)
    head = model.get_layer("predictions")
    head.set_weights([head.get_weights()[0] * 50.0, head.get_weights()[1]])  # clear top classes
    source = data.load_source(f"folder:{root}")
    out = tmp_path / "out"
    rows = run_reduce(loaded(model, preprocess="tf"), source, SweepConfig(resolutions=[12], batch_size=5), str(out),
                      verbose=0)
    from PIL import Image

    images = np.stack([np.asarray(Image.open(p), np.float32) / 127.5 - 1.0 for p in paths])
    expected = model.predict(images, verbose=0)
    native = load_tables(str(out))[16]
    np.testing.assert_allclose(native.top_probs[:, 0], expected.max(1), rtol=1e-5)
    np.testing.assert_array_equal(native.top_ids[:, 0], expected.argmax(1))
    assert rows[0]["resize"] == "direct"
    assert "resized directly to each size" in (out / "results.md").read_text()
