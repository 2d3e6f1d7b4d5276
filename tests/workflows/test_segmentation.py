"""Segmentation at lower resolutions, end to end: the offline scenes are deterministic real
items; folder and TFDS (mock) sources give padded class maps and refuse masks that do not fit;
a U-Net's sweep scores each image at its label's own size (equal to a hand computation); the
selectors run on the cache in mIoU; a classifier and a segmentation set are refused before any
work; and the command lines run the sweep and the selection."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from reswise_tf import data, evaluate
from reswise_tf.data import scenes
from reswise_tf.data.source import IGNORE_LABEL, DataError
from reswise_tf.evaluation import SweepConfig, load_tables
from reswise_tf.evaluation.predictions import mean_iou
from reswise_tf.models import get_arch, rescale
from reswise_tf.models.unet import UNetSmall
from reswise_tf.selection import run_selection
from reswise_tf.workflows import run_reduce
from tests.helpers import loaded, run_module, tiny_classifier

needs_fashion_mnist = pytest.mark.skipif(not os.path.isdir(data.DEBIAN_FASHION_MNIST),
                                         reason="Debian's dataset-fashion-mnist is not installed")


def _unet(size=32, channels=1, classes=scenes.NUM_CLASSES, seed=0):
    keras.utils.set_random_seed(seed)
    return UNetSmall(input_shape=(size, size, channels), classes=classes, widths=(8, 16))


@needs_fashion_mnist
def test_scenes_are_deterministic_real_items_with_their_classes():
    a = [(ex["image"].numpy(), ex["label"].numpy()) for ex in scenes.scenes_source("test", num_scenes=4).dataset]
    b = [(ex["image"].numpy(), ex["label"].numpy()) for ex in scenes.scenes_source("test", num_scenes=4).dataset]
    for (image, mask), (image_b, mask_b) in zip(a, b):
        np.testing.assert_array_equal(image, image_b)
        np.testing.assert_array_equal(mask, mask_b)
        assert image.shape == (64, 64, 1) and mask.shape == (64, 64)
        assert set(np.unique(mask)) - {0} and mask.max() < scenes.NUM_CLASSES  # items and background
        assert (image[..., 0][mask > 0] > scenes.INK).all() and (mask[image[..., 0] > scenes.INK] > 0).all()
    train = next(iter(scenes.scenes_source("train", num_scenes=1).dataset))
    assert not np.array_equal(train["image"].numpy(), a[0][0])  # the train scenes are other items
    with pytest.raises(DataError, match="Unknown split 'validation' of fashion_mnist_scenes. Available: train, test"):
        scenes.scenes_source("validation")


def _write_pairs(root, sizes, ids=(0, 1, 2)):
    rng = np.random.default_rng(0)
    os.makedirs(root / "images")
    os.makedirs(root / "masks")
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"im{i}.jpg")
        Image.fromarray(rng.choice(np.array(ids, np.uint8), (h, w))).save(root / "masks" / f"im{i}.png")


def test_a_folder_of_images_and_masks_gives_padded_maps_and_refuses_misfits(tmp_path):
    _write_pairs(tmp_path / "ok", [(40, 30), (24, 36)], ids=(0, 1, 2, IGNORE_LABEL))
    source = data.load_source(f"folder:{tmp_path / 'ok'}")
    assert source.task == "segmentation" and source.num_classes == 3  # 255 is not a class
    labels = data.dataset_labels(f"folder:{tmp_path / 'ok'}")
    assert (labels.num_classes, labels.task, labels.imagenet) == (3, "segmentation", False)  # ids, not ImageNet's
    for ex, (w, h) in zip(source.dataset, [(40, 30), (24, 36)]):
        label = ex["label"]
        assert tuple(label["size"].numpy()) == (h, w)
        mask = label["mask"].numpy()
        assert (mask[h:] == IGNORE_LABEL).all() and (mask[:, w:] == IGNORE_LABEL).all()
        stored = np.asarray(Image.open(tmp_path / "ok" / "masks" / f"im{int(ex['index'])}.png"))
        np.testing.assert_array_equal(mask[:h, :w], stored)
    _write_pairs(tmp_path / "bad", [(40, 30)])
    Image.fromarray(np.zeros((30, 41), np.uint8)).save(tmp_path / "bad" / "masks" / "im0.png")
    with pytest.raises(DataError, match=r"masks/im0.png is 41x30 but its image is 40x30"):
        data.load_source(f"folder:{tmp_path / 'bad'}")
    os.remove(tmp_path / "bad" / "masks" / "im0.png")
    with pytest.raises(DataError, match=r"images/im0.jpg has no mask .*masks/im0.png"):
        data.load_source(f"folder:{tmp_path / 'bad'}")


def test_oxford_pets_trimaps_become_three_classes():
    """TFDS's pets through `mock_data` with examples shaped as the real ones: trimaps 1..3 of the
    image's size become classes 0..2, padded to 512 with the ignore label."""
    rng = np.random.default_rng(0)
    shapes = [(47, 39), (20, 64)]
    trimaps = [rng.integers(1, 4, (*shape, 1)).astype(np.uint8) for shape in shapes]

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_generator(
            lambda: ({"image": np.zeros((*m.shape[:2], 3), np.uint8), "segmentation_mask": m} for m in trimaps),
            output_signature={"image": tf.TensorSpec((None, None, 3), tf.uint8),
                              "segmentation_mask": tf.TensorSpec((None, None, 1), tf.uint8)})

    with tfds.testing.mock_data(num_examples=len(shapes), as_dataset_fn=as_dataset):
        source = data.load_source("oxford_iiit_pet", split="test")
        assert source.task == "segmentation" and source.num_classes == 3
        for ex, trimap in zip(source.dataset, trimaps):
            h, w = ex["label"]["size"].numpy()
            mask = ex["label"]["mask"].numpy()
            assert (h, w) == trimap.shape[:2] and mask.shape == (512, 512)
            np.testing.assert_array_equal(mask[:h, :w], trimap[..., 0] - 1)
            assert (mask[h:] == IGNORE_LABEL).all() and (mask[:, w:] == IGNORE_LABEL).all()


