"""How close a sweep comes to the pure forward time of its models, in the same run.

  python -m benchmarks.sweep                                   # MobileNetV2, 256 JPEGs, 224..140
  python -m benchmarks.sweep --arch=resnet50 --num_images=2000 --repeats=3

Generates --num_images JPEGs of ImageNet-like sizes (sides 300-500 px, every aspect ratio in
between; smooth colour fields plus noise, about 80 kB each, so that decoding costs what it costs
on photographs) into --image_dir once, builds --arch with random weights, and measures:

- forward: for each resolution, the rescaled model's compiled forward pass alone over all the
  images, already decoded, resized and normalised and held in memory, at --batch_size; summed
  over the resolutions. No input pipeline can make a sweep faster than this.
- sweep: wall time of `reswise_tf.evaluation.resolution_sweep` on the folder with a fresh output dir, all
  included: rebuilding the model at each resolution, tracing, decoding every image once,
  resizing it to every resolution, the forward passes and writing the cache.
- naive: one pass per resolution, each rebuilding the model at that resolution and decoding
  every image again (the same parallel tf.data pipeline, resized to that one resolution).

Printed: the three times, sweep/forward and naive/forward, and the same ratios after start-up
(rebuilding the models, tracing and the first batch: a fixed cost, measured as a sweep of one
batch, so the plain ratios fall towards these as --num_images grows). Each measurement is the
median of --repeats runs, interleaved, so that other load on the machine hits all alike.
"""

import contextlib
import dataclasses
import os
import time

import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks.common import compiled_forward, jpeg_folder, loaded_arch, preprocessed_batches, time_forward, time_sweep
from experiments import common
from reswise_tf import data
from reswise_tf.evaluation import SweepConfig, resolution_sweep
from reswise_tf.evaluation.engine import forward_fn
from reswise_tf.models import registry, rescale, rescale_all

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", "mobilenet_v2", "Architecture with random weights: any registered name. Default: mobilenet_v2.")
flags.DEFINE_integer("num_images", 256, "JPEGs generated and evaluated. Default: 256.")
flags.DEFINE_string("resolutions", "224,210,196,182,168,154,140", "Comma-separated resolutions. Default: 224,210,196,182,168,154,140.")
flags.DEFINE_integer("batch_size", 32, "Batch size of every measurement. Default: 32.")
flags.DEFINE_integer("repeats", 1, "Runs of each measurement (medians are printed). Default: 1.")
flags.DEFINE_string("image_dir", None, "Where the JPEGs go (reused when it already holds --num_images of them). Default: a temporary folder, deleted at the end.")
flags.DEFINE_integer("seed", 0, "Seed of the images. Default: 0.")


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


@contextlib.contextmanager
def one_model_per_size():
    """The sweep building and tracing one model per size, as before `rescale_all`."""
    sweep_module = resolution_sweep
    original = sweep_module.rescale_all
    sweep_module.rescale_all = lambda model, sizes, arch=None, head=None: {
        r: rescale(model, r, arch=arch, head=head) for r in sizes}
    try:
        yield
    finally:
        sweep_module.rescale_all = original


def startup_breakdown(model, spec, config):
    """Seconds of the parts of a sweep's start-up, per size and for every size at once:
    building (rescale), and tracing plus the first call of each forward (one batch)."""
    x = {r: tf.zeros((config.batch_size, r, r, 3)) for r in config.resolutions}
    parts = {}
    start = time.perf_counter()
    per_size = {r: rescale(model, r, arch=spec) for r in config.resolutions}
    parts["build, per size"] = time.perf_counter() - start
    start = time.perf_counter()
    for r, m in per_size.items():
        forward_fn(m, 10, tf.distribute.get_strategy())(x[r])[0].numpy()
    parts["trace + first call, per size"] = time.perf_counter() - start
    start = time.perf_counter()
    shared = rescale_all(model, config.resolutions, arch=spec)
    parts["build, one for all"] = time.perf_counter() - start
    start = time.perf_counter()
    functions = {}
    for r, m in shared.items():
        functions.setdefault(id(m), forward_fn(m, 10, tf.distribute.get_strategy()))(x[r])[0].numpy()
    parts["trace + first call, one for all"] = time.perf_counter() - start
    return parts


def main(argv):
    del argv
    spec = registry.get_arch(FLAGS.arch)
    resolutions = common.parse_resolutions(FLAGS.resolutions)
    for name in ("num_images", "batch_size", "repeats"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} should be a positive integer. Received {name}={getattr(FLAGS, name)}")
    start = time.perf_counter()
    with jpeg_folder(FLAGS.image_dir, FLAGS.num_images, FLAGS.seed) as (image_dir, paths):
        kilobytes = np.mean([os.path.getsize(p) for p in paths]) / 1e3
        print(f"{len(paths)} JPEGs ({kilobytes:.0f} kB on average) in {image_dir} ({time.perf_counter() - start:.1f} s)")
        source = data.folder_source(image_dir)
        native = spec.native_resolution
        model, loaded = loaded_arch(spec)
        config = SweepConfig(resolutions=sorted({native, *resolutions}, reverse=True),
                             batch_size=FLAGS.batch_size).for_model(loaded)
        first_batch = dataclasses.replace(config, num_examples=config.batch_size)
        models = {r: compiled_forward(rescale(model, r, arch=spec)) for r in config.resolutions}
        runs = {key: [] for key in ("forward", "sweep", "sweep_startup", "startup_per_size", "naive", "naive_startup")}
        per_resolution = []
        for _ in range(FLAGS.repeats):  # interleaved, so that other load hits all alike
            seconds = time_forward(models, source, config)
            per_resolution.append(seconds)
            runs["forward"].append(sum(seconds.values()))
            runs["sweep"].append(time_sweep(loaded, source, config))
            runs["sweep_startup"].append(time_sweep(loaded, source, first_batch))
            with one_model_per_size():  # as before: every size built and traced on its own
                runs["startup_per_size"].append(time_sweep(loaded, source, first_batch))
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
        print(f"start-up, one model per size (as before): {med['startup_per_size']:.2f} s; "
              f"with one model for every size where the graph allows: {med['sweep_startup']:.2f} s "
              f"({med['startup_per_size'] / med['sweep_startup']:.2f}x less)")
        first_forward = med["forward"] * b / n  # the first batch's own forward work, in both start-ups
        print(f"fixed start-up (less the first batch's forward share, {first_forward:.2f} s): one model per size "
              f"{med['startup_per_size'] - first_forward:.2f} s; one for every size "
              f"{med['sweep_startup'] - first_forward:.2f} s "
              f"({(med['startup_per_size'] - first_forward) / (med['sweep_startup'] - first_forward):.2f}x less)")
        print("start-up breakdown (s):", ", ".join(f"{k} {v:.2f}" for k, v in startup_breakdown(model, spec, config).items()))
        print(f"sweep / forward: {med['sweep'] / med['forward']:.3f}")
        print(f"naive / forward: {med['naive'] / med['forward']:.3f}")
        if n > b:  # images b.. of sweep and naive against their share of the forward time
            share = med["forward"] * (n - b) / n
            for name in ("sweep", "naive"):
                print(f"{name} / forward after start-up: {(med[name] - med[name + '_startup']) / share:.3f}")


if __name__ == "__main__":
    common.run_main(main, (ValueError,))
