"""Reduced precision against float32, measured side by side in one run.

  python -m benchmarks.precision                              # ResNet50 and MobileNetV2, 256 JPEGs
  python -m benchmarks.precision --archs=resnet50 --num_images=1000 --precisions=float32,bfloat16

For each architecture (random weights, 224 -> 210..140) and precision, on the same generated
JPEGs (see benchmarks/sweep.py):
- floor: the compiled forward alone over all images, already prepared and held in memory in
  that precision, summed over the 7 sizes (no input pipeline can be faster);
- sweep: a whole `reswise_tf.evaluation.resolution_sweep` from scratch at that precision (start-up,
  decoding once, resizing to every size, casting early, forward passes, the cache).
Printed: both times, sweep/floor (the pipeline keeps up when it is near 1), and the speed-up of
each reduced precision over float32 for the sweep and the floor; the hardware note says whether
this machine computes that precision fast. Medians of --repeats runs, interleaved.
"""

import os

import numpy as np
from absl import flags

from benchmarks.common import compiled_forward, jpeg_folder, loaded_arch, time_forward, time_sweep
from experiments import common
from reswise_tf import data
from reswise_tf.evaluation import SweepConfig
from reswise_tf.models import registry, rescale
from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.runtime.precision import PRECISIONS, fast_support

FLAGS = flags.FLAGS
flags.DEFINE_list("archs", ["resnet50", "mobilenetv2"], "Architectures (random weights). Default: resnet50,mobilenetv2.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], f"Of {', '.join(PRECISIONS)}; the first is the reference. Default: float32,bfloat16.")
flags.DEFINE_integer("num_images", 256, "JPEGs generated and evaluated. Default: 256.")
flags.DEFINE_string("resolutions", "224,210,196,182,168,154,140", "Comma-separated resolutions. Default: 224,210,196,182,168,154,140.")
flags.DEFINE_integer("batch_size", 32, "Batch size of every measurement. Default: 32.")
flags.DEFINE_integer("repeats", 1, "Runs of each measurement (medians are printed). Default: 1.")
flags.DEFINE_string("image_dir", None, "Where the JPEGs go (reused when it holds --num_images of them). Default: a temporary folder.")


def measure(spec, source, resolutions, precision):
    """(floor seconds, sweep seconds) of `spec` at `precision`."""
    model, loaded = loaded_arch(spec)
    config = SweepConfig(resolutions=resolutions, batch_size=FLAGS.batch_size, precision=precision).for_model(loaded)
    forwards = {r: compiled_forward(with_precision(rescale(model, r, arch=spec), precision)) for r in resolutions}
    floor = sum(time_forward(forwards, source, config).values())
    return floor, time_sweep(loaded, source, config)


def main(argv):
    del argv
    specs = [registry.get_arch(a) for a in FLAGS.archs]
    precisions = [p for p in FLAGS.precisions]
    for p in precisions:
        if p not in PRECISIONS:
            raise ValueError(f"Unknown precision {p!r} in --precisions. Available: {', '.join(PRECISIONS)}")
    resolutions = common.parse_resolutions(FLAGS.resolutions)
    with jpeg_folder(FLAGS.image_dir, FLAGS.num_images) as (image_dir, paths):
        source = data.folder_source(image_dir)
        runs = {(s.name, p): [] for s in specs for p in precisions}
        for _ in range(FLAGS.repeats):
            for spec in specs:
                for p in precisions:
                    runs[(spec.name, p)].append(measure(spec, source, resolutions, p))
        report(specs, precisions, runs, len(paths), resolutions)


def report(specs, precisions, runs, n, resolutions):
    print(f"{n} JPEGs, batch {FLAGS.batch_size}, resolutions {','.join(map(str, resolutions))}; medians of "
          f"{FLAGS.repeats} run(s) on {os.cpu_count()} CPU core(s)")
    for p in precisions[1:]:
        print(f"{p}: {fast_support(p)[1]}")
    print(f"{'arch':<14}{'precision':<10}{'floor s':>9}{'sweep s':>9}{'sweep/floor':>13}{'speed-up sweep':>16}{'speed-up floor':>16}")
    for spec in specs:
        ref = np.median(np.array(runs[(spec.name, precisions[0])]), axis=0)
        for p in precisions:
            floor, swept = np.median(np.array(runs[(spec.name, p)]), axis=0)
            print(f"{spec.name:<14}{p:<10}{floor:9.1f}{swept:9.1f}{swept / floor:13.3f}"
                  f"{ref[1] / swept:16.3f}{ref[0] / floor:16.3f}")


if __name__ == "__main__":
    common.run_main(main, (ValueError,))
