"""What the benchmarks share: generated JPEGs, the sweep's preprocessing of them in memory, and
the timings (forward alone, a whole sweep). No flags here."""

import contextlib
import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation import SweepConfig, sweep
from reswise_tf.evaluation.engine import pipeline_options
from reswise_tf.models import LoadedModel

__all__ = ["SweepConfig", "compiled_forward", "loaded_arch", "preprocessed_batches", "time_forward", "jpeg_folder", "time_sweep", "write_jpegs"]


def write_jpegs(root, num_images, seed=0, classes=10):
    """Writes `num_images` JPEGs of 300-500 px sides into root/<class>/ (kept if already there)."""
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".jpg"))
    if len(paths) == num_images:
        return paths
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num_images):
        width, height = (int(v) for v in rng.integers(300, 501, 2))
        field = rng.integers(0, 256, (int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(field).resize((width, height), Image.BICUBIC), np.float32)
        pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
        folder = os.path.join(root, str(i % classes))
        os.makedirs(folder, exist_ok=True)
        paths.append(os.path.join(folder, f"{i:05d}.jpg"))
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


@contextlib.contextmanager
def jpeg_folder(image_dir, num_images, seed=0):
    """(folder, paths) of `num_images` generated JPEGs (`write_jpegs`) in `image_dir`, reused when
    it already holds them; with `image_dir` None, in a temporary folder deleted at the end."""
    folder = image_dir or tempfile.mkdtemp(prefix="reswise_jpegs_")
    try:
        yield folder, write_jpegs(folder, num_images, seed)
    finally:
        if image_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def compiled_forward(model):
    return tf.function(lambda images: model(images, training=False))


def preprocessed_batches(source, resolution, config):
    """The images of `source` preprocessed to `resolution` as the sweep makes them (cast to the
    sweep's precision), batched (with the sweep's tf.data options); `config` is the sweep's, as
    `SweepConfig.for_model` completes it."""

    def fn(example):
        image = prepare(example["image"], resolution, mode=config.preprocess, crop_pct=config.crop_pct)
        return tf.cast(image, config.precision)

    ds = source.dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(config.batch_size).with_options(pipeline_options()).prefetch(2)


def time_forward(models, source, config):
    """Seconds of the forward passes alone over all images, per resolution (batches in memory,
    traced before timing)."""
    seconds = {}
    for r, forward in models.items():
        batches = list(preprocessed_batches(source, r, config))
        forward(batches[0]).numpy()
        start = time.perf_counter()
        for x in batches:
            forward(x).numpy()
        seconds[r] = time.perf_counter() - start
    return seconds


def loaded_arch(spec, classes=1000):
    """(the model, random weights, at its native size; the `LoadedModel` a sweep takes) of a
    registered architecture: the sweep takes its preprocessing and crop from it."""
    model = spec.build(spec.native_resolution, classes=classes)
    return model, LoadedModel.from_model(model, arch=spec)


def time_sweep(loaded, source, config):
    """Wall seconds of a sweep of `loaded` from scratch (fresh output dir)."""
    output_dir = tempfile.mkdtemp(prefix="reswise_bench_")
    try:
        start = time.perf_counter()
        sweep(loaded, source, config, output_dir, verbose=0)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(output_dir)


