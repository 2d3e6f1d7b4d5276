"""Evaluation data as tf.data pipelines of decoded images.

Every source yields dicts `{'image': uint8 (H, W, C), 'label': int64 (a segmentation: a class
map, `segmentation.py`), 'index': int64}`, where `index` is the example's position in the source
(so per-image results can be matched and nothing dropped goes unnoticed). Sources:
- TFDS datasets (`cifar10`, `imagenet2012`, `fashion_mnist`, any image classification set),
  with downloads off unless asked for;
- `folder:PATH`, a folder of images whose subfolders are classes;
- Fashion-MNIST from the files of Debian's `dataset-fashion-mnist` package when present
  (`fashion_mnist.py`);
- in-memory data for notebooks: numpy arrays or a `tf.data.Dataset` (`from_memory`).
"""

import os
import re

import numpy as np
import tensorflow as tf

from reswise_tf.data import scenes, segmentation
from reswise_tf.data.fashion_mnist import DEBIAN_FASHION_MNIST, FASHION_MNIST_CANVAS, fashion_mnist_debian_source
from reswise_tf.data.labels import IMAGENET_CLASSES, Labels, is_imagenet_name
from reswise_tf.data.source import IGNORE_LABEL, DataError, DataSource

# Decoded by TensorFlow, and by Pillow (TIFF, which TensorFlow does not decode).
TF_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
PILLOW_IMAGE_EXTENSIONS = (".tif", ".tiff")
IMAGE_EXTENSIONS = TF_IMAGE_EXTENSIONS + PILLOW_IMAGE_EXTENSIONS
SMALL_IMAGE_MAX = 64  # datasets with images at most this size are resized directly, no crop


def dataset_labels(name, *, data_dir=None):
    """The `Labels` of dataset `name` (`folder:PATH` or TFDS), without reading an image or
    downloading anything, so that a model that does not fit is refused before any work."""
    if not isinstance(name, str) or not name:
        raise DataError(f"`dataset` should be a TFDS name or folder:PATH. Received dataset={name!r}")
    if name.startswith("folder:"):
        root = os.path.expanduser(name[len("folder:"):])
        return segmentation.folder_labels(root) if segmentation.is_segmentation_folder(root) else folder_classes(root)[1]
    if name == "fashion_mnist":
        return Labels(name, 10)
    if name == scenes.NAME:
        return Labels(name, scenes.NUM_CLASSES, task="segmentation")
    if name in segmentation.SETS:
        return Labels(name, segmentation.SETS[name][0], task="segmentation")
    return tfds_labels(name, data_dir)


def tfds_labels(name, data_dir=None):
    """`Labels` of a TFDS dataset from its builder's description (nothing downloaded or read)."""
    import tensorflow_datasets as tfds

    try:
        features = tfds.builder(name, data_dir=data_dir).info.features
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DataError(f"Unknown dataset {name!r}: not a TFDS dataset and not folder:PATH. ({e})") from None
    if "label" not in features or not hasattr(features["label"], "num_classes"):
        raise DataError(f"Dataset {name!r} has no class label (its features: {', '.join(features.keys())})")
    n = features["label"].num_classes
    return Labels(name, n, "imagenet" if is_imagenet_name(name, n) else "own")


def load_source(name, *, split=None, data_dir=None, download=False, skip_bad_images=False):
    """Returns the `DataSource` for `name` (`folder:PATH` or a TFDS dataset name)."""
    if not isinstance(name, str) or not name:
        raise DataError(f"`dataset` should be a TFDS name or folder:PATH. Received dataset={name!r}")
    if name.startswith("folder:"):
        root = os.path.expanduser(name[len("folder:"):])
        if segmentation.is_segmentation_folder(root):
            return segmentation.folder_segmentation_source(root)
        return folder_source(root, skip_bad_images=skip_bad_images)
    if name == "fashion_mnist" and not download and os.path.isdir(DEBIAN_FASHION_MNIST):
        return fashion_mnist_debian_source(split or "test")
    if name == scenes.NAME:
        return scenes.scenes_source(split or "test")
    source = tfds_source(name, split=split, data_dir=data_dir, download=download)
    return source.on_canvas(FASHION_MNIST_CANVAS) if name == "fashion_mnist" else source


# ----------------------------------------------------------------------------- TFDS


