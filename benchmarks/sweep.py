"""How close a sweep comes to the pure forward time of its models, in the same run.

  python -m benchmarks.sweep                                   # MobileNetV2, 256 JPEGs, 224..140
  python -m benchmarks.sweep --arch=resnet50 --num_images=2000 --repeats=3

Generates --num_images JPEGs of ImageNet-like sizes (sides 300-500 px, every aspect ratio in
between; smooth colour fields plus noise, about 80 kB each, so that decoding costs what it costs
on photographs) into --image_dir once, builds --arch with random weights, and measures:

- forward: for each resolution, the rescaled model's compiled forward pass alone over all the
  images, already decoded, resized and normalised and held in memory, at --batch_size; summed
  over the resolutions. No input pipeline can make a sweep faster than this.
- sweep: wall time of `reswise_tf.evaluation.sweep` on the folder with a fresh output dir, all
  included: rebuilding the model at each resolution, tracing, decoding every image once,
  resizing it to every resolution, the forward passes and writing the cache.
- naive: one pass per resolution, each rebuilding the model at that resolution and decoding
  every image again (the same parallel tf.data pipeline, resized to that one resolution).

Printed: the three times, sweep/forward and naive/forward, and the same ratios after start-up
(rebuilding the models, tracing and the first batch: a fixed cost, measured as a sweep of one
batch, so the plain ratios fall towards these as --num_images grows). Each measurement is the
median of --repeats runs, interleaved, so that other load on the machine hits all alike.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import flags
from PIL import Image

from experiments import common
from reswise_tf import data
from reswise_tf.data.preprocessing import prepare
from reswise_tf.evaluation import SweepConfig, sweep
from reswise_tf.evaluation.engine import pipeline_options
from reswise_tf.models import LoadedModel, registry, rescale

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", "mobilenet_v2", "Architecture with random weights: any registered name. Default: mobilenet_v2.")
flags.DEFINE_integer("num_images", 256, "JPEGs generated and evaluated. Default: 256.")
flags.DEFINE_string("resolutions", "224,210,196,182,168,154,140", "Comma-separated resolutions. Default: 224,210,196,182,168,154,140.")
flags.DEFINE_integer("batch_size", 32, "Batch size of every measurement. Default: 32.")
flags.DEFINE_integer("repeats", 1, "Runs of each measurement (medians are printed). Default: 1.")
flags.DEFINE_string("image_dir", None, "Where the JPEGs go (reused when it already holds --num_images of them). Default: a temporary folder, deleted at the end.")
flags.DEFINE_integer("seed", 0, "Seed of the images. Default: 0.")


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


def compiled_forward(model):
    return tf.function(lambda images: model(images, training=False))


def preprocessed_batches(source, resolution, config):
    """The images of `source` preprocessed to `resolution` as the sweep makes them, batched
    (with the sweep's tf.data options)."""

    def fn(example):
        return prepare(example["image"], resolution, mode=config.preprocess, crop_pct=config.crop_pct)

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


def time_sweep(model, spec, source, config):
    """Wall seconds of a sweep from scratch (fresh output dir)."""
    output_dir = tempfile.mkdtemp(prefix="reswise_bench_")
    try:
        start = time.perf_counter()
        sweep(LoadedModel.from_model(model, arch=spec), source, config, output_dir, verbose=0)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(output_dir)


def time_naive(model, spec, source, config):
    """(total, start-up) wall seconds of one full pass per resolution; start-up is rebuilding
    the model, tracing and the first batch of each pass."""
    start, startup = time.perf_counter(), 0.0
    for r in config.resolutions:
        begin = time.perf_counter()
        forward = compiled_forward(rescale(model, r, arch=spec))
        for i, x in enumerate(preprocessed_batches(source, r, config)):
            forward(x).numpy()
            if i == 0:
                startup += time.perf_counter() - begin
    return time.perf_counter() - start, startup


def main(argv):
    del argv
    spec = registry.get_arch(FLAGS.arch)
    resolutions = common.parse_resolutions(FLAGS.resolutions)
    for name in ("num_images", "batch_size", "repeats"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} should be a positive integer. Received {name}={getattr(FLAGS, name)}")
    image_dir = FLAGS.image_dir or tempfile.mkdtemp(prefix="reswise_jpegs_")
    try:
        start = time.perf_counter()
        paths = write_jpegs(image_dir, FLAGS.num_images, FLAGS.seed)
        kilobytes = np.mean([os.path.getsize(p) for p in paths]) / 1e3
        print(f"{len(paths)} JPEGs ({kilobytes:.0f} kB on average) in {image_dir} ({time.perf_counter() - start:.1f} s)")
        source = data.folder_source(image_dir)
        native = spec.native_resolution
        config = SweepConfig(resolutions=sorted({native, *resolutions}, reverse=True), preprocess=spec.preprocess,
                             crop_pct=spec.crop_pct, batch_size=FLAGS.batch_size)
        first_batch = dataclasses.replace(config, num_examples=config.batch_size)
        model = spec.build(native, classes=1000)
        models = {r: compiled_forward(rescale(model, r, arch=spec)) for r in config.resolutions}
        runs = {key: [] for key in ("forward", "sweep", "sweep_startup", "naive", "naive_startup")}
        per_resolution = []
        for _ in range(FLAGS.repeats):  # interleaved, so that other load hits all alike
            seconds = time_forward(models, source, config)
            per_resolution.append(seconds)
            runs["forward"].append(sum(seconds.values()))
            runs["sweep"].append(time_sweep(model, spec, source, config))
            runs["sweep_startup"].append(time_sweep(model, spec, source, first_batch))
            naive, startup = time_naive(model, spec, source, config)
            runs["naive"].append(naive)
            runs["naive_startup"].append(startup)
        med = {k: float(np.median(v)) for k, v in runs.items()}
        n, b = len(paths), min(config.batch_size, len(paths))
        print(f"{spec.name} (random weights), {n} images, batch {config.batch_size}, resolutions "
              f"{','.join(map(str, config.resolutions))}; medians of {FLAGS.repeats} run(s) on "
              f"{os.cpu_count()} CPU core(s), {len(tf.config.list_physical_devices('GPU'))} GPU(s)")
        for r in config.resolutions:
            s = float(np.median([p[r] for p in per_resolution]))
            print(f"  forward at {r:>4}px: {s:8.2f} s ({n / s:7.1f} images/s)")
        print(f"forward (sum)         : {med['forward']:8.2f} s")
        for name in ("sweep", "naive"):
            print(f"{name:<22}: {med[name]:8.2f} s, of which start-up {med[name + '_startup']:.2f} s "
                  "(rebuilding, tracing, first batch)")
        print(f"sweep / forward: {med['sweep'] / med['forward']:.3f}")
        print(f"naive / forward: {med['naive'] / med['forward']:.3f}")
        if n > b:  # images b.. of sweep and naive against their share of the forward time
            share = med["forward"] * (n - b) / n
            for name in ("sweep", "naive"):
                print(f"{name} / forward after start-up: {(med[name] - med[name + '_startup']) / share:.3f}")
    finally:
        if FLAGS.image_dir is None:
            shutil.rmtree(image_dir, ignore_errors=True)


if __name__ == "__main__":
    common.run_main(main, (ValueError,))
