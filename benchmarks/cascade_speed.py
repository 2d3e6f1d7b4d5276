"""Images per second of a resolution cascade against the native model, in the same run.

  python -m benchmarks.cascade_speed                      # ResNet50, 168 -> 224, random weights
  python -m benchmarks.cascade_speed --stages=196,224 --accept_fraction=0.9 --batches=5
  python -m benchmarks.cascade_speed --cascade_dir=saved_cascade   # a saved CascadeClassifier
  python -m benchmarks.cascade_speed --cascade_dir=results/study/models/cascade \
      --reference_dir=results/study/resnet18_small_64 --dataset=fashion_mnist   # against a sweep's model

With --arch the weights are random, so the first stage's threshold is set to accept
--accept_fraction of the images (measured on the first batch); speed depends on that fraction,
not on what the weights predict. The native model and the cascade run alternately on the same
batches of native-size images (the cascade resizes them for its cheaper stages, and that time
is counted). With --reference_dir the cascade is timed against the model of that sweep (e.g. the
most accurate single model of a multi-model selection), reopened as its sweep ran it; with
--dataset the batches are the dataset's test images (raw: each stage of a cascade saved by
experiments.select --deploy_dir prepares its own), so the share of images each stage decides
is the real one. Printed: images/s of both, their ratio, and the FLOPs ratio the cascade promises.
FLOPs are not latency: later stages run on smaller batches, resizing and per-stage overhead
cost time the FLOPs do not count (on accelerators a small input may not fill the chip), while on
CPUs a smaller input can run faster than its FLOPs say (its activations fit the caches). The
cheap stage is also timed alone on the same batches to show which way it goes on this machine.
"""

import time

import numpy as np
from absl import flags

from experiments import common
from reswise_tf import data
from reswise_tf.deploy import CascadeClassifier
from reswise_tf.models import registry
from reswise_tf.selection import CascadeConfig
from reswise_tf.workflows.select import native_classifier

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "cascade_dir", None, "A saved CascadeClassifier directory instead of --arch. Default: None."
)
flags.DEFINE_string(
    "arch",
    "resnet50",
    "Architecture with random weights: any registered name. Default: resnet50.",
)
flags.DEFINE_string(
    "stages",
    None,
    "With --arch: comma-separated stages, cheapest first, ending at native. Default: 3/4 of native, then native (168,224).",
)
flags.DEFINE_float(
    "accept_fraction",
    0.8,
    "With --arch: share of the images each stage but the last accepts. Default: 0.8.",
)
flags.DEFINE_integer("batch_size", 16, "Images per batch. Default: 16.")
flags.DEFINE_integer("batches", 4, "Timed batches (after one warm-up batch). Default: 4.")
flags.DEFINE_integer("seed", 0, "Seed of the random images. Default: 0.")
flags.DEFINE_string("reference_dir", None, "With --cascade_dir: a results directory whose model (at its native size, as its sweep ran it) the cascade is timed against. Default: the cascade's last stage.")
flags.DEFINE_string("dataset", None, "With --cascade_dir: time on this dataset's evaluation images (raw, of one size) instead of random ones. Default: None.")


def build_from_arch(name, stages, accept_fraction, probe):
    spec = registry.get_arch(name)
    native = spec.native_resolution
    stages = sorted(stages or [round(0.75 * native), native])
    if stages[-1] != native:
        raise ValueError(
            f"--stages should end at the native resolution {native}. Received {stages}"
        )
    if not 0 < accept_fraction < 1:
        raise ValueError(f"--accept_fraction should be in (0, 1). Received {accept_fraction}")
    model = spec.build(native, classes=1000)
    probe_config = CascadeConfig(stages, [np.inf] * (len(stages) - 1), "max_prob")
    clf = CascadeClassifier.from_model(model, probe_config, arch=spec)
    thresholds = []
    for j in range(len(stages) - 1):
        _, probs = clf.stage_predictions(probe, j)
        conf = clf.config.stage_confidence(probs, j)
        # Each stage accepts `accept_fraction` of what reaches it (on the probe batch).
        thresholds.append(float(np.quantile(conf, 1 - accept_fraction)))
        accepted = float(np.mean(conf >= thresholds[-1]))
        if abs(accepted - accept_fraction) > 0.15:
            raise ValueError(
                f"The random weights of {name} give nearly tied confidences at {stages[j]}px: "
                f"a threshold accepts {accepted:.2f} of the probe batch, not {accept_fraction}. "
                "Use --arch=resnet50 or a saved --cascade_dir"
            )
    config = CascadeConfig(stages, thresholds, "max_prob")
    return CascadeClassifier(clf.stage_models, config)