def _by_hand(model, images, masks, size):
    """Per-class intersection and union of `model` at `size` px, its logits resized back to each
    label's size (what the sweep promises)."""
    x = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True) / 127.5 - 1.0
    probs = tf.image.resize(model(x), masks.shape[1:3])
    pred = np.argmax(np.asarray(probs), -1)
    c = model.output.shape[-1]
    inter = np.stack([((pred == k) & (masks == k)).sum((1, 2)) for k in range(c)], 1)
    union = np.stack([((pred == k) | (masks == k)).sum((1, 2)) for k in range(c)], 1)
    return inter, union


@needs_fashion_mnist
def test_a_unet_sweep_scores_each_size_at_the_labels_resolution_and_selects_in_miou(tmp_path):
    source = scenes.scenes_source("test", num_scenes=12)
    images = np.stack([ex["image"].numpy() for ex in source.dataset])
    masks = np.stack([ex["label"].numpy() for ex in source.dataset])
    model = _unet(64)
    config = SweepConfig(resolutions=[64, 48, 32], preprocess="tf", batch_size=4)
    rows = run_reduce(loaded(model, preprocess="tf"), source, config, str(tmp_path), verbose=0)
    assert [r["resolution"] for r in rows] == [64, 48, 32] and {"miou", "pixel_acc", "miou_drop"} <= set(rows[0])
    assert (tmp_path / "examples.png").read_bytes()[:4] == b"\x89PNG"  # images, labels, maps per size
    cache = load_tables(str(tmp_path))
    for size in (64, 32):
        inter, union = _by_hand(rescale(model, size), images, masks, size)
        table = cache[size]
        np.testing.assert_array_equal(table.intersection, inter)
        np.testing.assert_array_equal(table.union, union)
        row = next(r for r in rows if r["resolution"] == size)
        assert row["miou"] == pytest.approx(mean_iou(inter.sum(0), union.sum(0)), abs=0.01)
    assert rows[-1]["flops_drop_pct"] == pytest.approx(75.0)  # a fully convolutional net: MACs scale with the area
    with pytest.warns(UserWarning, match=r"The calibration part has 6 image\(s\): the cascade is fitted on too few"):
        report = run_selection(cache, ("fixed", "random", "cascade", "oracle"), max_drops=[1.0])
    rows_scored = report.split.evaluation
    assert {r.scores[0][0] for r in report.results} == {"miou"}  # the columns are mIoU, pixel accuracy
    assert {r.scores[1][0] for r in report.results} == {"pixel_acc"}
    fixed = {r.setting: r for r in report.results if r.selector == "fixed"}
    assert fixed["64px"].scores[0][1] == pytest.approx(cache[64].miou(rows_scored))
    assert fixed["32px"].scores[0][2] == pytest.approx(cache[64].miou(rows_scored) - cache[32].miou(rows_scored))
    assert {"random", "cascade", "oracle"} <= {r.selector for r in report.results}
    for option, message in (({"confidence": "margin"}, "`confidence` should be auto or max_prob"),
                            ({"thresholds": "per_class"}, "`thresholds` should be auto or shared"),
                            ({"metric": "top1"}, "Unknown metric 'top1' for a segmentation cache")):
        with pytest.raises(ValueError, match=message):  # refused before any selector runs
            run_selection(cache, ("fixed", "cascade"), **option)