def tfds_source(name, *, split=None, data_dir=None, download=False):
    """A TFDS image classification dataset. With `download=False` (the default) nothing is
    fetched: a dataset that is not prepared is a `DataError` that says how to prepare it."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DataError(
            f"Unknown dataset {name!r}: not a TFDS dataset and not folder:PATH. ({e})"
        ) from None
    features = builder.info.features
    segmenting = name in segmentation.SETS
    if "image" not in features or ("label" not in features and not segmenting):
        raise DataError(
            f"Dataset {name!r} is not an image classification dataset (needs 'image' and 'label' "
            f"features; it has {', '.join(features.keys())}). Segmentation sets: "
            f"{', '.join([*segmentation.SETS, scenes.NAME])}, or folder:PATH with images/ and masks/"
        )
    splits = builder.info.splits  # empty until the dataset is prepared
    if split is None:
        known = "validation" in splits if splits else name.startswith("imagenet")
        split = "validation" if known else "test"
    if splits and re.split(r"[\[+]", split)[0] not in splits:
        raise DataError(
            f"Unknown split {split!r} of dataset {name!r}. Available: {', '.join(builder.info.splits.keys())}"
        )
    if download:
        kwargs = {}
        if name.startswith("imagenet2012"):
            kwargs["download_config"] = tfds.download.DownloadConfig(
                manual_dir=os.path.join(builder.data_dir_root, "downloads", "manual")
            )
        builder.download_and_prepare(**kwargs)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as e:  # TFDS's way of saying the data is not prepared
        raise DataError(_not_prepared_message(name, builder.data_dir_root)) from e
    if segmenting:
        return segmentation.tfds_segmentation_source(name, ds, split, _split_count(builder, split))
    ds = ds.enumerate().map(
        lambda i, ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int64), "index": i}
    )
    shape = features["image"].shape
    small = shape[0] is not None and max(shape[0], shape[1]) <= SMALL_IMAGE_MAX
    count = _split_count(builder, split)
    num_classes = features["label"].num_classes
    return DataSource(
        name=name,
        split=split,
        dataset=ds,
        num_examples=count,
        num_classes=num_classes,
        small_images=small,
        label_kind="imagenet" if is_imagenet_name(name, num_classes) else "own",
    )


def _split_count(builder, split):
    try:
        return builder.info.splits[split].num_examples
    except (KeyError, ValueError):
        return 0


def _not_prepared_message(name, data_dir):
    if name.startswith("imagenet2012"):
        how = (
            "ImageNet cannot be downloaded automatically: download ILSVRC2012_img_val.tar (and "
            f"ILSVRC2012_img_train.tar for training) from image-net.org into "
            f"{os.path.join(data_dir, 'downloads', 'manual')}, then run again with --download "
            "(it prepares the dataset from the tar files; no other download)."
        )
    else:
        how = f"Run once with --download (needs internet), or `tfds build {name} --data_dir={data_dir}`."
    return f"Dataset {name!r} is not prepared in {data_dir}. {how}"


# ----------------------------------------------------------------------------- folders


def imagenet_synsets():
    """The 1000 ImageNet synset ids in the standard 0..999 class order (from TFDS's list)."""
    import importlib.resources

    text = (
        importlib.resources.files("tensorflow_datasets")
        .joinpath("datasets/imagenet2012/labels.txt")
        .read_text()
    )
    return text.split()


def folder_classes(root):
    """Maps each class subfolder of `root` to a class id; returns (mapping, `Labels`).

    Subfolders named by integers are those class ids (kind `ids`); ImageNet synset ids
    (`n01440764`) map to the standard 1000-class order (kind `imagenet`), so a folder holding a
    few classes is still scored against a 1000-class model; any other names are sorted (`own`).
    """
    if not os.path.isdir(root):
        raise DataError(f"`dataset` folder does not exist: folder:{root}")
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not names:
        raise DataError(f"Folder {root!r} has no class subfolders (expected e.g. {root}/0/, {root}/1/)")
    name = f"folder:{root}"
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}, Labels(name, max(int(n) for n in names) + 1, "ids")
    synsets = imagenet_synsets()
    if all(n in synsets for n in names):
        order = {s: i for i, s in enumerate(synsets)}
        return {n: order[n] for n in names}, Labels(name, IMAGENET_CLASSES, "imagenet")
    return {n: i for i, n in enumerate(names)}, Labels(name, len(names))