def reference_of(clf):
    """(a CascadeClassifier whose stage `j` is the reference, j, its name): --reference_dir's
    model at its native size as its sweep ran it, else the cascade's own last stage."""
    if not FLAGS.reference_dir:
        return clf, len(clf.stages) - 1, f"last stage {clf.stages[-1]}"
    ref = native_classifier(FLAGS.reference_dir)
    return ref, 0, ref.stages[0]


def image_batches(clf, rng):
    """--batches + 1 batches: the dataset's first test images (raw), or random ones."""
    count = FLAGS.batch_size * (FLAGS.batches + 1)
    if FLAGS.dataset:
        if clf.inputs is None:
            raise ValueError("--dataset needs a cascade that prepares raw images (saved by experiments.select "
                             "--deploy_dir); this one takes prepared inputs")
        source = data.load_source(FLAGS.dataset)  # its evaluation split (validation, else test)
        images = [ex["image"].numpy() for ex in source.dataset.take(count)]
        if len({im.shape for im in images}) > 1:
            raise ValueError(f"--dataset {FLAGS.dataset} has images of several sizes: a batch of raw images needs "
                             "one size (use a dataset of equal-size images, e.g. fashion_mnist)")
        images = np.stack(images).astype(np.float32)
        return np.split(images, FLAGS.batches + 1)
    native_res = clf.sizes[-1]
    return [rng.uniform(-1, 1, (FLAGS.batch_size, native_res, native_res, 3)).astype(np.float32)
            for _ in range(FLAGS.batches + 1)]


def main(argv):
    del argv
    rng = np.random.default_rng(FLAGS.seed)
    if FLAGS.cascade_dir:
        clf = CascadeClassifier.load(FLAGS.cascade_dir)
        what = f"saved cascade {FLAGS.cascade_dir}"
    else:
        if FLAGS.reference_dir or FLAGS.dataset:
            raise ValueError("--reference_dir and --dataset need --cascade_dir (a trained cascade)")
        native = registry.get_arch(FLAGS.arch).native_resolution
        probe = rng.uniform(-1, 1, (FLAGS.batch_size, native, native, 3)).astype(np.float32)
        stages = common.parse_resolutions(FLAGS.stages, "--stages") if FLAGS.stages else None
        clf = build_from_arch(FLAGS.arch, stages, FLAGS.accept_fraction, probe)
        what = f"{FLAGS.arch} (random weights)"
    ref, ref_stage, ref_name = reference_of(clf)
    batches = image_batches(clf, rng)
    ref.stage_predictions(batches[0], ref_stage)  # warm-up (tracing) of every path
    clf.classify(batches[0])
    clf.stage_predictions(batches[0], 0)
    ref_s = cascade_s = cheap_s = 0.0
    macs = []
    for x in batches[1:]:
        start = time.perf_counter()
        ref.stage_predictions(x, ref_stage)
        ref_s += time.perf_counter() - start
        start = time.perf_counter()
        clf.stage_predictions(x, 0)
        cheap_s += time.perf_counter() - start
        start = time.perf_counter()
        out = clf.classify(x)
        cascade_s += time.perf_counter() - start
        macs.append(out.macs)
    n = FLAGS.batches * FLAGS.batch_size
    macs = np.concatenate(macs)
    ref_ips, cascade_ips = n / ref_s, n / cascade_s
    flops_ratio = float(np.mean(macs)) / ref.macs[ref_stage]
    speedup, promised = cascade_ips / ref_ips, 1.0 / flops_ratio
    first = float(np.mean(macs == clf.macs[0]))
    print(
        f"Cascade {clf.config.describe()} of {what}; {n} images in {FLAGS.batches} batches "
        f"of {FLAGS.batch_size}; {100 * first:.1f}% decided at {clf.stages[0]}."
    )
    print(f"{f'reference ({ref_name})':<16}: {ref_ips:8.1f} images/s")
    print(f"{'cascade':<16}: {cascade_ips:8.1f} images/s")
    print(
        f"{f'{clf.stages[0]} alone':<16}: {n / cheap_s:8.1f} images/s (FLOPs ratio "
        f"{clf.macs[0] / ref.macs[ref_stage]:.3f}, speed ratio {ref_s / cheap_s:.3f})"
    )
    print(f"speed ratio (cascade/reference images/s): {speedup:.3f}")
    print(
        f"FLOPs ratio (cascade/reference mean FLOPs): {flops_ratio:.3f} -> promised speed-up "
        f"{promised:.3f}x"
    )
    if promised > 1:
        print(
            f"measured speed-up {speedup:.3f}x = {100 * (speedup - 1) / (promised - 1):.0f}% of "
            "the gain the FLOPs promise"
        )


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError))