def test_a_model_and_a_dataset_of_other_tasks_are_refused_before_any_work(tmp_path):
    masks = np.zeros((4, 16, 16), np.uint8)
    images = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="segmentation"):
        evaluate(tiny_classifier(16, classes=3), (images, masks), [16, 8], output_dir=str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "predictions")
    with pytest.raises(ValueError, match="is a classification dataset, but the model 'unet_small' is a segmentation"):
        evaluate(_unet(16, classes=3), (images, np.zeros(4, np.int64)), [16, 8], output_dir=str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "predictions")


def test_evaluate_takes_in_memory_class_maps(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 1), dtype=np.uint8)
    masks = rng.integers(0, 3, (6, 32, 32)).astype(np.uint8)
    masks[0, :4] = IGNORE_LABEL
    result = evaluate(_unet(32, classes=3), (images, masks), [32, 16], preprocess="tf")
    assert [r["resolution"] for r in result.rows] == [32, 16]
    as_dataset = evaluate(_unet(32, classes=3), tf.data.Dataset.from_tensor_slices((images, masks)), [32, 16],
                          preprocess="tf")  # a tf.data.Dataset of (image, class map): the same
    assert as_dataset.rows[1]["miou"] == result.rows[1]["miou"]
    table = result.cache.tables[32]  # the ignore-label pixels are not scored
    assert table.pixels.tolist() == [32 * 32 - 4 * 32] + [32 * 32] * 5
    assert result.rows[0]["miou"] == pytest.approx(table.miou(), abs=1e-3)
    with pytest.raises(DataError, match=r"labels 1..5, but the model has 3 outputs \(classes 0..2\)"):
        evaluate(_unet(32, classes=3), (images, np.where(masks == IGNORE_LABEL, masks, masks * 2 + 1)), [32])


@needs_fashion_mnist
def test_the_command_line_sweeps_a_unet_checkpoint_on_the_scenes(tmp_path):
    checkpoint = tmp_path / "unet.keras"
    keras.utils.set_random_seed(0)
    get_arch("unet_small").build(64, classes=scenes.NUM_CLASSES).save(checkpoint)
    out = tmp_path / "out"
    result = run_module("experiments.reduce", "--arch=unet_small", "--dataset=fashion_mnist_scenes",
                        f"--weights={checkpoint}", "--resolutions=64,32", "--num_examples=8", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "mIoU" in (out / "results.md").read_text()
    selected = run_module("experiments.select", f"--results_dir={out}", "--max_drop=1")
    assert selected.returncode == 0, selected.stderr
    assert "miou" in (out / "selection.csv").read_text().splitlines()[0]


@needs_fashion_mnist
def test_batchnorm_re_estimation_columns_for_a_segmenter(tmp_path):
    source, train = scenes.scenes_source("test", num_scenes=8), scenes.scenes_source("train", num_scenes=16)
    config = SweepConfig(resolutions=[32, 16], preprocess="tf", batch_size=8)
    rows = run_reduce(loaded(_unet(32), preprocess="tf"), source, config, str(tmp_path), verbose=0,
                      bn_source=train, bn_images=16)
    bn = load_tables(str(tmp_path / "bn_recalibrated"))
    assert [r["miou_bn"] for r in rows] == [pytest.approx(bn[r].miou(), abs=1e-3) for r in (32, 16)]
    assert rows[1]["miou_bn_drop"] == pytest.approx(rows[0]["miou"] - rows[1]["miou_bn"], abs=1e-3)
    assert "mIoU Drop, BN re-estimated" in (tmp_path / "results.md").read_text()
