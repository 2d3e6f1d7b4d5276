import os
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from reswise_tf import data
from tests.helpers import write_image_folder


def _examples(source):
    return list(source.dataset.as_numpy_iterator())


def test_integer_class_folders(tmp_path):
    write_image_folder(str(tmp_path), [3, 10], per_class=2)
    source = data.load_source(f"folder:{tmp_path}")
    examples = _examples(source)
    assert [int(e["label"]) for e in examples] == [3, 3, 10, 10]
    assert [int(e["index"]) for e in examples] == [0, 1, 2, 3]
    assert source.num_classes == 11 and source.num_examples == 4
    assert source.labels == data.Labels(f"folder:{tmp_path}", 11, "ids")
    assert examples[0]["image"].shape == (30, 40, 3) and examples[0]["image"].dtype == np.uint8


def test_the_images_of_a_folder_decide_how_it_is_resized(tmp_path):
    """Small images (CIFAR-10's 32-px PNGs) are resized directly as TFDS's small sets are; larger
    ones get ImageNet's resize and crop, with a warning where the crop would upsample them."""
    write_image_folder(str(tmp_path / "small"), [0, 1], per_class=2, size=(32, 32))
    small = data.load_source(f"folder:{tmp_path / 'small'}")
    assert small.small_images and small.min_side == 32 and small.fingerprint() == {"resize": "direct"}
    assert small.upsample_warning(224, 0.875) == ""
    write_image_folder(str(tmp_path / "large"), [0, 1], per_class=2, size=(120, 90))
    large = data.load_source(f"folder:{tmp_path / 'large'}")
    assert not large.small_images and large.min_side == 90 and large.fingerprint() == {}
    assert large.upsample_warning(64, 0.875) == ""
    assert "resizes the shorter side to 112 px, larger than the smallest images" in large.upsample_warning(98, 0.875)
    write_image_folder(str(tmp_path / "mixed"), [0], per_class=3, size=(32, 32))
    write_image_folder(str(tmp_path / "mixed"), [1], per_class=1, size=(100, 100))
    assert not data.load_source(f"folder:{tmp_path / 'mixed'}").small_images  # not all of them are small


def test_synset_folders_map_to_the_standard_imagenet_order(tmp_path):
    synsets = data.imagenet_synsets()
    assert len(synsets) == 1000 and synsets[0] == "n01440764"
    write_image_folder(str(tmp_path), ["n01443537", "n15075141"], per_class=1)
    source = data.load_source(f"folder:{tmp_path}")
    assert [int(e["label"]) for e in _examples(source)] == [1, 999]
    assert source.num_classes == 1000 and source.label_kind == "imagenet"


def test_named_folders_are_sorted(tmp_path):
    write_image_folder(str(tmp_path), ["zebra", "cat"], per_class=1)
    source = data.load_source(f"folder:{tmp_path}")
    assert [int(e["label"]) for e in _examples(source)] == [0, 1]  # cat, zebra
    assert source.labels == data.Labels(f"folder:{tmp_path}", 2, "own") == data.dataset_labels(f"folder:{tmp_path}")


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_source(f"folder:{tmp_path}/nope")
    with pytest.raises(data.DataError, match="no class subfolders"):
        data.load_source(f"folder:{tmp_path}")


def test_find_bad_image_names_the_corrupt_file(tmp_path):
    paths = write_image_folder(str(tmp_path), [0], per_class=3)
    with open(paths[1], "wb") as f:
        f.write(b"not an image")
    assert data.find_bad_image(paths) == paths[1]
    assert data.find_bad_image(paths, start=2) is None


def test_skip_bad_images_drops_them_from_the_stream(tmp_path):
    paths = write_image_folder(str(tmp_path), [0], per_class=3)
    with open(paths[0], "wb") as f:
        f.write(b"\x89PNG broken")
    source = data.load_source(f"folder:{tmp_path}", skip_bad_images=True)
    assert [int(e["index"]) for e in _examples(source)] == [1, 2]


def test_tfds_source_with_mock_data():
    with tfds.testing.mock_data(num_examples=5):
        source = data.load_source("cifar10", data_dir="/nonexistent")
        examples = _examples(source)
    assert source.split == "test" and source.small_images and source.num_classes == 10
    assert len(examples) == 5 and examples[0]["image"].shape == (32, 32, 3)


def test_unprepared_tfds_dataset_fails_fast_with_instructions(tmp_path):
    start = time.time()
    with pytest.raises(data.DataError, match="not prepared.*--download"):
        data.load_source("cifar10", data_dir=str(tmp_path))
    with pytest.raises(data.DataError, match="ILSVRC2012_img_val.tar"):
        data.load_source("imagenet2012", data_dir=str(tmp_path))
    assert time.time() - start < 30
    assert not os.listdir(tmp_path) or all(not f.endswith(".tfrecord") for f in os.listdir(tmp_path))


def test_unknown_dataset_and_split():
    with pytest.raises(data.DataError, match="Unknown dataset 'no_such_set'"):
        data.load_source("no_such_set")
    with pytest.raises(data.DataError, match="Unknown split 'dev' of fashion_mnist. Available: test, train"):
        data.fashion_mnist_arrays("dev")


def test_tiff_images_are_decoded_and_other_files_are_named(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    write_image_folder(str(root), [0], per_class=1, size=(12, 10))
    pixels = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    Image.fromarray(pixels).save(root / "0" / "a.tif")
    Image.fromarray(pixels).save(root / "0" / "b.tiff")
    (root / "0" / "notes.txt").write_text("not an image")
    (root / "0" / "scan.raw").write_bytes(b"\0" * 8)
    source = data.load_source(f"folder:{root}")
    examples = _examples(source)
    assert [os.path.basename(p) for p in source.files] == ["a.tif", "b.tiff", "img_0.png"]
    np.testing.assert_array_equal(examples[0]["image"], pixels)
    np.testing.assert_array_equal(examples[1]["image"], pixels)
    assert [os.path.basename(p) for p in source.ignored_files] == ["notes.txt", "scan.raw"]
    note = data.describe_ignored(source)
    assert note.startswith("Note: 2 file(s) in folder:") and "0/notes.txt, 0/scan.raw" in note


def test_a_broken_tiff_is_named(tmp_path):
    root = tmp_path / "images"
    write_image_folder(str(root), [0], per_class=1)
    (root / "0" / "broken.tif").write_bytes(b"II*\0garbage")
    assert data.find_bad_image(data.load_source(f"folder:{root}").files).endswith("broken.tif")
    skipping = data.load_source(f"folder:{root}", skip_bad_images=True)
    assert [int(e["index"]) for e in _examples(skipping)] == [1]
