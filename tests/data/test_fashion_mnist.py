"""The idx reader and the Fashion-MNIST loader of Debian's package files, on small generated
files in the same format (big-endian header, gzip-compressed)."""

import gzip
import os
import struct

import numpy as np
import pytest

from reswise_tf import data


def write_idx(path, array, *, compress=True, type_code=0x08):
    """Writes `array` (uint8) as an idx file: 0, 0, type, ndim, then big-endian dims."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fashion_mnist(root, n_train=6, n_test=4, seed=0):
    """The four files of Debian's dataset-fashion-mnist package, with random content."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), labels)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(str(tmp_path / f"x-idx3-ubyte{suffix}"), images, compress=compress)
    write_idx(str(tmp_path / f"y-idx1-ubyte{suffix}"), labels, compress=compress)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / f"x-idx3-ubyte{suffix}")), images)
    read = data.read_idx(str(tmp_path / f"y-idx1-ubyte{suffix}"))
    assert read.shape == (3,) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, labels)


def test_read_idx_rejects_other_types_and_truncated_files(tmp_path):
    floats = str(tmp_path / "floats-idx1.gz")
    write_idx(floats, np.zeros(4, np.uint8), type_code=0x0D)
    with pytest.raises(data.DataError, match="not an unsigned-byte idx file"):
        data.read_idx(floats)
    truncated = str(tmp_path / "short-idx3.gz")
    with gzip.open(truncated, "wb") as f:
        f.write(struct.pack(">BBBB3I", 0, 0, 8, 3, 2, 28, 28) + bytes(28 * 28))
    with pytest.raises(data.DataError, match=r"truncated: header says \(2, 28, 28\)"):
        data.read_idx(truncated)


def test_fashion_mnist_arrays_from_package_files(tmp_path):
    expected = write_fashion_mnist(str(tmp_path))
    for split in ("train", "test"):
        images, labels = data.fashion_mnist_arrays(split, root=str(tmp_path), canvas=None)
        assert images.shape == (len(expected[split][1]), 28, 28, 1) and images.dtype == np.uint8
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images[..., 0], expected[split][0])
        np.testing.assert_array_equal(labels, expected[split][1])
        # By default on the 32-px canvas: the image centred, a black border of 2 px.
        on_canvas, _ = data.fashion_mnist_arrays(split, root=str(tmp_path))
        assert on_canvas.shape == (len(labels), 32, 32, 1)
        np.testing.assert_array_equal(on_canvas[:, 2:30, 2:30], images)
        assert on_canvas.sum() == images.sum()
    with pytest.raises(data.DataError, match="Unknown split 'validation' of fashion_mnist"):
        data.fashion_mnist_arrays("validation", root=str(tmp_path))


def test_fashion_mnist_debian_source(tmp_path):
    expected = write_fashion_mnist(str(tmp_path), n_test=5)
    source = data.fashion_mnist_debian_source("test", root=str(tmp_path))
    assert (source.name, source.split, source.num_examples) == ("fashion_mnist", "test", 5)
    assert source.num_classes == 10 and source.small_images and source.canvas == 32
    examples = list(source.dataset.as_numpy_iterator())
    assert [int(e["index"]) for e in examples] == [0, 1, 2, 3, 4]
    assert examples[2]["image"].shape == (32, 32, 1)
    np.testing.assert_array_equal(examples[2]["image"][2:30, 2:30, 0], expected["test"][0][2])
    assert examples[2]["image"].sum() == expected["test"][0][2].sum()
    assert [int(e["label"]) for e in examples] == expected["test"][1].tolist()


@pytest.mark.skipif(
    not os.path.exists(os.path.join(data.DEBIAN_FASHION_MNIST, "t10k-labels-idx1-ubyte.gz")),
    reason="Debian's dataset-fashion-mnist package is not installed",
)
def test_installed_debian_files_are_the_standard_test_split():
    images, labels = data.fashion_mnist_arrays("test", canvas=None)
    assert images.shape == (10_000, 28, 28, 1)
    assert np.bincount(labels).tolist() == [1000] * 10