def folder_source(root, *, skip_bad_images=False):
    """Images under `root/<class>/...`, in sorted order. Files that are not images of the
    decoded kinds (`IMAGE_EXTENSIONS`) are left out and listed in `ignored_files`.

    The images decide how they are resized, as for TFDS sets: small images (a sample of
    `SIZE_SAMPLE` spread over the folder all at most `SMALL_IMAGE_MAX` px, e.g. CIFAR-10's
    32-px PNGs) are resized directly to each size, as they were at training; larger ones get
    the ImageNet evaluation's resize and centre crop. `min_side` is the sample's smallest side.
    """
    root = os.path.expanduser(root)
    mapping, label_set = folder_classes(root)
    files, labels, ignored = [], [], []
    for name, label in sorted(mapping.items(), key=lambda item: item[1]):
        for dirpath, _, filenames in sorted(os.walk(os.path.join(root, name))):
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(path)
                    labels.append(label)
                else:
                    ignored.append(path)
    if not files:
        raise DataError(f"Folder {root!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    sizes = sample_image_sizes(files)
    ds = tf.data.Dataset.from_tensor_slices(
        {"path": tf.constant(files), "label": tf.constant(labels, tf.int64), "index": tf.range(len(files), dtype=tf.int64)}
    )
    ds = ds.map(lambda ex: {"image": decode_image_file(ex["path"]), "label": ex["label"], "index": ex["index"]},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if skip_bad_images:
        ds = ds.ignore_errors()
    return DataSource(name=f"folder:{root}", split=None, dataset=ds, num_examples=len(files),
                      num_classes=label_set.num_classes,
                      small_images=bool(sizes) and max(map(max, sizes)) <= SMALL_IMAGE_MAX,
                      files=files, skip_bad_images=skip_bad_images, ignored_files=ignored, label_kind=label_set.kind,
                      min_side=min(map(min, sizes)) if sizes else None)


SIZE_SAMPLE = 32  # images of a folder whose sizes decide how it is resized


def sample_image_sizes(files, count=SIZE_SAMPLE):
    """(height, width) of up to `count` images spread over `files` (headers only, by Pillow);
    files Pillow cannot open are left out (they fail, or are skipped, when decoded)."""
    from PIL import Image, UnidentifiedImageError

    step = max(1, len(files) // count)
    sizes = []
    for path in files[::step][:count]:
        try:
            with Image.open(path) as image:
                sizes.append((image.height, image.width))
        except (OSError, UnidentifiedImageError):
            continue
    return sizes


def decode_image_file(path):
    """The image file at `path` (a string tensor) as uint8 (H, W, 3): TensorFlow's decoders,
    or Pillow's for TIFF (converted to 8-bit RGB)."""
    is_tiff = tf.strings.regex_full_match(tf.strings.lower(path), r".*\.tiff?")

    def pillow():
        image = tf.numpy_function(lambda p: read_with_pillow(np.asarray(p).item().decode()), [path], tf.uint8,
                                  stateful=False)
        return tf.ensure_shape(image, (None, None, 3))

    def native():
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

    return tf.cond(is_tiff, pillow, native)


def read_with_pillow(path):
    """uint8 (H, W, 3) RGB of an image file Pillow reads (the TIFF decoder)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"Cannot decode {path}: {e}") from None


def find_bad_image(files, start=0):
    """Returns the first file from `start` on that cannot be decoded (None if all can)."""
    for path in files[start:]:
        try:
            decode_image_file(tf.constant(path))
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError, ValueError):
            return path
    return None


def describe_ignored(source, count=5):
    """A note naming the files of a folder source that are not images we decode, or ""."""
    ignored = getattr(source, "ignored_files", [])
    if not ignored:
        return ""
    names = ", ".join(os.path.relpath(p, source.name[len("folder:"):]) for p in ignored[:count])
    more = f" and {len(ignored) - count} more" if len(ignored) > count else ""
    return (f"Note: {len(ignored)} file(s) in {source.name} are not images of a kind decoded here "
            f"({', '.join(IMAGE_EXTENSIONS)}) and were left out: {names}{more}.")


# ----------------------------------------------------------------------------- in memory


def from_memory(data, *, num_classes, name="in-memory"):
    """A `DataSource` over in-memory data, for notebooks.

    Args:
      data: a tuple `(images, labels)` of numpy arrays (uint8 or float images (N, H, W, C) or
        grayscale (N, H, W); int labels (N,), or class maps (N, H, W) of a segmentation, 255
        not scored), or a `tf.data.Dataset` of `(image, label)` pairs or `{"image", "label"}`
        dicts, one example per element (not batched).
      num_classes: classes of the label space (the model's outputs).
      name: how the source is named in reports.
    """
    if isinstance(data, tf.data.Dataset):
        ds, count, small = _dataset_examples(data)
        if ds.element_spec["label"].shape.rank == 2:  # class maps: a segmentation
            ds = ds.enumerate().map(lambda i, ex: {"image": ex["image"], "index": i,
                                                   "label": _checked_map(ex["label"], num_classes)})
            return DataSource(name=name, split=None, dataset=ds, num_examples=count, num_classes=num_classes,
                              small_images=True, label_kind="ids", task="segmentation")
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = np.asarray(data[0]), np.asarray(data[1])
        if images.ndim == 3:
            images = images[..., None]
        maps = labels.ndim == 3 and labels.shape == images.shape[:3]
        if images.ndim != 4 or (labels.shape != (len(images),) and not maps):
            raise DataError(
                "`data` should be (images (N, H, W, C), labels (N,) or class maps (N, H, W)). Received shapes "
                f"{images.shape} and {labels.shape}"
            )
        scored = labels[labels != IGNORE_LABEL] if maps else labels
        if len(scored) and not (0 <= scored.min() and scored.max() < num_classes):
            raise DataError(
                f"`data` has labels {int(scored.min())}..{int(scored.max())}, but the model has {num_classes} "
                f"outputs (classes 0..{num_classes - 1}): they are not the same label set")
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels.astype(np.uint8 if maps else np.int64)})
        count, small = len(images), max(images.shape[1:3]) <= SMALL_IMAGE_MAX
        if maps:
            return DataSource(name=name, split=None, dataset=ds.enumerate().map(lambda i, ex: {**ex, "index": i}),
                              num_examples=count, num_classes=num_classes, small_images=True, label_kind="ids",
                              task="segmentation")
    else:
        raise DataError(
            "`data` should be a tf.data.Dataset of (image, label) or {'image', 'label'} elements, "
            f"or a tuple (images, labels) of numpy arrays. Received {type(data).__name__}"
        )
    ds = ds.enumerate().map(lambda i, ex: {**ex, "index": i, "label": _checked_label(ex["label"], num_classes)})
    return DataSource(name=name, split=None, dataset=ds, num_examples=count, num_classes=num_classes,
                      small_images=small, label_kind="ids")


def _checked_label(label, num_classes):
    """`label`, or an error when it is not a class of the model (a dataset's labels are only
    seen as they are read)."""
    message = f"`data` has a label outside the model's {num_classes} classes (0..{num_classes - 1})"
    with tf.control_dependencies([tf.debugging.assert_non_negative(label, message=message),
                                  tf.debugging.assert_less(label, tf.constant(num_classes, tf.int64), message=message)]):
        return tf.identity(label)


def _checked_map(label, num_classes):
    """A class map (uint8), or an error when a scored pixel is not a class of the model."""
    scored = tf.boolean_mask(label, label != IGNORE_LABEL)
    message = f"`data` has a class map with a class outside the model's {num_classes} classes (0..{num_classes - 1})"
    with tf.control_dependencies([tf.debugging.assert_non_negative(scored, message=message),
                                  tf.debugging.assert_less(scored, tf.constant(num_classes, tf.int64), message=message)]):
        return tf.cast(label, tf.uint8)


def _dataset_examples(ds):
    """(dataset of {'image', 'label'} dicts, number of examples or 0, small images?)."""
    spec = ds.element_spec
    if isinstance(spec, dict) and {"image", "label"} <= set(spec):
        ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int64)})
    elif isinstance(spec, tuple) and len(spec) == 2:
        ds = ds.map(lambda image, label: {"image": image, "label": tf.cast(label, tf.int64)})
    else:
        raise DataError(
            "`data` should yield (image, label) pairs or {'image', 'label'} dicts. "
            f"Received element_spec={spec}"
        )
    shape = ds.element_spec["image"].shape
    if shape.rank == 2:
        ds = ds.map(lambda ex: {**ex, "image": ex["image"][..., None]})
    elif shape.rank != 3:
        raise DataError(
            f"`data` should yield single images (H, W, C), not batches. Received image shape {shape}"
        )
    count = int(ds.cardinality())
    small = shape[0] is not None and shape[1] is not None and max(shape[0], shape[1]) <= SMALL_IMAGE_MAX
    return ds, max(count, 0), small
